"""The graph's records and words: entities, facts (triples with a side / order and a source
note), one-step neighbours, the relations' inverses, verbs and side words
(:mod:`kg_reasoning.graph` describes the relation semantics)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kg_reasoning.graph import KnowledgeGraph

#: Relations with their inverse names (as used in queries).
INVERSE = {
    "part_of": "has_part",
    "supplied_by": "supplies",
    "drains_to": "drained_by",
    "contains": "contained_in",
    "bounded_by": "bounds",
    "branch_of": "has_branch",
    "adjacent_to": "adjacent_to",
    "continuous_with": "continuous_with",
    "is_a": "has_subclass",
    "precedes": "follows",
}
#: Predicates (and inverses) as verb phrases: "the {s} <verb> the {o}".
VERBS = {
    "part_of": "is part of", "has_part": "has as a part", "supplied_by": "is supplied by",
    "supplies": "supplies", "drains_to": "drains to", "drained_by": "receives drainage from",
    "contains": "contains", "contained_in": "lies in", "bounded_by": "is bounded by",
    "bounds": "bounds", "branch_of": "is a branch of", "has_branch": "gives off",
    "adjacent_to": "lies next to", "continuous_with": "is continuous with",
    "is_a": "is a kind of", "has_subclass": "has the kind", "precedes": "comes before",
    "follows": "comes after",
}
#: Opposite sides (for reading adjacent_to backwards).
OPPOSITE_SIDE = {
    "posterior": "anterior",
    "anterior": "posterior",
    "left": "right",
    "right": "left",
    "superior": "inferior",
    "inferior": "superior",
    "medial": "lateral",
    "lateral": "medial",
}
SIDE_WORDS = {
    "posterior": "behind",
    "anterior": "in front of",
    "left": "to the left of",
    "right": "to the right of",
    "superior": "above",
    "inferior": "below",
    "medial": "medial to",
    "lateral": "lateral to",
}


def normalise_term(text: str) -> str:
    """Lower-case, drop punctuation / apostrophes, squeeze spaces (for synonym look-up)."""
    t = text.lower().replace("'", "").replace("-", " ").replace("_", " ")
    t = re.sub(r"[^a-z0-9 ]+", " ", t)
    return " ".join(t.split())


@dataclass
class Entity:
    """An anatomical entity (or finding / tissue class) of the graph."""

    key: str
    id: str
    label: str
    kind: str = "entity"
    synonyms: list[str] = field(default_factory=list)
    fma: str | None = None
    cues: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    source: str = ""
    segmentable: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "key": self.key,
            "id": self.id,
            "label": self.label,
            "kind": self.kind,
            "synonyms": list(self.synonyms),
            "fma": self.fma,
            "cues": dict(self.cues),
            "note": self.note,
            "source": self.source,
            "segmentable": self.segmentable,
        }


@dataclass(frozen=True)
class Fact:
    """A triple between entity keys with attributes and a source note."""

    s: str
    p: str
    o: str
    side: str | None = None
    order: str | None = None
    note: str | None = None
    source: str = ""

    @property
    def fid(self) -> str:
        """Stable id of the fact (what answers cite)."""
        side = f":{self.side}" if self.side else ""
        return f"fact:{self.s}:{self.p}:{self.o}{side}"

    def to_dict(self, kg: KnowledgeGraph | None = None) -> dict[str, Any]:
        """JSON-friendly form; with ``kg``, subject / object ids and labels are added."""
        d: dict[str, Any] = {"id": self.fid, "s": self.s, "p": self.p, "o": self.o}
        if kg is not None:
            d["s_id"] = kg.entities[self.s].id if self.s in kg.entities else self.s
            d["o_id"] = kg.entities[self.o].id if self.o in kg.entities else self.o
        for k in ("side", "order", "note"):
            v = getattr(self, k)
            if v:
                d[k] = v
        d["source"] = self.source
        return d

    def text(self, kg: KnowledgeGraph) -> str:
        """Readable form, e.g. "abdominal aorta lies behind third part of duodenum"."""
        s, o = kg.label(self.s), kg.label(self.o)
        if self.p == "adjacent_to" and self.side:
            return f"{s} lies {SIDE_WORDS.get(self.side, self.side)} {o}"
        return f"{s} {VERBS.get(self.p, self.p.replace('_', ' '))} {o}"


@dataclass(frozen=True)
class Neighbour:
    """One step away from an entity: the other entity, the relation as read, and the fact."""

    key: str
    relation: str
    side: str | None
    fact: Fact
