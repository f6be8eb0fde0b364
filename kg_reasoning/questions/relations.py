"""Relation questions: what lies behind / next to / after X, what supplies or drains it, its
parts, branches, bounds and contents, straight from the knowledge graph (no perception)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kg_reasoning.answers import UNSURE, Answer, Question, Step, abstain
from kg_reasoning.graph import SIDE_WORDS, Fact, KnowledgeGraph
from kg_reasoning.phrasing import count_words, join_words
from kg_reasoning.questions.base import Context

RELATION_WORDS = {
    "supplied_by": "is supplied by",
    "supplies": "supplies",
    "drains_to": "drains to",
    "drained_by": "receives drainage from",
    "part_of": "is part of",
    "has_part": "has as parts",
    "next": "is followed by",
    "previous": "comes after",
    "continuous_with": "is continuous with",
    "adjacent": "lies next to",
    "branch_of": "is a branch of",
    "has_branch": "gives off",
    "bounded_by": "is bounded by",
    "bounds": "bounds",
    "contains": "contains",
    "contained_in": "lies in",
}
#: confidence factor of a relation answer whose list the graph does not mark complete
INCOMPLETE_FACTOR = 0.7

#: (facts, answer keys, phrase "what X supplies", sentence) of one relation lookup
Found = tuple[list[Fact], list[str], str, str]


def _side(r: Context, key: str, rel: str) -> Found:
    """What lies on one side (e.g. posterior) of ``key``."""
    nbs = r.kg.located(key, rel)
    facts, keys = [n.fact for n in nbs], [n.key for n in nbs]
    phrase = f"{SIDE_WORDS[rel]} the {r.say(key)}"
    what = "lie" if len(keys) > 1 else "lies"
    sentence = (
        f"{SIDE_WORDS[rel].capitalize()} the {r.say(key)} {what} "
        f"{join_words(['the ' + r.say(k) for k in keys])}."
    )
    return facts, keys, phrase, sentence


def _adjacent(r: Context, key: str) -> Found:
    """Everything next to ``key``, with the side where the graph gives one."""
    nbs = r.kg.neighbours(key, "adjacent_to")
    facts, keys = [n.fact for n in nbs], [n.key for n in nbs]
    phrase = f"next to the {r.say(key)}"
    parts = [
        f"the {r.say(n.key)} ({SIDE_WORDS[n.side]} it)"
        if n.side
        else f"the {r.say(n.key)}"
        for n in nbs
    ]
    sentence = f"Next to the {r.say(key)}: {join_words(parts)}."
    return facts, keys, phrase, sentence


def _order(r: Context, key: str, rel: str) -> Found:
    """What comes after (``rel`` = "next") or before ``key`` in the graph's orders."""
    kg = r.kg
    facts: list[Fact] = []
    keys: list[str] = []
    orders = kg.orders_of(key)
    for order in orders:
        other = (
            kg.next_in_order(key, order)
            if rel == "next"
            else kg.previous_in_order(key, order)
        )
        if other:
            keys.append(other)
            facts += [
                f
                for f in kg.facts_about(key)
                if f.p == "continuous_with" and other in (f.s, f.o)
            ]
    phrase = f"{'after' if rel == 'next' else 'before'} the {r.say(key)}"
    sentence = (
        f"{'After' if rel == 'next' else 'Before'} the {r.say(key)} comes "
        f"{join_words(['the ' + r.say(k) for k in keys])}."
    )
    return facts, keys, phrase, sentence


def _lookup(kg: KnowledgeGraph, key: str, rel: str) -> Callable[[], list[Any]] | None:
    """The (fact, other key) pairs of a plain relation, or None for an unknown relation."""
    return {
        "supplied_by": lambda: [(f, f.o) for f in kg.supplied_by(key)],
        "supplies": lambda: [(f, f.s) for f in kg.supplies(key)],
        "drains_to": lambda: [(f, f.o) for f in kg.drains_to(key)],
        "drained_by": lambda: [(f, f.s) for f in kg.drained_by(key)],
        "part_of": lambda: [(n.fact, n.key) for n in kg.neighbours(key, "part_of")],
        "has_part": lambda: [(n.fact, n.key) for n in kg.neighbours(key, "has_part")],
        "continuous_with": lambda: [
            (n.fact, n.key) for n in kg.neighbours(key, "continuous_with")
        ],
        **{r: (lambda r=r: [(n.fact, n.key) for n in kg.neighbours(key, r)])
           for r in ("branch_of", "has_branch", "bounded_by", "bounds", "contains",
                     "contained_in")},
    }.get(rel)


def _found(r: Context, key: str, rel: str) -> Found | None:
    """The relation's facts, answer keys, phrase and sentence (None: unknown relation)."""
    if rel in SIDE_WORDS:
        return _side(r, key, rel)
    if rel == "adjacent":
        return _adjacent(r, key)
    if rel in ("next", "previous"):
        return _order(r, key, rel)
    lookup = _lookup(r.kg, key, rel)
    if lookup is None:
        return None
    pairs = lookup()
    facts, keys = [p[0] for p in pairs], [p[1] for p in pairs]
    phrase = f"what the {r.say(key)} {RELATION_WORDS[rel]}"
    sentence = (
        f"The {r.say(key)} {RELATION_WORDS[rel]} "
        f"{join_words(['the ' + r.say(k) for k in keys])}."
    )
    return facts, keys, phrase, sentence


def relation_query(r: Context, q: Question, tl: Any, now: float, prev: Answer | None) -> Answer:
    """A relation of a structure from the graph; less sure (``INCOMPLETE_FACTOR``) when the
    graph does not mark the list complete."""
    for slot in ("structure", "relation"):
        bad = r.need_slot(q, slot)
        if bad:
            return bad
    key, rel = q.slots["structure"], q.slots["relation"]
    kg = r.kg
    e = kg.entities[key]
    steps = [r.entity_step(key)]
    found = _found(r, key, rel)
    if found is None:
        return abstain(
            q.intent,
            f"{UNSURE}: I do not know the relation {rel}.",
            steps,
            reason=f"unknown relation {rel!r}",
        )
    facts, keys, phrase, sentence = found
    if not keys:
        steps.append(
            Step(f"The knowledge graph has no facts about {phrase}.", False,
                 {"triples": [], "entity": {"id": e.id, "key": e.key}})
        )
        return abstain(
            q.intent,
            f"{UNSURE}: I have no facts about {phrase}.",
            steps,
            reason=f"no {rel} facts for {key}",
        )
    facts = list(dict.fromkeys(facts))
    complete = (key, "adjacent_to" if rel in SIDE_WORDS or rel == "adjacent" else rel) \
        in kg.complete
    n = len(keys)
    steps.append(
        Step(
            f"The knowledge graph gives {count_words(n, 'answer')} for {phrase}, "
            f"from {count_words(len(facts), 'fact')}"
            + ("; its sources list them all." if complete else
               "; it does not mark this list as complete."),
            True,
            {"triples": r.triples(facts)},
        )
    )
    if not complete:
        sentence = f"{sentence[:-1]} (my knowledge graph may not list them all)."
    return Answer(
        sentence,
        steps,
        1.0 if complete else INCOMPLETE_FACTOR,
        False,
        "",
        q.intent,
        [],
        {"entities": [{"key": k, "id": kg.entities[k].id} for k in keys],
         "complete": complete},
    )
