"""Where is X: visible now (where in the image, or the current region), last seen at m:ss,
or not seen; with the graph's side relations as an anatomical hint. Times in s."""

from __future__ import annotations

from typing import Any

from kg_reasoning.answers import UNSURE, Answer, Question, Step, abstain, obs_evidence, window_ref
from kg_reasoning.evidence import seen_confidence
from kg_reasoning.graph import OPPOSITE_SIDE, SIDE_WORDS
from kg_reasoning.phrasing import fmt_time, join_words, position_words
from kg_reasoning.questions.base import Context
from kg_reasoning.questions.commands import COLOUR_RGB
from kg_reasoning.timeline import Observation, t_end_of, weight


def _hint(r: Context, key: str) -> tuple[str, Step]:
    """Up to three side relations as a sentence (" Anatomically, it lies ...") and a step."""
    kg = r.kg
    e = kg.entities[key]
    hint_nbs = [n for n in kg.neighbours(key, "adjacent_to") if n.side][:3]
    hint = ""
    if hint_nbs:
        hint = (
            " Anatomically, it lies "
            + join_words(
                [f"{SIDE_WORDS[OPPOSITE_SIDE[n.side]]} the {r.say(n.key)}" for n in hint_nbs]
            )
            + "."
        )
    hint_step = Step(
        "Anatomical neighbours from the knowledge graph." if hint_nbs else
        "The knowledge graph gives no side relations for it.",
        True,
        {"triples": r.triples([n.fact for n in hint_nbs]),
         "entity": {"id": e.id, "key": e.key}},
    )
    return hint, hint_step


def _visible(r: Context, q: Question, key: str, is_region: bool, recent: list[Observation],
             steps: list[Step]) -> Answer:
    """Seen in the last ``recent_s`` seconds: where (image position or region), outlined
    for 5 s when it is a structure."""
    cfg, e = r.cfg, r.kg.entities[key]
    score = sum(o.score for o in recent) / len(recent)
    cents = [o.attrs["centroid"] for o in recent if "centroid" in o.attrs]
    if is_region:
        text = f"We are in the {r.say(e.key)} now (region score {score:.2f})."
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
        text = f"The {r.say(e.key)} is visible {where} (score {score:.2f})."
    steps.append(
        Step(
            f"The {r.say(e.key)} was detected in {len(recent)} frames of the last "
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


def _seen_before(r: Context, q: Question, key: str, earlier: list[Observation], now: float,
                 steps: list[Step], hint: str, hint_step: Step) -> Answer:
    """Not visible now but seen earlier: when it was last seen."""
    cfg, e = r.cfg, r.kg.entities[key]
    last = earlier[-1]
    last_t = t_end_of(last)
    steps.append(
        Step(
            f"The {r.say(e.key)} is not visible now; it was last seen at "
            f"{fmt_time(last_t)} (frame {last.frame_id}).",
            True,
            {"observations": obs_evidence(earlier[-cfg.min_frames * 3 :])},
        )
    )
    steps.append(hint_step)
    return Answer(
        f"I do not see the {r.say(e.key)} now; "
        f"it was last seen at {fmt_time(last_t)}.{hint}",
        steps,
        seen_confidence(earlier[-cfg.min_frames * 3:], now),
        False,
        "",
        q.intent,
        [],
        {"visible": False, "last_seen_s": last_t},
    )


def locate_structure(r: Context, q: Question, tl: Any, now: float, prev: Answer | None) -> Answer:
    """Where a structure (or region) is; abstains without a timeline or a detector."""
    bad = r.need_slot(q, "structure")
    if bad:
        return bad
    kg, cfg = r.kg, r.cfg
    key = q.slots["structure"]
    e = kg.entities[key]
    steps = [r.entity_step(key)]
    hint, hint_step = _hint(r, key)
    empty = tl is None or tl.latest_t() is None
    is_region = key in kg.regions
    if empty:
        steps.append(Step("There is no perception timeline to look in.", False,
                          {"window": {"id": "timeline:none"}}))
        steps.append(hint_step)
        return abstain(
            q.intent,
            f"{UNSURE} where the {r.say(e.key)} is: I have no video observations.{hint}",
            steps,
            reason="no perception timeline (no session given)",
        )
    if not e.segmentable and not is_region:
        steps.append(
            Step(f"The vision model does not detect the {r.say(e.key)}.", False,
                 {"entity": {"id": e.id, "key": e.key}})
        )
        steps.append(hint_step)
        return abstain(
            q.intent,
            f"{UNSURE} where the {r.say(e.key)} is: "
            f"my vision model does not detect it.{hint}",
            steps,
            reason=f"{key} is not a vision class",
        )
    kind = "region" if is_region else "structure"
    recent = r.detections(tl.window(now - cfg.recent_s, now, kind), {key})
    if len(recent) >= cfg.min_frames:
        return _visible(r, q, key, is_region, recent, steps)
    earlier = r.detections(tl.window(0.0, now, kind), {key})
    if sum(weight(o) for o in earlier) >= cfg.min_frames:
        return _seen_before(r, q, key, earlier, now, steps, hint, hint_step)
    steps.append(Step(f"The {r.say(e.key)} was not detected in this session.", False,
                      {"window": window_ref(0.0, now)}))
    steps.append(hint_step)
    return abstain(
        q.intent,
        f"{UNSURE} where the {r.say(e.key)} is: I have not seen it.{hint}",
        steps,
        reason=f"{key} not detected in the timeline",
    )
