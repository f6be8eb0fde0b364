"""Step-by-step reasoner: a structured question + the perception timeline -> an answer.

Each answer carries its steps (a claim plus its evidence: graph triples, observations with
frame ids and times, model scores), a confidence in [0, 1], and an ``abstained`` flag with
the reason. When a step fails the copilot says "I am not sure" rather than guess.

Question kinds (catalogue intents): identify_structure (ranked hypotheses, e.g. a large
pulsatile vessel in the third part of the duodenum -> aortoduodenal fistula),
cvs_status (per criterion), skipped_step (phase order and the "no clipping before CVS" rule),
missed_segments (bowel survey coverage in a time window), relation_query, locate_structure,
current_phase; and the commands (outline / hide / show overlays, coverage map, mute alerts,
bookmark, stop, acknowledge, explain, repeat) which return overlay / control actions.

The reasoner is deterministic and holds no state; ``previous`` (the last answer) is passed in
for "explain" and "repeat".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from kg_reasoning.evidence import pick_finding, seen_confidence
from kg_reasoning.graph import OPPOSITE_SIDE, SIDE_WORDS, VERBS, Fact, KnowledgeGraph
from kg_reasoning.timeline import Observation, TimelineLike, t_end_of, weight

UNSURE = "I am not sure"

#: Overlay colours (RGB 0-255) for the catalogue's colour slot.
COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 200, 0),
    "blue": (0, 90, 255),
    "yellow": (255, 230, 0),
    "white": (255, 255, 255),
    "orange": (255, 140, 0),
    "purple": (160, 32, 240),
    "cyan": (0, 255, 255),
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
#: Cue slot -> structure classes the vision model reports for it.
CUE_CLASSES: dict[str | None, tuple[str, ...]] = {
    "large_vessel": ("large_vessel",),
    "blood": ("blood",),
    "tubular_structure": ("cystic_duct", "common_bile_duct", "cystic_artery", "large_vessel"),
    "mass": (),
}
VESSEL_KINDS = ("artery", "vein")
CALIBRES = ("small", "medium", "large")
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


#: labels said without an article ("I see fat in ...")
MASS_NOUNS = frozenset({"fat", "connective tissue", "blood", "bile", "smoke"})


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


def count_words(n: int, noun: str) -> str:
    """ "one fact", "three facts" (numbers up to twelve in words)."""
    words = "no one two three four five six seven eight nine ten eleven twelve".split()
    return f"{words[n] if 0 <= n < len(words) else n} {noun}{'' if n == 1 else 's'}"


def fmt_time(t_s: float) -> str:
    """Media time as m:ss."""
    m, s = divmod(max(0, int(round(t_s))), 60)
    return f"{m}:{s:02d}"


def join_words(items: list[str], conj: str = "and") -> str:
    """Join as "a", "a and b", "a, b and c" (or with ``conj`` = "or")."""
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + f" {conj} " + items[-1]


def position_words(centroid: Any) -> str:
    """Normalised (x, y) centroid -> "upper left of the image" style words."""
    try:
        x, y = float(centroid[0]), float(centroid[1])
    except (TypeError, ValueError, IndexError):
        return "in view"
    v = "upper" if y < 1 / 3 else "lower" if y > 2 / 3 else "middle"
    h = "left" if x < 1 / 3 else "right" if x > 2 / 3 else "centre"
    if v == "middle" and h == "centre":
        return "in the centre of the image"
    if v == "middle":
        return f"on the {h} of the image"
    if h == "centre":
        return f"in the {v} centre of the image"
    return f"in the {v} {h} of the image"


class Reasoner:
    """Answers structured questions from the knowledge graph and a perception timeline."""

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

    # ------------------------------------------------------------------ entry point
    def answer(
        self,
        question: Question,
        timeline: TimelineLike | None = None,
        previous: Answer | None = None,
    ) -> Answer:
        """Answer one question; never raises for unknown content (it abstains instead)."""
        intent = question.intent
        handler = getattr(self, f"_q_{intent}", None)
        if handler is None:
            return self._abstain(intent, f"I cannot answer questions of kind {intent!r}.")
        unresolved = question.unresolved
        if unresolved:
            slot, words = next(iter(unresolved.items()))
            if slot == "structure":
                e = self.kg.resolve(words)
                if e is not None:  # e.g. a term from a merged ontology
                    question = Question(
                        intent,
                        {**question.slots, "structure": e.key},
                        question.text,
                        question.t_s,
                        {},
                        question.parse_score,
                    )
                else:
                    return self._abstain(
                        intent,
                        f"{UNSURE}: I do not know the {words}; it is not in my knowledge graph.",
                        reason=f"unknown structure {words!r}: not in the knowledge graph",
                    )
            else:
                return self._abstain(
                    intent,
                    f"{UNSURE}: I did not understand the {slot.replace('_', ' ')} '{words}'.",
                    reason=f"unknown {slot} {words!r}",
                )
        now = self._now(question, timeline)
        empty = timeline is None or timeline.latest_t() is None
        if intent in PERCEPTION_INTENTS and empty and intent != "locate_structure":
            return self._abstain(
                intent,
                f"{UNSURE}: I have no perception timeline to answer from.",
                reason="no perception timeline (no session given or nothing observed yet)",
            )
        ans = handler(question, timeline, now, previous)
        ans.intent = intent
        # how sure it is that this was the question asked is part of every answer's confidence
        ans.data.setdefault("confidence_parts", {})["parse"] = round(question.parse_score, 4)
        ans.confidence = round(max(0.0, min(1.0, ans.confidence * question.parse_score)), 4)
        return ans

    def _now(self, q: Question, timeline: TimelineLike | None) -> float:
        if q.t_s is not None:
            return float(q.t_s)
        if timeline is not None:
            t = timeline.latest_t()
            if t is not None:
                return float(t)
        return 0.0

    def _abstain(
        self,
        intent: str,
        text: str,
        steps: list[Step] | None = None,
        reason: str = "",
        confidence: float = 0.0,
        data: dict[str, Any] | None = None,
    ) -> Answer:
        return Answer(text, steps or [], confidence, True, reason or text, intent, [], data or {})

    def _need_slot(self, q: Question, slot: str) -> Answer | None:
        if q.slots.get(slot) is None:
            what = {
                "structure": "which structure",
                "colour": "which colour",
                "minutes": "the time window",
                "relation": "which relation",
            }.get(slot, slot)
            return self._abstain(
                q.intent, f"{UNSURE}: I did not catch {what}.", reason=f"missing slot {slot!r}"
            )
        if slot == "structure" and q.slots[slot] not in self.kg.entities:
            return self._abstain(
                q.intent,
                f"{UNSURE}: {q.slots[slot]} is not in my knowledge graph.",
                reason=f"unknown structure {q.slots[slot]!r}",
            )
        return None

    def _triples(self, facts: list[Fact]) -> list[dict[str, Any]]:
        return [f.to_dict(self.kg) for f in facts]

    def _entity_step(self, key: str) -> Step:
        e = self.kg.entities[key]
        return Step(
            f"The {self.say(e.key)} is {e.id} in the knowledge graph.",
            True,
            {"entity": {"key": e.key, "id": e.id, "label": self.say(e.key), "kind": e.kind}},
        )

    def _detections(
        self, obs: list[Observation], names: tuple[str, ...] | set[str]
    ) -> list[Observation]:
        return [o for o in obs if o.name in names and o.score >= self.cfg.detect_min_score]

    # ------------------------------------------------------------------ commands
    def _q_outline_structure(self, q, tl, now, prev) -> Answer:
        for slot in ("structure", "colour"):
            bad = self._need_slot(q, slot)
            if bad:
                return bad
        key, colour = q.slots["structure"], q.slots["colour"]
        e = self.kg.entities[key]
        steps = [self._entity_step(key)]
        if not e.segmentable:
            steps.append(
                Step(
                    f"The vision model does not segment the {self.say(e.key)}.",
                    False,
                    {"scores": {}, "rule": "only vision classes can be outlined",
                     "entity": {"id": e.id, "key": e.key}},
                )
            )
            return self._abstain(
                q.intent,
                f"{UNSURE} I can outline the {self.say(e.key)}: "
                "my vision model does not detect it.",
                steps,
                reason=f"{key} is not a vision class",
            )
        steps.append(
            Step(
                f"The vision model segments the {self.say(e.key)}.", True,
                {"rule": "vision class", "entity": {"id": e.id, "key": e.key}}
            )
        )
        action = {
            "action": "outline",
            "structure": key,
            "colour": colour,
            "rgb": list(COLOUR_RGB.get(colour, (0, 200, 0))),
        }
        text = f"Outlining the {self.say(e.key)} in {colour}."
        if tl is not None and tl.latest_t() is not None:
            seen = self._detections(tl.window(now - self.cfg.recent_s, now, "structure"), {key})
            if seen:
                steps.append(
                    Step(
                        f"The {self.say(e.key)} is visible now ({len(seen)} detections).",
                        True,
                        {"observations": obs_evidence(seen)},
                    )
                )
            else:
                steps.append(
                    Step(
                        f"The {self.say(e.key)} is not visible in the last "
                        f"{self.cfg.recent_s:g} s.",
                        True,
                        {"observations": [], "window": window_ref(now - self.cfg.recent_s, now)},
                    )
                )
                text += " I do not see it right now; it will be outlined when it appears."
        return Answer(text, steps, 1.0, False, "", q.intent, [action])

    def _command(self, q, text: str, action: dict[str, Any]) -> Answer:
        return Answer(
            text, [command_step(q.intent)], 1.0, False, "", q.intent, [action]
        )

    def _q_hide_overlay(self, q, tl, now, prev) -> Answer:
        key = q.slots.get("structure")
        if key and key in self.kg.entities:
            return self._command(
                q, f"Hiding the {self.say(key)} outline.", {"action": "hide", "structure": key}
            )
        return self._command(q, "Hiding the overlays.", {"action": "hide", "structure": None})

    def _q_show_overlay(self, q, tl, now, prev) -> Answer:
        return self._command(q, "Showing the overlays.", {"action": "show"})

    def _q_show_coverage(self, q, tl, now, prev) -> Answer:
        return self._command(q, "Showing the coverage map.", {"action": "show_coverage"})

    def _q_mute_alerts(self, q, tl, now, prev) -> Answer:
        minutes = int(q.slots.get("minutes") or 5)
        return self._command(
            q,
            f"Alerts muted for {minutes} minute{'s' if minutes != 1 else ''}.",
            {"action": "mute_alerts", "minutes": minutes, "state_changing": True},
        )

    def _q_bookmark(self, q, tl, now, prev) -> Answer:
        return self._command(
            q, f"Bookmarked at {fmt_time(now)}.", {"action": "bookmark", "t_s": now}
        )

    def _q_stop(self, q, tl, now, prev) -> Answer:
        return self._command(q, "", {"action": "stop_speech"})

    def _q_acknowledge(self, q, tl, now, prev) -> Answer:
        return self._command(q, "Acknowledged.", {"action": "acknowledge"})

    def _q_repeat(self, q, tl, now, prev) -> Answer:
        if prev is None:
            return self._abstain(q.intent, "I have nothing to repeat.", reason="no previous answer")
        return Answer(
            prev.answer,
            prev.steps,
            prev.confidence,
            prev.abstained,
            prev.reason,
            q.intent,
            list(prev.overlay_actions),
            dict(prev.data),
        )

    def _q_explain(self, q, tl, now, prev) -> Answer:
        if prev is None:
            return self._abstain(
                q.intent, "I have nothing to explain yet.", reason="no previous answer"
            )
        return Answer(
            prev.explanation(),
            prev.steps,
            prev.confidence,
            prev.abstained,
            prev.reason,
            q.intent,
            [],
            dict(prev.data),
        )

    # ------------------------------------------------------------------ knowledge questions
    def _q_relation_query(self, q, tl, now, prev) -> Answer:
        for slot in ("structure", "relation"):
            bad = self._need_slot(q, slot)
            if bad:
                return bad
        key, rel = q.slots["structure"], q.slots["relation"]
        kg = self.kg
        e = kg.entities[key]
        steps = [self._entity_step(key)]
        facts: list[Fact] = []
        keys: list[str] = []
        if rel in SIDE_WORDS:
            nbs = kg.located(key, rel)
            facts, keys = [n.fact for n in nbs], [n.key for n in nbs]
            phrase = f"{SIDE_WORDS[rel]} the {self.say(e.key)}"
            what = "lie" if len(keys) > 1 else "lies"
            sentence = (
                f"{SIDE_WORDS[rel].capitalize()} the {self.say(e.key)} {what} "
                f"{join_words(['the ' + self.say(k) for k in keys])}."
            )
        elif rel == "adjacent":
            nbs = kg.neighbours(key, "adjacent_to")
            facts, keys = [n.fact for n in nbs], [n.key for n in nbs]
            phrase = f"next to the {self.say(e.key)}"
            parts = [
                f"the {self.say(n.key)} ({SIDE_WORDS[n.side]} it)"
                if n.side
                else f"the {self.say(n.key)}"
                for n in nbs
            ]
            sentence = f"Next to the {self.say(e.key)}: {join_words(parts)}."
        elif rel in ("next", "previous"):
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
            phrase = f"{'after' if rel == 'next' else 'before'} the {self.say(e.key)}"
            sentence = (
                f"{'After' if rel == 'next' else 'Before'} the {self.say(e.key)} comes "
                f"{join_words(['the ' + self.say(k) for k in keys])}."
            )
        else:
            lookup = {
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
            if lookup is None:
                return self._abstain(
                    q.intent,
                    f"{UNSURE}: I do not know the relation {rel}.",
                    steps,
                    reason=f"unknown relation {rel!r}",
                )
            pairs = lookup()
            facts, keys = [p[0] for p in pairs], [p[1] for p in pairs]
            phrase = f"what the {self.say(e.key)} {RELATION_WORDS[rel]}"
            sentence = (
                f"The {self.say(e.key)} {RELATION_WORDS[rel]} "
                f"{join_words(['the ' + self.say(k) for k in keys])}."
            )
        if not keys:
            steps.append(
                Step(f"The knowledge graph has no facts about {phrase}.", False,
                     {"triples": [], "entity": {"id": e.id, "key": e.key}})
            )
            return self._abstain(
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
                {"triples": self._triples(facts)},
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

    # ------------------------------------------------------------------ perception questions
    def _q_current_phase(self, q, tl, now, prev) -> Answer:
        obs = [
            o
            for o in tl.window(now - self.cfg.recent_s, now, "phase")
            if o.score >= self.cfg.detect_min_score
        ]
        if len(obs) < self.cfg.min_frames:
            return self._abstain(
                q.intent,
                f"{UNSURE} which phase we are in: no confident phase "
                f"estimate in the last {self.cfg.recent_s:g} seconds.",
                [
                    Step(
                        "No confident phase observations now.",
                        False,
                        {"observations": obs_evidence(obs),
                         "window": window_ref(now - self.cfg.recent_s, now)},
                    )
                ],
                reason="no confident phase observations",
            )
        votes = Counter(o.name for o in obs)
        name, n = votes.most_common(1)[0]
        share = n / len(obs)
        mine = [o for o in obs if o.name == name]
        score = sum(o.score for o in mine) / len(mine)
        # start of the current run of this phase
        start = mine[0].t_s
        for o in reversed(tl.window(0.0, now, "phase")):
            if o.name != name and o.score >= self.cfg.detect_min_score:
                break
            start = o.t_s
        steps = [
            Step(
                f"The phase model says {self.kg.phase_spoken(name)} in {n} of {len(obs)} "
                f"recent frames (mean score {score:.2f}).",
                share >= 0.5,
                {
                    "observations": obs_evidence(mine),
                    "scores": {"share": round(share, 3), "mean": round(score, 3)},
                },
            )
        ]
        if share < self.cfg.region_min_share:
            return self._abstain(
                q.intent,
                f"{UNSURE} which phase we are in.",
                steps,
                reason="phase estimates disagree",
                confidence=share * score,
            )
        phases = [p["name"] for p in self.kg.procedures["laparoscopic_cholecystectomy"]["phases"]]
        text = f"We are in the {self.kg.phase_spoken(name)} phase, since {fmt_time(start)}."
        if name in phases and phases.index(name) + 1 < len(phases):
            nxt = phases[phases.index(name) + 1]
            steps.append(
                Step(
                    f"In the procedure model, {self.kg.phase_spoken(nxt)} follows.",
                    True,
                    {
                        "rule": "laparoscopic cholecystectomy phase order",
                        "source": self.kg.procedures["laparoscopic_cholecystectomy"].get("src", ""),
                        "triples": [f.to_dict(self.kg) for f in self.kg.facts_about(
                            self.kg.phase_key(name)) if f.p == "precedes" and
                            f.o == self.kg.phase_key(nxt)],
                    },
                )
            )
            text += f" Next expected: {self.kg.phase_spoken(nxt)}."
        return Answer(
            text, steps, share * score, False, "", q.intent, [], {"phase": name, "since_s": start}
        )

    def _q_cvs_status(self, q, tl, now, prev) -> Answer:
        cfg, cvs = self.cfg, self.kg.cvs
        obs = tl.window(now - cfg.recent_s, now, "cvs")
        criteria = cvs["criteria"]
        steps: list[Step] = []
        per: dict[str, float] = {}
        missing, borderline, unmet = [], [], []
        for c in criteria:
            mine = [o for o in obs if o.name == c["name"]]
            if not mine:
                missing.append(c)
                steps.append(
                    Step(
                        f"{c['code']} ({c['spoken']}): no assessment in the last "
                        f"{cfg.recent_s:g} s.",
                        False,
                        {"observations": [], "window": window_ref(now - cfg.recent_s, now)},
                    )
                )
                continue
            nf = sum(weight(o) for o in mine)
            mean = sum(o.score * weight(o) for o in mine) / nf
            per[c["name"]] = mean
            met = mean >= cvs.get("threshold", 0.5)
            unsure = cfg.uncertain_low <= mean <= cfg.uncertain_high
            if unsure:
                borderline.append(c)
            elif not met:
                unmet.append(c)
            state = "borderline" if unsure else "met" if met else "not met"
            steps.append(
                Step(
                    f"{c['code']} ({c['spoken']}): {state}, mean score {mean:.2f} over "
                    f"{nf} frames.",
                    not unsure,
                    {"observations": obs_evidence(mine), "scores": {c["name"]: round(mean, 3)}},
                )
            )
        rule = Step(
            "Rule: the critical view of safety is reached when all three criteria are met.",
            True,
            {
                "rule": "CVS = C1 and C2 and C3",
                "rule_id": "rule:cvs_all_criteria",
                "source": self.kg.sources.get("strasberg", "Strasberg 1995"),
            },
        )
        steps.append(rule)
        data = {"criteria": {k: round(v, 3) for k, v in per.items()}}
        if missing:
            return self._abstain(
                q.intent,
                f"{UNSURE}: the critical view of safety has not been "
                f"assessed in the last {cfg.recent_s:g} seconds.",
                steps,
                reason="no CVS observations for " + ", ".join(c["name"] for c in missing),
                data=data,
            )
        conf = min(max(v, 1 - v) for v in per.values())
        if borderline and unmet:
            # CVS needs all three: one criterion clearly not met decides, whatever the others
            data["reached"] = False
            data["borderline"] = [c["name"] for c in borderline]
            sure = min(max(per[c["name"]], 1 - per[c["name"]]) for c in unmet)
            return Answer(
                f"No, the critical view of safety is not reached: "
                f"{join_words([c['spoken'] for c in unmet])} not yet; "
                f"{join_words([c['spoken'] for c in borderline])} is borderline.",
                steps,
                sure,
                False,
                "",
                q.intent,
                [],
                data,
            )
        if borderline:
            return self._abstain(
                q.intent,
                f"{UNSURE} whether the critical view of safety is reached: "
                f"{join_words([c['spoken'] for c in borderline])} is borderline.",
                steps,
                reason="borderline criterion " + ", ".join(c["name"] for c in borderline),
                confidence=conf,
                data=data,
            )
        data["reached"] = not unmet
        if not unmet:
            return Answer(
                "Yes, the critical view of safety is reached: all three criteria are met.",
                steps,
                conf,
                False,
                "",
                q.intent,
                [],
                data,
            )
        return Answer(
            f"No, the critical view of safety is not reached: "
            f"{join_words([c['spoken'] for c in unmet])} not yet.",
            steps,
            conf,
            False,
            "",
            q.intent,
            [],
            data,
        )

    def _cvs_reached_time(self, tl: TimelineLike, until: float) -> tuple[float | None, list]:
        """First time all criteria's latest scores are met (None if never), with evidence."""
        names = [c["name"] for c in self.kg.cvs["criteria"]]
        thr = self.kg.cvs.get("threshold", 0.5)
        latest: dict[str, Observation] = {}
        for o in tl.window(0.0, until, "cvs"):
            latest[o.name] = o
            if all(n in latest and latest[n].score >= thr for n in names):
                return o.t_s, [latest[n] for n in names]
        return None, list(latest.values())

    def _q_skipped_step(self, q, tl, now, prev) -> Answer:
        cfg = self.cfg
        proc = self.kg.procedures["laparoscopic_cholecystectomy"]
        phases = proc["phases"]
        obs = [o for o in tl.window(0.0, now, "phase") if o.score >= cfg.detect_min_score]
        groups: dict[str, list[Observation]] = defaultdict(list)
        for o in obs:
            groups[o.name].append(o)
        entered = {
            n: g for n, g in groups.items() if sum(weight(o) for o in g) >= cfg.phase_min_frames
        }
        if not entered:
            return self._abstain(
                q.intent,
                f"{UNSURE}: I have no confident phase estimates yet.",
                [
                    Step(
                        "No phase was observed with confidence.",
                        False,
                        {"observations": obs_evidence(obs), "window": window_ref(0.0, now)},
                    )
                ],
                reason="no confident phase observations",
            )
        names = [p["name"] for p in phases]
        order = sorted(entered, key=lambda n: entered[n][0].t_s)
        steps = [
            Step(
                "Phases seen, in order: "
                + join_words(
                    [f"{self.kg.phase_spoken(n)} from {fmt_time(entered[n][0].t_s)}" for n in order]
                )
                + ".",
                True,
                {
                    "observations": [entered[n][0].to_dict() for n in order],
                    "scores": {n: sum(weight(o) for o in entered[n]) for n in order},
                },
            )
        ]
        last_idx = max(names.index(n) for n in entered if n in names)
        skipped = [
            p for p in phases[:last_idx] if p["name"] not in entered and not p.get("optional")
        ]
        # the expected order as graph edges (phase precedes phase), up to the last phase seen
        keys = [self.kg.phase_key(p["name"]) for p in phases[: last_idx + 1]]
        order_facts = [f.to_dict(self.kg) for k in keys for f in self.kg.facts_about(k)
                       if f.p == "precedes" and f.s == k and f.o in keys]
        steps.append(
            Step(
                "Compared with the expected order, "
                + (
                    f"{join_words([p['spoken'] for p in skipped])} "
                    f"{'was' if len(skipped) == 1 else 'were'} skipped."
                    if skipped
                    else "no required phase is missing."
                ),
                True,
                {"triples": order_facts},
            )
        )
        # rule: no clipping or cutting before CVS
        rule = proc["rules"][0]
        clip_times = [
            o.t_s
            for o in tl.window(0.0, now, "event")
            if o.name in rule["before_events"] and o.score >= cfg.detect_min_score
        ]
        if rule["before_phase"] in entered:
            clip_times.append(entered[rule["before_phase"]][0].t_s)
        clip_t = min(clip_times) if clip_times else None
        violation = False
        rule_ok = True
        # as sure as the phase model was of the phases the comparison rests on
        confidence = min(sum(o.score for o in g) / len(g) for g in entered.values())
        if clip_t is None:
            steps.append(
                Step(
                    "Clipping has not started, so the CVS rule is not yet at stake.",
                    True,
                    {"rule": rule["text"], "rule_id": f"rule:{rule['name']}"},
                )
            )
        else:
            cvs_t, ev = self._cvs_reached_time(tl, clip_t)
            has_cvs = bool(tl.window(0.0, now, "cvs"))
            if not has_cvs:
                rule_ok = False
                confidence *= 0.5
                steps.append(
                    Step(
                        f"Clipping started at {fmt_time(clip_t)}, but there is no CVS "
                        "assessment to check the rule.",
                        False,
                        {"rule": rule["text"], "rule_id": f"rule:{rule['name']}"},
                    )
                )
            elif cvs_t is None:
                violation = True
                steps.append(
                    Step(
                        f"Clipping started at {fmt_time(clip_t)} before the critical view"
                        " of safety was reached.",
                        True,
                        {
                            "rule": rule["text"],
                            "rule_id": f"rule:{rule['name']}",
                            "observations": [o.to_dict() for o in ev],
                            "scores": {"clip_t_s": clip_t},
                        },
                    )
                )
            else:
                steps.append(
                    Step(
                        f"The critical view of safety was reached at {fmt_time(cvs_t)}, "
                        f"before clipping at {fmt_time(clip_t)}.",
                        True,
                        {
                            "rule": rule["text"],
                            "rule_id": f"rule:{rule['name']}",
                            "observations": [o.to_dict() for o in ev],
                            "scores": {"cvs_t_s": cvs_t, "clip_t_s": clip_t},
                        },
                    )
                )
        parts = []
        if skipped:
            parts.append(
                f"Yes: the {join_words([p['spoken'] for p in skipped])} "
                f"phase{'s were' if len(skipped) > 1 else ' was'} skipped."
            )
        if violation:
            parts.append("Clipping started before the critical view of safety was reached.")
        if not parts:
            parts.append("No expected step was skipped so far.")
            if not rule_ok:
                parts.append(
                    "I am not sure whether the critical view of safety was reached before clipping."
                )
        data = {
            "skipped": [p["name"] for p in skipped],
            "cvs_rule_violated": violation,
            "phases_seen": order,
        }
        return Answer(" ".join(parts), steps, confidence, False, "", q.intent, [], data)

    def _gap_evidence(self, order: list[str], seen: list[str], missed: list[str],
                      good: dict[str, list[Observation]]) -> str:
        """One sentence per gap of missed segments: the seen segments on either side, with
        when the camera left the one and reached the other (feed time m:ss)."""
        parts = []
        i = 0
        while i < len(order):
            if order[i] not in missed:
                i += 1
                continue
            j = i
            while j + 1 < len(order) and order[j + 1] in missed:
                j += 1
            before = next((s for s in reversed(order[:i]) if s in seen), None)
            after = next((s for s in order[j + 1:] if s in seen), None)
            if before is not None and after is not None:
                reached = good[after][0].t_s
                left = max((o.t_s for o in good[before] if o.t_s <= reached),
                           default=good[before][-1].t_s)
                parts.append(f"the camera went from the {self.say(before)} (last seen at "
                             f"{fmt_time(left)}) to the {self.say(after)} "
                             f"(from {fmt_time(reached)})")
            i = j + 1
        if not parts:
            return ""
        text = "; ".join(parts)
        return text[0].upper() + text[1:] + "."

    def _q_missed_segments(self, q, tl, now, prev) -> Answer:
        bad = self._need_slot(q, "minutes")
        if bad:
            return bad
        cfg, kg = self.cfg, self.kg
        minutes = int(q.slots["minutes"])
        t0 = now - minutes * 60.0
        order = list(kg.surveys["bowel_survey"]["order"])
        obs = tl.window(t0, now, "region")
        seg_obs = [o for o in obs if o.name in order]
        good: dict[str, list[Observation]] = defaultdict(list)
        weak: dict[str, list[Observation]] = defaultdict(list)
        for o in seg_obs:
            (good if o.score >= cfg.detect_min_score else weak)[o.name].append(o)
        nframes = {s: sum(weight(o) for o in good[s]) for s in order}
        seen = [s for s in order if nframes[s] >= cfg.seen_min_frames]
        n_obs, n_seg = sum(weight(o) for o in obs), sum(weight(o) for o in seg_obs)
        win = f"the last {minutes} minute{'s' if minutes != 1 else ''}"
        steps = [
            Step(
                f"The region model reported {n_obs} frames in {win} "
                f"({fmt_time(max(0.0, t0))} to {fmt_time(now)}).",
                bool(seg_obs),
                {"scores": {"region_frames": n_obs, "segment_frames": n_seg},
                 "window": window_ref(t0, now)},
            )
        ]
        if not seen:
            return self._abstain(
                q.intent,
                f"{UNSURE}: I have not seen any bowel segment in {win}.",
                steps,
                reason="no bowel segment observed in the window",
            )
        steps.append(
            Step(
                "Segments seen: "
                + join_words(
                    [
                        f"{self.say(s)} ({nframes[s]} frames from {fmt_time(good[s][0].t_s)})"
                        for s in seen
                    ]
                )
                + ".",
                True,
                {"observations": [o.to_dict() for s in seen for o in (good[s][0], good[s][-1])]},
            )
        )
        i0, i1 = order.index(seen[0]), order.index(seen[-1])
        missed = [s for s in order[i0 : i1 + 1] if s not in seen]
        not_reached = [s for s in order if s not in seen and s not in missed]
        gap_facts = [f for s in missed for f in kg.facts_about(s) if f.p == "continuous_with"]
        steps.append(
            Step(
                "Compared with the survey order, "
                + (
                    f"{join_words([self.say(s) for s in missed])} "
                    f"{'was' if len(missed) == 1 else 'were'} not seen between segments that were."
                    if missed
                    else "no segment between the first and last seen is missing."
                ),
                True,
                {"triples": self._triples(gap_facts or [
                    f for a, b in zip(order[i0:i1], order[i0 + 1:i1 + 1], strict=False)
                    for f in kg.facts_about(a) if f.p == "continuous_with" and b in (f.s, f.o)]),
                 "rule": "bowel survey order (lumen order)"},
            )
        )
        confidence = sum(o.score * weight(o) for s in seen for o in good[s]) / sum(
            nframes[s] for s in seen
        )
        glimpsed = [s for s in missed if weak[s]]
        if glimpsed:
            confidence *= 0.7
        spoken = [f"the {self.say(s)}" for s in missed]
        if missed:
            text = f"Yes: in {win} we missed {join_words(spoken)}."
            text += " " + self._gap_evidence(order, seen, missed, good)
            if glimpsed:
                text += (
                    f" {join_words(['the ' + self.say(s) for s in glimpsed]).capitalize()} "
                    "may have been glimpsed with low confidence."
                )
        else:
            text = (
                f"No: every segment from the {self.say(seen[0])} to the {self.say(seen[-1])} "
                f"was seen in {win}."
            )
        if not_reached:
            text += (
                " Not seen at either end of the survey: "
                + join_words([self.say(s) for s in not_reached])
                + "."
            )
        data = {
            "missed": missed,
            "seen": seen,
            "not_reached": not_reached,
            "window_s": [round(t0, 3), round(now, 3)],
        }
        return Answer(text, steps, confidence, False, "", q.intent, [], data)

    def _q_locate_structure(self, q, tl, now, prev) -> Answer:
        bad = self._need_slot(q, "structure")
        if bad:
            return bad
        kg, cfg = self.kg, self.cfg
        key = q.slots["structure"]
        e = kg.entities[key]
        steps = [self._entity_step(key)]
        hint_nbs = [n for n in kg.neighbours(key, "adjacent_to") if n.side][:3]
        hint = ""
        if hint_nbs:
            hint = (
                " Anatomically, it lies "
                + join_words(
                    [f"{SIDE_WORDS[OPPOSITE_SIDE[n.side]]} the {self.say(n.key)}" for n in hint_nbs]
                )
                + "."
            )
        hint_step = Step(
            "Anatomical neighbours from the knowledge graph." if hint_nbs else
            "The knowledge graph gives no side relations for it.",
            True,
            {"triples": self._triples([n.fact for n in hint_nbs]),
             "entity": {"id": e.id, "key": e.key}},
        )
        empty = tl is None or tl.latest_t() is None
        is_region = key in kg.regions
        if empty:
            steps.append(Step("There is no perception timeline to look in.", False,
                              {"window": {"id": "timeline:none"}}))
            steps.append(hint_step)
            return self._abstain(
                q.intent,
                f"{UNSURE} where the {self.say(e.key)} is: I have no video observations.{hint}",
                steps,
                reason="no perception timeline (no session given)",
            )
        if not e.segmentable and not is_region:
            steps.append(
                Step(f"The vision model does not detect the {self.say(e.key)}.", False,
                     {"entity": {"id": e.id, "key": e.key}})
            )
            steps.append(hint_step)
            return self._abstain(
                q.intent,
                f"{UNSURE} where the {self.say(e.key)} is: "
                f"my vision model does not detect it.{hint}",
                steps,
                reason=f"{key} is not a vision class",
            )
        kind = "region" if is_region else "structure"
        recent = self._detections(tl.window(now - cfg.recent_s, now, kind), {key})
        if len(recent) >= cfg.min_frames:
            score = sum(o.score for o in recent) / len(recent)
            cents = [o.attrs["centroid"] for o in recent if "centroid" in o.attrs]
            if is_region:
                text = f"We are in the {self.say(e.key)} now (region score {score:.2f})."
                where = "current region"
            else:
                where = (
                    position_words(
                        [
                            sum(c[0] for c in cents) / len(cents),
                            sum(c[1] for c in cents) / len(cents),
                        ]
                    )
                    if cents
                    else ("in view")
                )
                text = f"The {self.say(e.key)} is visible {where} (score {score:.2f})."
            steps.append(
                Step(
                    f"The {self.say(e.key)} was detected in {len(recent)} frames of the last "
                    f"{cfg.recent_s:g} s, {where}.",
                    True,
                    {"observations": obs_evidence(recent), "scores": {"mean": round(score, 3)}},
                )
            )
            actions = (
                []
                if is_region
                else [
                    {
                        "action": "outline",
                        "structure": key,
                        "colour": "green",
                        "rgb": list(COLOUR_RGB["green"]),
                        "transient_s": 5.0,
                    }
                ]
            )
            return Answer(
                text, steps, score, False, "", q.intent, actions, {"visible": True, "where": where}
            )
        earlier = self._detections(tl.window(0.0, now, kind), {key})
        if sum(weight(o) for o in earlier) >= cfg.min_frames:
            last = earlier[-1]
            last_t = t_end_of(last)
            steps.append(
                Step(
                    f"The {self.say(e.key)} is not visible now; it was last seen at "
                    f"{fmt_time(last_t)} (frame {last.frame_id}).",
                    True,
                    {"observations": obs_evidence(earlier[-cfg.min_frames * 3 :])},
                )
            )
            steps.append(hint_step)
            return Answer(
                f"I do not see the {self.say(e.key)} now; "
                f"it was last seen at {fmt_time(last_t)}.{hint}",
                steps,
                seen_confidence(earlier[-cfg.min_frames * 3:], now),
                False,
                "",
                q.intent,
                [],
                {"visible": False, "last_seen_s": last_t},
            )
        steps.append(Step(f"The {self.say(e.key)} was not detected in this session.", False,
                          {"window": window_ref(0.0, now)}))
        steps.append(hint_step)
        return self._abstain(
            q.intent,
            f"{UNSURE} where the {self.say(e.key)} is: I have not seen it.{hint}",
            steps,
            reason=f"{key} not detected in the timeline",
        )

    # ------------------------------------------------------------------ identify
    def _q_identify_structure(self, q, tl, now, prev) -> Answer:
        cfg, kg = self.cfg, self.kg
        cue = q.slots.get("cue")
        if cue in CUE_CLASSES:
            targets: tuple[str, ...] = CUE_CLASSES[cue]
        else:
            targets = tuple(c for c in kg.vision_classes if c in kg.entities)
        cue_label = self.cat.spoken("cue", cue) if cue else "structure"
        t0 = now - cfg.recent_s
        window = tl.window(t0, now)
        structs = [o for o in window if o.kind == "structure"]
        found = self._detections(structs, set(targets))
        if cue is None:  # "what is this?": an unexpected finding first, else the most salient
            unexpected = [o for o in found if kg.entities[o.name].kind == "finding"]
            found = unexpected if len(unexpected) >= cfg.min_frames else found
        # ---- step 1: detect
        if not targets:
            s1 = Step(f"I have no detector for a {cue_label}.", False,
                      {"rule": "cue -> vision classes", "rule_id": f"rule:cue_classes:{cue}"})
            return self._abstain(
                q.intent,
                f"{UNSURE}: I cannot detect a {cue_label}.",
                [s1],
                reason=f"no detector for cue {cue!r}",
            )
        if len(found) < cfg.min_frames:
            s1 = Step(
                f"No {cue_label} detected in the last {cfg.recent_s:g} s.",
                False,
                {
                    "observations": obs_evidence(
                        self._detections(structs, set(targets))
                        or [o for o in structs if o.name in targets]
                    ),
                    "window": window_ref(t0, now),
                },
            )
            return self._abstain(
                q.intent,
                f"{UNSURE}: I do not see a {cue_label} right now.",
                [s1],
                reason=f"step 1 failed: no {cue_label} detected",
            )
        picked, decided, tied = pick_finding(found, self.names)
        if picked is None:  # no alphabetical tie-break: ask which one is meant
            names = [self.say(n) for n in tied]
            s1 = Step(f"I detect the {join_words(names)} equally clearly; {decided}.", False,
                      {"observations": obs_evidence(found)})
            return self._abstain(
                q.intent,
                f"{UNSURE} which one you mean: I see the {join_words(names)}. Which structure "
                "do you mean?",
                [s1],
                reason="two findings equally likely: " + ", ".join(tied),
            )
        name = picked
        det = [o for o in found if o.name == name]
        det_score = sum(o.score for o in det) / len(det)
        finding = self._finding_cues(name, det)
        desc = self._describe(finding, self.say(name))
        s1 = Step(
            f"I detect {desc} in {len(det)} frames (mean score {det_score:.2f}); chosen by "
            f"{decided}.",
            True,
            {
                "observations": obs_evidence(det),
                "scores": {
                    "detection": round(det_score, 3),
                    **{k: v for k, v in finding.items() if isinstance(v, float)},
                },
                "cues": {k: v for k, v in finding.items() if not isinstance(v, float)},
            },
        )
        entity = kg.entities.get(name)
        # ---- step 2: locate
        regions = [o for o in window if o.kind == "region" and o.score >= cfg.detect_min_score]
        frames = {o.frame_id for o in det}
        same = [o for o in regions if o.frame_id in frames] or regions
        if not same:
            s2 = Step("No anatomical region estimate for these frames.", False,
                      {"observations": obs_evidence(det), "window": window_ref(t0, now)})
            return self._abstain(
                q.intent,
                f"{UNSURE}: I see {desc}, but I cannot place it anatomically.",
                [s1, s2],
                reason="step 2 failed: no region estimate",
                confidence=det_score * 0.3,
            )
        rvotes = Counter(o.name for o in same)
        region, rn = rvotes.most_common(1)[0]
        share = rn / len(same)
        rmine = [o for o in same if o.name == region]
        rscore = sum(o.score for o in rmine) / len(rmine)
        loc_conf = share * rscore
        endoluminal = region in kg.surveys.get("bowel_survey", {}).get("order", [])
        anchors: list[str] = []
        if not endoluminal:
            anchors = sorted(
                {
                    o.name
                    for o in structs
                    if o.score >= cfg.detect_min_score
                    and o.name != name
                    and o.name in kg.entities
                    and kg.entities[o.name].kind not in ("finding", "tissue")
                }
            )
        region_label = self.say(region) if region in kg.entities else region.replace("_", " ")
        outlined = [] if endoluminal else self._spaces(anchors)  # e.g. the hepatocystic triangle
        where = (
            f"in the {region_label}"
            if endoluminal
            else (f"in the {self.say(outlined[0])}" if outlined else "in the abdominal cavity")
            + (f", next to the {join_words([self.say(a) for a in anchors])}" if anchors else "")
        )
        ok2 = share >= cfg.region_min_share and region != "out_of_body" and (endoluminal or anchors)
        s2 = Step(
            f"It is {where} (region score {rscore:.2f}, {rn} of {len(same)} frames).",
            bool(ok2),
            {
                "observations": obs_evidence(rmine),
                "scores": {"region": round(rscore, 3), "share": round(share, 3)},
            },
        )
        if not ok2:
            return self._abstain(
                q.intent,
                f"{UNSURE}: I see {desc}, but I cannot place it anatomically.",
                [s1, s2],
                reason="step 2 failed: region uncertain or no landmark",
                confidence=det_score * loc_conf,
            )
        # a known anatomical class (e.g. cystic artery): the model names it directly
        if entity is not None and entity.kind not in ("finding", "tissue"):
            nbs = [n for n in kg.neighbours(name) if n.key in anchors][:6]
            facts = [n.fact for n in nbs]
            related = list(dict.fromkeys(n.key for n in nbs))  # as many as facts cite
            s3 = Step(
                (f"The knowledge graph relates the {self.say(entity.key)} to the "
                 f"{join_words([self.say(a) for a in related])} in view "
                 f"({count_words(len(facts), 'fact')})." if related else
                 f"The knowledge graph has no fact relating the {self.say(entity.key)} to "
                 "what else is in view."),
                True,
                {"triples": self._triples(facts), "entity": {"id": entity.id,
                                                             "key": entity.key}},
            )
            conf = det_score * (0.7 + 0.3 * bool(facts))
            return Answer(
                f"This is the {self.say(entity.key)} (score {det_score:.2f}).",
                [s1, s2, s3],
                conf,
                False,
                "",
                q.intent,
                [],
                {"hypotheses": [{"key": name, "id": entity.id, "score": round(conf, 3)}]},
            )
        # ---- step 3: neighbours -> ranked hypotheses
        hyps, facts = self._hypotheses(name, finding, region if endoluminal else None, anchors)
        top = hyps[0] if hyps else None
        second = hyps[1]["score"] if len(hyps) > 1 else 0.0
        ranked = [{k: v for k, v in h.items() if k != "facts"} for h in hyps[:5]]
        nb_text = self._neighbour_sentence(facts, region if endoluminal else None)
        spaces = [] if endoluminal else self._spaces(anchors)
        if spaces:
            nb_text = f"The landmarks in view outline the {self.say(spaces[0])}. " + nb_text
        s3 = Step(
            nb_text + (f" Most likely: {top['label']} ({top['score']:.2f})." if top else ""),
            bool(
                top
                and top["score"] >= cfg.hypothesis_min
                and top["score"] - second >= cfg.hypothesis_margin
            ),
            {"triples": self._triples(facts), "hypotheses": ranked},
        )
        steps = [s1, s2, s3]
        data = {"hypotheses": ranked, "region": region, "finding": name}
        if not s3.ok:
            alts = (
                join_words([h["label"] for h in hyps[:2]], "or") if hyps else "nothing in my graph"
            )
            return self._abstain(
                q.intent,
                f"{UNSURE}: I see {desc} {where}; it could be {alts}.",
                steps,
                reason="step 3 failed: no hypothesis clearly ahead",
                confidence=(top["score"] if top else 0.0) * det_score * loc_conf,
                data=data,
            )
        conf = top["score"] * det_score * loc_conf
        text = f"This is most likely {top['article']}{top['label']}: {desc} {where}. {top['why']}"
        if len(hyps) > 1:
            text += f" Less likely: {join_words([h['label'] for h in hyps[1:3]])}."
        return Answer(
            text,
            steps,
            conf,
            False,
            "",
            q.intent,
            [
                {
                    "action": "outline",
                    "structure": name,
                    "colour": "red",
                    "rgb": list(COLOUR_RGB["red"]),
                    "transient_s": 5.0,
                }
            ],
            data,
        )

    def _finding_cues(self, name: str, det: list[Observation]) -> dict[str, Any]:
        """Appearance of a detection: calibre, pulsatile, tubular, colour (from attrs / KG)."""
        prior = self.kg.entities[name].cues if name in self.kg.entities else {}
        cues: dict[str, Any] = {}
        puls = [bool(o.attrs["pulsatile"]) for o in det if "pulsatile" in o.attrs]
        puls += [
            float(o.attrs["pulsatile_score"]) >= 0.5 for o in det if "pulsatile_score" in o.attrs
        ]
        if puls:
            frac = sum(puls) / len(puls)
            if not 0.35 <= frac <= 0.65:  # in between: pulsatility unknown
                cues["pulsatile"] = frac > 0.65
            cues["pulsatile_fraction"] = round(frac, 3)
        elif "pulsatile" in prior:
            cues["pulsatile"] = bool(prior["pulsatile"])
        areas = [float(o.attrs["area"]) for o in det if "area" in o.attrs]
        if "calibre" in prior:
            cues["calibre"] = prior["calibre"]
            if name in self.kg.entities and self.kg.entities[name].kind == "finding":
                # a finding class's calibre ("large vessel") is relative: larger than expected
                cues["calibre_relative"] = True
        elif areas:
            a = sum(areas) / len(areas)
            cues["calibre"] = "large" if a >= 0.05 else "medium" if a >= 0.01 else "small"
        if areas:
            cues["area"] = round(sum(areas) / len(areas), 4)
        colours = [str(o.attrs["colour"]) for o in det if "colour" in o.attrs]
        if colours:
            cues["colour"] = Counter(colours).most_common(1)[0][0]
        if "tubular" in prior:
            cues["tubular"] = bool(prior["tubular"])
        return cues

    @staticmethod
    def _describe(cues: dict[str, Any], label: str) -> str:
        words = []
        if cues.get("pulsatile"):
            words.append("pulsatile")
        if label == "blood":
            return "bleeding"
        if label in ("large vessel",):
            return "a " + " ".join(["large", *words, "vessel"])
        article = "" if label in MASS_NOUNS else "a "  # "I see fat", not "a fat"
        return article + " ".join([*words, label])

    def _match(
        self, finding: dict[str, Any], cues: dict[str, Any], ref_calibre: str | None = None
    ) -> tuple[float, list[str]]:
        """Appearance match of a finding against an entity's cues, in [0, 1], with reasons.

        ``ref_calibre``: for a finding whose calibre is relative (``calibre_relative``, e.g.
        "large vessel" = larger than expected here), the calibre of what is expected at the
        place (the visible vessels, or the smallest vessel the space holds): candidates above
        it match (1.0), in the same coarse class nearly (0.8), below it hardly (0.2).
        """
        scores, why = [], []
        if "pulsatile" in finding and "pulsatile" in cues:
            ok = finding["pulsatile"] == cues["pulsatile"]
            scores.append(1.0 if ok else 0.2)
            if ok:  # a reason only when it supports the hypothesis
                why.append(("" if cues["pulsatile"] else "not ") + "pulsatile")
        if "calibre" in finding and "calibre" in cues:
            if finding.get("calibre_relative") and ref_calibre in CALIBRES:
                d = CALIBRES.index(cues["calibre"]) - CALIBRES.index(ref_calibre)
                scores.append(1.0 if d > 0 else 0.8 if d == 0 else 0.2)
                ok = d > 0  # only a larger calibre than expected supports "large"
            else:
                d = abs(CALIBRES.index(finding["calibre"]) - CALIBRES.index(cues["calibre"]))
                scores.append((1.0, 0.5, 0.1)[d])
                ok = d == 0
            if ok:  # "a large vessel" is not justified by "small calibre"
                why.append(f"{cues['calibre']} calibre")
        if "colour" in finding and cues.get("colour"):
            scores.append(1.0 if finding["colour"] in cues["colour"] else 0.4)
        if not scores:
            return 0.5, why
        prod = 1.0
        for s in scores:
            prod *= s
        return prod ** (1 / len(scores)), why

    def _hypotheses(
        self, finding_name: str, finding: dict[str, Any], segment: str | None, anchors: list[str]
    ) -> tuple[list[dict[str, Any]], list[Fact]]:
        kg = self.kg
        vessel_finding = finding_name == "large_vessel" or finding.get("tubular")
        facts: list[Fact] = []
        cands: dict[str, list[Fact]] = defaultdict(list)
        spaces: list[str] = []
        inside: set[str] = set()
        ref_calibre = None
        if segment is None:
            spaces = self._spaces(anchors)
            for sp in spaces:  # what the space the landmarks outline usually holds
                for n in kg.neighbours(sp, "contains"):
                    inside.add(n.key)
                    if n.key not in anchors:
                        cands[n.key].append(n.fact)
            ref_calibre = self._reference_calibre(anchors, inside)
        if segment is not None:
            for n in kg.neighbours(segment):
                if n.relation in ("adjacent_to", "supplied_by"):
                    cands[n.key].append(n.fact)
        near = ("adjacent_to", "contains", "contained_in", "supplied_by", "bounded_by", "bounds")
        for a in anchors:  # vessels within two hops of the visible landmarks
            for n in kg.neighbours(a):
                if n.relation not in near:
                    continue
                cands[n.key].append(n.fact)
                for n2 in kg.neighbours(n.key):
                    if n2.relation in near and n2.key not in anchors:
                        if (
                            kg.entities[n2.key].kind in VESSEL_KINDS
                            and n2.fact not in cands[n2.key]
                        ):
                            cands[n2.key].append(n2.fact)
        hyps: list[dict[str, Any]] = []
        for key, fs in cands.items():
            e = kg.entities[key]
            if segment is None and key in anchors:
                continue  # segmented separately in the same frames: not this finding
            if vessel_finding and e.kind not in VESSEL_KINDS:
                continue
            if finding_name == "blood" and e.kind not in VESSEL_KINDS:
                continue
            facts.extend(f for f in fs if f not in facts)
            m, why = (
                self._match(finding, e.cues, ref_calibre if spaces else None)
                if finding_name != "blood"
                else (0.6, [])
            )
            if segment is not None:
                pattern = self._fistula(key, segment)
                if pattern is not None and finding_name != "blood":
                    pid, p = pattern
                    site = 1.0 if segment in p.get("typical_sites", []) else 0.7
                    conn = [c for c in p["connects"] if c != key]
                    hyps.append(
                        {
                            "key": pid,
                            "id": p.get("id", ""),
                            "label": p["label"],
                            "article": "an " if p["label"][0] in "aeiou" else "a ",
                            "score": round(m * site, 4),
                            "via": key,
                            "why": (
                                f"The {self.say(e.key)}"
                                f"{' (' + ', '.join(why) + ')' if why else ''} lies "
                                f"{self._side_phrase(fs)} the {self.say(segment)}; a vessel seen "
                                f"inside the lumen suggests an abnormal connection between the "
                                f"{self.say(e.key)} and the "
                                f"{join_words([self.say(c) for c in conn])}."
                            ),
                            "source": p.get("src", ""),
                            "facts": fs,
                        }
                    )
                    continue
                label = (
                    f"bleeding from the {self.say(e.key)}"
                    if finding_name == "blood"
                    else f"the {self.say(e.key)} seen through the wall"
                )
                hyps.append(
                    {
                        "key": key,
                        "id": e.id,
                        "label": label,
                        "article": "",
                        "score": round(m * 0.5, 4),
                        "via": key,
                        "why": f"The {self.say(e.key)} lies {self._side_phrase(fs)} the "
                        f"{self.say(segment)}.",
                        "source": "",
                        "facts": fs,
                    }
                )
            else:
                linked = {f.s for f in fs} | {f.o for f in fs}
                share = len([a for a in anchors if a in linked]) / max(1, len(anchors))
                near_score = 0.6 + 0.4 * share
                if spaces:  # inside the space the landmarks outline, or (less likely) not
                    near_score = 1.0 if key in inside else 0.5 * near_score
                label = (
                    f"bleeding from the {self.say(e.key)}"
                    if finding_name == "blood"
                    else f"the {self.say(e.key)}"
                )
                hyps.append(
                    {
                        "key": key,
                        "id": e.id,
                        "label": label,
                        "article": "",
                        "score": round(m * near_score, 4),
                        "via": key,
                        "why": (f"The {self.say(e.key)} is {', '.join(why)}; " if why else "")
                        + f"{self.fact_text(fs[0])}.".capitalize(),
                        "source": "",
                        "facts": fs,
                    }
                )
        hyps.sort(key=lambda h: (-h["score"], h["label"]))
        return hyps, facts

    def _spaces(self, anchors: list[str]) -> list[str]:
        """Spaces (e.g. the hepatocystic triangle) that the visible landmarks outline: at
        least two of a space's boundaries / usual contents in view, the best matched first."""
        kg = self.kg
        seen = set(anchors)
        found = []
        for key, e in kg.entities.items():
            if e.kind != "space":
                continue
            parts = {n.key for n in kg.neighbours(key) if n.relation in ("bounded_by", "contains")}
            hit = len(parts & seen)
            if hit >= 2:
                found.append((-hit / len(parts), key))
        return [k for _, k in sorted(found)]

    def _reference_calibre(self, anchors: list[str], inside: set[str]) -> str | None:
        """What calibre is expected here: the largest vessel in view, else the smallest
        vessel the space usually holds (None when neither is known)."""
        kg = self.kg

        def cal(keys: Any) -> list[int]:
            return [
                CALIBRES.index(kg.entities[k].cues["calibre"])
                for k in keys
                if k in kg.entities
                and kg.entities[k].kind in VESSEL_KINDS
                and kg.entities[k].cues.get("calibre") in CALIBRES
            ]

        seen = cal(anchors)
        if seen:
            return CALIBRES[max(seen)]
        held = cal(inside)
        return CALIBRES[min(held)] if held else None

    def _fistula(self, vessel: str, segment: str) -> tuple[str, dict[str, Any]] | None:
        kg = self.kg
        for pid, p in sorted(kg.pathologies.items()):
            if p.get("kind") != "fistula":
                continue
            conn = p.get("connects", [])
            if vessel in conn and any(kg.is_part_of(segment, c) for c in conn if c != vessel):
                return pid, p
        return None

    def _side_phrase(self, facts: list[Fact]) -> str:
        for f in facts:
            if f.p == "adjacent_to" and f.side:
                return SIDE_WORDS[f.side]
        return "next to"

    def _neighbour_sentence(self, facts: list[Fact], segment: str | None) -> str:
        adj = [f for f in facts if f.p == "adjacent_to"]
        if not adj:
            return "The knowledge graph lists no vessels next to it."
        return "From the knowledge graph: " + join_words([self.fact_text(f) for f in adj[:4]]) + "."
