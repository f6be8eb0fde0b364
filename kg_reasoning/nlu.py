"""Language understanding: transcript -> structured :class:`Question` (or an abstention).

Order: the catalogue's rule-based parse (exact / partial / near-exact); if nothing matches,
the semantic matcher (packaged MiniLM, loaded lazily) when one is given, accepting only
matches at or above its recorded threshold; slots are then filled from the transcript with
the catalogue's spoken forms and, for structures, the knowledge graph's synonyms (which
include any merged ontology).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kg_reasoning.catalogue import Catalogue, Parse
from kg_reasoning.graph import KnowledgeGraph
from kg_reasoning.reasoner import UNSURE, Answer, Question, Reasoner
from kg_reasoning.timeline import TimelineLike


@dataclass
class Understanding:
    """What was understood: the question (None when abstaining) and how."""

    question: Question | None
    method: str  # "exact" | "partial" | "fuzzy" | "semantic" | "none"
    score: float
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        q = self.question
        return {
            "intent": q.intent if q else None,
            "slots": dict(q.slots) if q else {},
            "unresolved": dict(q.unresolved) if q else {},
            "method": self.method,
            "score": round(self.score, 4),
            "reason": self.reason,
            **self.detail,
        }


def _from_parse(p: Parse, t_s: float | None) -> Question:
    return Question(p.intent, dict(p.slots), p.text, t_s, dict(p.unresolved), p.score)


def understand(
    text: str,
    catalogue: Catalogue,
    kg: KnowledgeGraph | None = None,
    matcher: Any | None = None,
    t_s: float | None = None,
) -> Understanding:
    """Turn a transcript into a question; ``matcher`` (a SemanticMatcher) is optional."""
    p = catalogue.parse(text)
    if p is not None:
        return Understanding(_from_parse(p, t_s), p.method, p.score)
    if matcher is None:
        return Understanding(None, "none", 0.0, "the question matches no known command")
    m = matcher.match(text)
    if m is None:
        return Understanding(None, "none", 0.0, "empty transcript")
    detail = {"nearest": m.sentence, "nearest_intent": m.intent, "threshold": matcher.threshold}
    if not m.accepted:
        return Understanding(
            None,
            "semantic",
            m.score,
            f"the question is outside what I know (similarity {m.score:.3f} < "
            f"threshold {matcher.threshold:.3f})",
            detail,
        )
    body, _ = catalogue.strip_wake_word(text)
    intent = catalogue.intents[m.intent]
    slots: dict[str, Any] = {}
    for slot in intent.slots:
        found = catalogue.find_slot_values(slot, body)
        if found:
            slots[slot] = found[0][2]
        elif slot == "structure" and kg is not None:
            mentions = [e for e in kg.find_mentions(body) if e.kind != "finding"]
            if mentions:
                slots[slot] = mentions[0].key
    for slot, value in m.slots.items():  # slots the words of the nearest template fix
        if slot not in slots and slot not in ("structure", "colour", "minutes"):
            slots[slot] = value
    return Understanding(
        Question(m.intent, slots, body, t_s, {}, m.score), "semantic", m.score, "", detail
    )


def ask(
    text: str,
    reasoner: Reasoner,
    timeline: TimelineLike | None = None,
    matcher: Any | None = None,
    previous: Answer | None = None,
    t_s: float | None = None,
) -> Answer:
    """Understand a transcript and answer it; abstains when it is not understood."""
    u = understand(text, reasoner.cat, reasoner.kg, matcher, t_s)
    if u.question is None:
        ans = Answer(
            f"{UNSURE}: I can only answer questions about the anatomy, the procedure and "
            "what the camera has shown.",
            [],
            0.0,
            True,
            u.reason,
            "",
            [],
            {},
        )
    else:
        ans = reasoner.answer(u.question, timeline, previous)
    ans.data["understanding"] = u.to_dict()
    return ans
