"""The knowledge graph: entities with standard ids, facts with source notes, and the query API.

Entities are keyed by a snake_case key (equal to the vision class name where the structure is
a vision class, e.g. ``cystic_duct``) and carry a CURIE id: ``UBERON:...`` where a checked id
exists, ``SCOP:<key>`` (this project's prefix) otherwise. Facts are triples between entity
keys with optional attributes (``side`` for ``adjacent_to``, ``order`` for
``continuous_with``) and a source note.

Relation semantics (subject -> object):

- ``part_of``: subject is part of object (``has_part`` is its inverse).
- ``adjacent_to`` + ``side``: subject lies on ``side`` of object (posterior, anterior, left,
  right, superior, inferior, medial, lateral); the inverse holds with the opposite side.
- ``supplied_by``: subject receives blood from object (inverse: ``supplies``).
- ``drains_to``: subject drains (bile / blood) into object (inverse: ``drained_by``).
- ``continuous_with``: consecutive in a lumen order (``order`` attribute names the order).
- ``contains``, ``bounded_by``, ``branch_of``.
- ``precedes``: procedure phase order (phases are entities of kind "phase", keys
  ``phase_<Cholec80 name>``, built from procedures.yaml); inverse ``follows``.

Every fact has an id (``Fact.fid``, e.g. ``fact:cystic_artery:branch_of:right_hepatic_artery``)
that answers cite. ``complete`` holds the (entity, relation) pairs whose facts the sources
list exhaustively; any other list may be incomplete and answers say so.

Queries are dictionary look-ups: microseconds per call.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kg_reasoning.errors import KGError

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


class KnowledgeGraph:
    """Entities, facts, procedure / pathology models, and queries over them."""

    def __init__(self) -> None:
        self.entities: dict[str, Entity] = {}
        self.by_id: dict[str, str] = {}
        self.facts: list[Fact] = []
        self.sources: dict[str, str] = {}
        self.orders: dict[str, list[str]] = {}
        self.procedures: dict[str, dict[str, Any]] = {}
        #: (entity key, relation as read from it) pairs whose facts are exhaustive
        self.complete: set[tuple[str, str]] = set()
        self.cvs: dict[str, Any] = {}
        self.surveys: dict[str, dict[str, Any]] = {}
        self.regions: list[str] = []
        self.pathologies: dict[str, dict[str, Any]] = {}
        self.vision_classes: list[str] = []
        self._out: dict[str, list[Fact]] = defaultdict(list)
        self._in: dict[str, list[Fact]] = defaultdict(list)
        self._fact_set: set[tuple[str, str, str, str | None]] = set()
        self._synonyms: dict[str, str] = {}

    # ------------------------------------------------------------------ building
    def add_entity(self, e: Entity) -> Entity:
        """Add an entity, or merge it into the one with the same key or id."""
        key = self.by_id.get(e.id, e.key)
        old = self.entities.get(key)
        if old is not None:
            for syn in [e.label, *e.synonyms]:
                if syn and syn != old.label and syn not in old.synonyms:
                    old.synonyms.append(syn)
            old.fma = old.fma or e.fma
            for k, v in e.cues.items():
                old.cues.setdefault(k, v)
            old.segmentable = old.segmentable or e.segmentable
            self._index_synonyms(old)
            return old
        if e.id in self.by_id:
            raise KGError(f"id {e.id} already used by {self.by_id[e.id]}")
        self.entities[e.key] = e
        self.by_id[e.id] = e.key
        self._index_synonyms(e)
        return e

    def _index_synonyms(self, e: Entity) -> None:
        for term in (e.key, e.label, *e.synonyms):
            n = normalise_term(term)
            if n:
                self._synonyms.setdefault(n, e.key)
        self._synonyms.setdefault(e.id.lower(), e.key)

    def add_fact(self, f: Fact) -> None:
        """Add a fact between existing entities (duplicates are ignored)."""
        for k in (f.s, f.o):
            if k not in self.entities:
                raise KGError(f"fact {f.s} {f.p} {f.o}: unknown entity {k!r}")
        sig = (f.s, f.p, f.o, f.side)
        if sig in self._fact_set:
            return
        self._fact_set.add(sig)
        self.facts.append(f)
        self._out[f.s].append(f)
        self._in[f.o].append(f)

    def merge(self, other: KnowledgeGraph) -> KnowledgeGraph:
        """Merge ``other`` into this graph (entities by id / key, then facts); returns self."""
        key_map: dict[str, str] = {}
        for e in other.entities.values():
            merged = self.add_entity(
                Entity(
                    e.key,
                    e.id,
                    e.label,
                    e.kind,
                    list(e.synonyms),
                    e.fma,
                    dict(e.cues),
                    e.note,
                    e.source,
                    e.segmentable,
                )
            )
            key_map[e.key] = merged.key
        for f in other.facts:
            self.add_fact(Fact(key_map[f.s], f.p, key_map[f.o], f.side, f.order, f.note, f.source))
        self.sources.update({k: v for k, v in other.sources.items() if k not in self.sources})
        return self

    # ------------------------------------------------------------------ look-up
    def __contains__(self, key_or_id: str) -> bool:
        return key_or_id in self.entities or key_or_id in self.by_id

    def __len__(self) -> int:
        return len(self.entities)

    def entity(self, key_or_id: str) -> Entity:
        """The entity for a key or a CURIE id; KGError when unknown."""
        key = self.by_id.get(key_or_id, key_or_id)
        try:
            return self.entities[key]
        except KeyError:
            raise KGError(f"unknown entity {key_or_id!r}") from None

    def label(self, key: str) -> str:
        """Label of an entity key (the key itself when unknown)."""
        e = self.entities.get(key)
        return e.label if e else key.replace("_", " ")

    def resolve(self, text: str) -> Entity | None:
        """Entity for a spoken name, synonym, label, key or id; None when unknown."""
        key = self.by_id.get(text) or self._synonyms.get(normalise_term(text))
        if key is None and text.lower() in self._synonyms:
            key = self._synonyms[text.lower()]
        if key is None:
            n = normalise_term(text)
            if n.startswith("the "):
                key = self._synonyms.get(n[4:])
        return self.entities.get(key) if key else None

    def find_mentions(self, text: str) -> list[Entity]:
        """Entities whose names occur in ``text`` (longest names first, non-overlapping)."""
        words = normalise_term(text).split()
        taken = [False] * len(words)
        found: list[tuple[int, Entity]] = []
        for n in range(min(6, len(words)), 0, -1):
            for i in range(len(words) - n + 1):
                if any(taken[i : i + n]):
                    continue
                key = self._synonyms.get(" ".join(words[i : i + n]))
                if key is not None:
                    found.append((i, self.entities[key]))
                    for k in range(i, i + n):
                        taken[k] = True
        return [e for _, e in sorted(found, key=lambda x: x[0])]

    # ------------------------------------------------------------------ queries
    def neighbours(
        self, key: str, relation: str | None = None, side: str | None = None
    ) -> list[Neighbour]:
        """Entities one fact away, with the relation read from ``key``'s point of view.

        ``relation`` filters on the relation as read (e.g. "supplies", "part_of",
        "adjacent_to"); ``side`` filters adjacency on where the *neighbour* lies relative
        to ``key`` (e.g. side="posterior": what lies behind ``key``).
        """
        key = self.entity(key).key
        out: list[Neighbour] = []
        for f in self._out.get(key, ()):
            # key p other: other's side relative to key is the opposite of key's side
            nside = OPPOSITE_SIDE.get(f.side) if f.side else None
            out.append(Neighbour(f.o, f.p, nside, f))
        for f in self._in.get(key, ()):
            out.append(Neighbour(f.s, INVERSE.get(f.p, f.p + "_inverse"), f.side, f))
        if relation is not None:
            out = [n for n in out if n.relation == relation]
        if side is not None:
            out = [n for n in out if n.side == side]
        return out

    def located(self, key: str, side: str) -> list[Neighbour]:
        """What lies on ``side`` of ``key`` (e.g. "posterior": behind it)."""
        return self.neighbours(key, "adjacent_to", side)

    def part_of_closure(self, key: str) -> list[str]:
        """All wholes ``key`` is (transitively) part of, nearest first."""
        return self._closure(key, lambda k: [f.o for f in self._out.get(k, ()) if f.p == "part_of"])

    def parts(self, key: str) -> list[str]:
        """All (transitive) parts of ``key``, nearest first."""
        return self._closure(key, lambda k: [f.s for f in self._in.get(k, ()) if f.p == "part_of"])

    def _closure(self, key: str, step: Any) -> list[str]:
        key = self.entity(key).key
        seen: list[str] = []
        queue = deque(step(key))
        while queue:
            k = queue.popleft()
            if k in seen or k == key:
                continue
            seen.append(k)
            queue.extend(step(k))
        return seen

    def is_part_of(self, key: str, whole: str) -> bool:
        """True when ``key`` equals ``whole`` or is transitively part of it."""
        return key == whole or whole in self.part_of_closure(key)

    def supplied_by(self, key: str) -> list[Fact]:
        """Facts naming what supplies ``key`` with blood."""
        return [f for f in self._out.get(self.entity(key).key, ()) if f.p == "supplied_by"]

    def supplies(self, key: str) -> list[Fact]:
        """Facts naming what ``key`` supplies."""
        return [f for f in self._in.get(self.entity(key).key, ()) if f.p == "supplied_by"]

    def drains_to(self, key: str) -> list[Fact]:
        """Facts naming where ``key`` drains."""
        return [f for f in self._out.get(self.entity(key).key, ()) if f.p == "drains_to"]

    def drained_by(self, key: str) -> list[Fact]:
        """Facts naming what drains into ``key``."""
        return [f for f in self._in.get(self.entity(key).key, ()) if f.p == "drains_to"]

    def next_in_order(self, key: str, order: str = "gi_lumen") -> str | None:
        """The entity after ``key`` in an order (e.g. the GI lumen), or None."""
        items = self._order(order)
        key = self.entity(key).key
        if key not in items:
            return None
        i = items.index(key)
        return items[i + 1] if i + 1 < len(items) else None

    def previous_in_order(self, key: str, order: str = "gi_lumen") -> str | None:
        """The entity before ``key`` in an order, or None."""
        items = self._order(order)
        key = self.entity(key).key
        if key not in items:
            return None
        i = items.index(key)
        return items[i - 1] if i > 0 else None

    def orders_of(self, key: str) -> list[str]:
        """Names of the orders that contain ``key``."""
        return [name for name, items in self.orders.items() if key in items]

    def _order(self, order: str) -> list[str]:
        if order in self.orders:
            return self.orders[order]
        if order in self.surveys:
            return list(self.surveys[order]["order"])
        raise KGError(f"unknown order {order!r}")

    def path(
        self, a: str, b: str, relations: Iterable[str] | None = None, max_hops: int = 6
    ) -> list[Fact] | None:
        """Shortest chain of facts linking ``a`` and ``b`` (either direction), or None."""
        a, b = self.entity(a).key, self.entity(b).key
        allowed = set(relations) if relations is not None else None
        prev: dict[str, tuple[str, Fact] | None] = {a: None}
        queue = deque([(a, 0)])
        while queue:
            k, d = queue.popleft()
            if k == b:
                chain: list[Fact] = []
                while prev[k] is not None:
                    k2, f = prev[k]  # type: ignore[misc]
                    chain.append(f)
                    k = k2
                return chain[::-1]
            if d >= max_hops:
                continue
            for f in (*self._out.get(k, ()), *self._in.get(k, ())):
                if allowed is not None and f.p not in allowed:
                    continue
                other = f.o if f.s == k else f.s
                if other not in prev:
                    prev[other] = (k, f)
                    queue.append((other, d + 1))
        return None

    def facts_about(self, key: str) -> list[Fact]:
        """Every fact with ``key`` as subject or object."""
        key = self.entity(key).key
        return [*self._out.get(key, ()), *self._in.get(key, ())]

    def phase(self, name: str, procedure: str = "laparoscopic_cholecystectomy") -> dict[str, Any]:
        """A phase model (name, spoken, optional, instruments, steps) by its Cholec80 name."""
        for p in self.procedures[procedure]["phases"]:
            if p["name"] == name:
                return p
        raise KGError(f"unknown phase {name!r}")

    @staticmethod
    def phase_key(name: str) -> str:
        """Entity key of a procedure phase (Cholec80 name), e.g. phase_ClippingCutting."""
        return f"phase_{name}"

    def phase_spoken(self, name: str) -> str:
        """Spoken phase name, e.g. "calot triangle dissection"."""
        try:
            return str(self.phase(name).get("spoken", name))
        except (KGError, KeyError):
            return name

    # ------------------------------------------------------------------ RDF
    def to_rdf(self) -> Any:
        """Compile to an rdflib Graph (see :mod:`kg_reasoning.rdf`)."""
        from kg_reasoning.rdf_write import to_rdf

        return to_rdf(self)

    def to_turtle(self) -> str:
        """Serialise to Turtle text."""
        return self.to_rdf().serialize(format="turtle")
