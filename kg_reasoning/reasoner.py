"""Step-by-step reasoner: a structured question + the perception timeline -> an answer.

Each answer carries its steps (a claim plus its evidence: graph triples, observations with
frame ids and times, model scores), a confidence in [0, 1], and an ``abstained`` flag with
the reason. When a step fails the copilot says "I am not sure" rather than guess.

Question kinds (catalogue intents), one module of :mod:`kg_reasoning.questions` per family:
identify_structure (``identify`` and ``ranking``: ranked hypotheses, e.g. a large pulsatile
vessel in the third part of the duodenum -> aortoduodenal fistula), cvs_status (``cvs``, per
criterion), skipped_step and current_phase (``procedure``: phase order and the "no clipping
before CVS" rule), missed_segments (``survey``: bowel survey coverage in a time window),
relation_query (``relations``), locate_structure (``locate``); and the commands
(``commands``: outline / hide / show overlays, coverage map, mute alerts, bookmark, stop,
acknowledge, explain, repeat) which return overlay / control actions. Answer types live in
:mod:`kg_reasoning.answers`, sentence helpers in :mod:`kg_reasoning.phrasing`.

The reasoner is deterministic and holds no state; ``previous`` (the last answer) is passed in
for "explain" and "repeat".
"""

from __future__ import annotations

from collections.abc import Callable

from kg_reasoning.answers import UNSURE, Answer, Question, Step, abstain
from kg_reasoning.phrasing import describe, fmt_time, join_words, position_words
from kg_reasoning.questions import commands, cvs, identify, locate, procedure, relations, survey
from kg_reasoning.questions.base import Context, ReasonerConfig
from kg_reasoning.questions.commands import COLOUR_RGB
from kg_reasoning.timeline import TimelineLike

#: what callers import from here (kg_reasoning.nlu, copilot/), re-exported from the rooms
__all__ = ["COLOUR_RGB", "UNSURE", "Answer", "Question", "Reasoner", "ReasonerConfig", "Step",
           "fmt_time", "join_words", "position_words"]

#: A question family's handler: (context, question, timeline, question time s, previous).
Handler = Callable[..., Answer]
#: intent -> the handler that answers it
HANDLERS: dict[str, Handler] = {
    "outline_structure": commands.outline_structure,
    "hide_overlay": commands.hide_overlay,
    "show_overlay": commands.show_overlay,
    "show_coverage": commands.show_coverage,
    "mute_alerts": commands.mute_alerts,
    "bookmark": commands.bookmark,
    "stop": commands.stop,
    "acknowledge": commands.acknowledge,
    "repeat": commands.repeat,
    "explain": commands.explain,
    "relation_query": relations.relation_query,
    "current_phase": procedure.current_phase,
    "skipped_step": procedure.skipped_step,
    "cvs_status": cvs.cvs_status,
    "missed_segments": survey.missed_segments,
    "locate_structure": locate.locate_structure,
    "identify_structure": identify.identify_structure,
}
#: Intents that need the perception timeline.
PERCEPTION_INTENTS = {
    "identify_structure",
    "missed_segments",
    "cvs_status",
    "skipped_step",
    "current_phase",
    "locate_structure",
}


class Reasoner(Context):
    """Answers structured questions from the knowledge graph and a perception timeline."""

    _describe = staticmethod(describe)

    def answer(
        self,
        question: Question,
        timeline: TimelineLike | None = None,
        previous: Answer | None = None,
    ) -> Answer:
        """Answer one question; never raises for unknown content (it abstains instead)."""
        intent = question.intent
        handler = HANDLERS.get(intent)
        if handler is None:
            return abstain(intent, f"I cannot answer questions of kind {intent!r}.")
        question_or_no = self._resolve(question)
        if isinstance(question_or_no, Answer):
            return question_or_no
        question = question_or_no
        now = self._now(question, timeline)
        empty = timeline is None or timeline.latest_t() is None
        if intent in PERCEPTION_INTENTS and empty and intent != "locate_structure":
            return abstain(
                intent,
                f"{UNSURE}: I have no perception timeline to answer from.",
                reason="no perception timeline (no session given or nothing observed yet)",
            )
        ans = handler(self, question, timeline, now, previous)
        ans.intent = intent
        # how sure it is that this was the question asked is part of every answer's confidence
        ans.data.setdefault("confidence_parts", {})["parse"] = round(question.parse_score, 4)
        ans.confidence = round(max(0.0, min(1.0, ans.confidence * question.parse_score)), 4)
        return ans

    def _resolve(self, question: Question) -> Question | Answer:
        """Slot words heard but not understood: a structure the graph knows by that name
        (e.g. a term from a merged ontology) fills the slot; anything else abstains."""
        intent = question.intent
        unresolved = question.unresolved
        if not unresolved:
            return question
        slot, words = next(iter(unresolved.items()))
        if slot != "structure":
            return abstain(
                intent,
                f"{UNSURE}: I did not understand the {slot.replace('_', ' ')} '{words}'.",
                reason=f"unknown {slot} {words!r}",
            )
        e = self.kg.resolve(words)
        if e is None:
            return abstain(
                intent,
                f"{UNSURE}: I do not know the {words}; it is not in my knowledge graph.",
                reason=f"unknown structure {words!r}: not in the knowledge graph",
            )
        return Question(
            intent,
            {**question.slots, "structure": e.key},
            question.text,
            question.t_s,
            {},
            question.parse_score,
        )

    def _now(self, q: Question, timeline: TimelineLike | None) -> float:
        """The question's media time (s): its own, else the timeline's newest, else 0."""
        if q.t_s is not None:
            return float(q.t_s)
        if timeline is not None:
            t = timeline.latest_t()
            if t is not None:
                return float(t)
        return 0.0
