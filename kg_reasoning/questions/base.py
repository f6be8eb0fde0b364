"""What every question family needs: the thresholds, the graph, the catalogue and the
spoken names of entities, and the shared evidence steps (scores in [0, 1], times in s)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kg_reasoning.answers import UNSURE, Answer, Question, Step, abstain
from kg_reasoning.graph import SIDE_WORDS, VERBS, Fact, KnowledgeGraph
from kg_reasoning.timeline import Observation


@dataclass(frozen=True)
class ReasonerConfig:
    """Thresholds (scores are model probabilities in [0, 1]; times in seconds)."""

    recent_s: float = 10.0  # "now" = the last recent_s seconds of the timeline
    detect_min_score: float = 0.5  # an observation counts as a detection at >= this
    min_frames: int = 2  # detections needed before a finding is believed
    seen_min_frames: int = 3  # region frames needed for a bowel segment to count as seen
    region_min_share: float = 0.5  # the winning region's share of region observations
    uncertain_low: float = 0.4  # CVS criterion scores in [low, high] are borderline
    uncertain_high: float = 0.6
    hypothesis_min: float = 0.5  # top hypothesis score needed to answer
    hypothesis_margin: float = 0.15  # and its lead over the second
    phase_min_frames: int = 3  # phase observations needed to count a phase as entered


class Context:
    """The graph, thresholds and catalogue a question family answers from (no state besides
    ``cfg``, which a caller may swap for one question)."""

    def __init__(
        self,
        kg: KnowledgeGraph | None = None,
        config: ReasonerConfig | None = None,
        catalogue: Any | None = None,
    ) -> None:
        if kg is None:
            from kg_reasoning.loaders import load_default

            kg = load_default()
        if catalogue is None:
            from kg_reasoning.catalogue import load_catalogue

            catalogue = load_catalogue()
        self.kg = kg
        self.cfg = config or ReasonerConfig()
        self.cat = catalogue
        spoken = catalogue.slot_values.get("structure", {})
        #: entity key -> the name the copilot says (catalogue's first spoken form, else label)
        self.names = {
            k: (spoken[k][0] if spoken.get(k) else e.label) for k, e in kg.entities.items()
        }

    def say(self, key: str) -> str:
        """The spoken name of an entity key (e.g. "third part of the duodenum")."""
        return self.names.get(key) or self.kg.label(key)

    def fact_text(self, f: Fact) -> str:
        """A fact as a spoken sentence fragment."""
        s, o = self.say(f.s), self.say(f.o)
        if f.p == "adjacent_to" and f.side:
            return f"the {s} lies {SIDE_WORDS.get(f.side, f.side)} the {o}"
        return f"the {s} {VERBS.get(f.p, f.p.replace('_', ' '))} the {o}"

    def need_slot(self, q: Question, slot: str) -> Answer | None:
        """An abstention when ``slot`` is missing (or names no graph entity), else None."""
        if q.slots.get(slot) is None:
            what = {
                "structure": "which structure",
                "colour": "which colour",
                "minutes": "the time window",
                "relation": "which relation",
            }.get(slot, slot)
            return abstain(
                q.intent, f"{UNSURE}: I did not catch {what}.", reason=f"missing slot {slot!r}"
            )
        if slot == "structure" and q.slots[slot] not in self.kg.entities:
            return abstain(
                q.intent,
                f"{UNSURE}: {q.slots[slot]} is not in my knowledge graph.",
                reason=f"unknown structure {q.slots[slot]!r}",
            )
        return None

    def triples(self, facts: list[Fact]) -> list[dict[str, Any]]:
        """Facts as evidence dicts (with their ids and sources)."""
        return [f.to_dict(self.kg) for f in facts]

    def entity_step(self, key: str) -> Step:
        """The step naming an entity's graph id."""
        e = self.kg.entities[key]
        return Step(
            f"The {self.say(e.key)} is {e.id} in the knowledge graph.",
            True,
            {"entity": {"key": e.key, "id": e.id, "label": self.say(e.key), "kind": e.kind}},
        )

    def detections(
        self, obs: list[Observation], names: tuple[str, ...] | set[str]
    ) -> list[Observation]:
        """Observations of ``names`` scoring at least ``cfg.detect_min_score``."""
        return [o for o in obs if o.name in names and o.score >= self.cfg.detect_min_score]

