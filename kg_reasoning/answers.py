"""The reasoner's answer types: a structured question, reasoning steps with their evidence,
and the answer (text, steps, confidence in [0, 1], abstention and its reason, overlay actions).

Times are media seconds; scores are model probabilities in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kg_reasoning.timeline import Observation

UNSURE = "I am not sure"


@dataclass
class Question:
    """A structured question: an intent, canonical slots, and when it was asked.

    ``t_s`` is the media time of the question (default: the timeline's newest observation).
    ``unresolved`` holds slot words that were heard but not understood (e.g. {"structure":
    "spleen"}).
    """

    intent: str
    slots: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    t_s: float | None = None
    unresolved: dict[str, str] = field(default_factory=dict)
    parse_score: float = 1.0


@dataclass
class Step:
    """One reasoning step: a claim, whether it held, and its evidence.

    ``evidence`` keys: ``triples`` (graph facts with ids and sources), ``observations``
    (t_s, frame_id, kind, name, score), ``scores`` (named numbers), ``rule`` (text).
    """

    claim: str
    ok: bool = True
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"claim": self.claim, "ok": self.ok, "evidence": self.evidence}


@dataclass
class Answer:
    """The reasoner's reply: text to speak, steps, confidence, abstention, overlay actions."""

    answer: str
    steps: list[Step] = field(default_factory=list)
    confidence: float = 0.0
    abstained: bool = False
    reason: str = ""
    intent: str = ""
    overlay_actions: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (keys: answer, steps, confidence, abstained, reason, ...)."""
        return {
            "answer": self.answer,
            "steps": [s.to_dict() for s in self.steps],
            "confidence": round(self.confidence, 4),
            "abstained": self.abstained,
            "reason": self.reason,
            "intent": self.intent,
            "overlay_actions": self.overlay_actions,
            "data": self.data,
        }

    def explanation(self) -> str:
        """The steps as numbered sentences (what "copilot, why?" says)."""
        if not self.steps:
            return self.reason or "I have no steps to explain."
        ordinals = ("First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh")
        parts = []
        for i, s in enumerate(self.steps):
            lead = ordinals[i] if i < len(ordinals) else f"Step {i + 1}"
            claim = s.claim if s.claim.startswith("I ") else s.claim[0].lower() + s.claim[1:]
            claim = claim.rstrip(".")
            parts.append(f"{lead}, {claim}" + ("" if s.ok else ", and this step failed"))
        return ". ".join(parts) + "."




def abstain(
    intent: str,
    text: str,
    steps: list[Step] | None = None,
    reason: str = "",
    confidence: float = 0.0,
    data: dict[str, Any] | None = None,
) -> Answer:
    """An abstaining answer: ``text`` is said, ``reason`` (default: the text) is recorded."""
    return Answer(text, steps or [], confidence, True, reason or text, intent, [], data or {})


# ---------------------------------------------------------------------- evidence helpers
def window_ref(t0_s: float, t1_s: float) -> dict[str, Any]:
    """The timeline window a claim of absence searched (its id cites it)."""
    t0 = max(0.0, t0_s)
    return {"id": f"timeline:{t0:.1f}-{t1_s:.1f}", "t0_s": round(t0, 3), "t1_s": round(t1_s, 3)}


def command_step(intent: str) -> Step:
    """The step of a command: it cites the catalogue intent it executes."""
    return Step(f"Command {intent}.", True, {"command": {"id": f"catalogue:{intent}"}})


def obs_evidence(obs: list[Observation], limit: int = 6) -> list[dict[str, Any]]:
    """Up to ``limit`` observations (the best scores, in time order) as evidence dicts."""
    chosen = sorted(obs, key=lambda o: (-o.score, o.t_s))[:limit]
    return [o.to_dict() for o in sorted(chosen, key=lambda o: (o.t_s, o.frame_id))]
