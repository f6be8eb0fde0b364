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

from collections import defaultdict, deque
from collections.abc import Iterable
from typing import Any

from kg_reasoning.errors import KGError
from kg_reasoning.graph_terms import (
    INVERSE,
    OPPOSITE_SIDE,
    SIDE_WORDS,
    VERBS,
    Entity,
    Fact,
    Neighbour,
    normalise_term,
)

#: the records and words moved to graph_terms, still importable from here
__all__ = ["INVERSE", "OPPOSITE_SIDE", "SIDE_WORDS", "VERBS", "Entity", "Fact", "KnowledgeGraph",
           "Neighbour", "normalise_term"]


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
