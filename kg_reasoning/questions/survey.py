"""Bowel survey coverage: which segments were missed in the last N minutes, between the
first and last segment seen in lumen order (a segment counts as seen after
``seen_min_frames`` confident region frames). Times are media seconds, said as m:ss."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from kg_reasoning.answers import UNSURE, Answer, Question, Step, abstain, window_ref
from kg_reasoning.phrasing import fmt_time, join_words
from kg_reasoning.questions.base import Context
from kg_reasoning.timeline import Observation, weight

Segments = dict[str, list[Observation]]


def _gap_evidence(r: Context, order: list[str], seen: list[str], missed: list[str],
                  good: Segments) -> str:
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
            parts.append(f"the camera went from the {r.say(before)} (last seen at "
                         f"{fmt_time(left)}) to the {r.say(after)} "
                         f"(from {fmt_time(reached)})")
        i = j + 1
    if not parts:
        return ""
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _seen_step(r: Context, seen: list[str], nframes: dict[str, float], good: Segments) -> Step:
    """The segments seen, with their frame counts and when each was first seen."""
    return Step(
        "Segments seen: "
        + join_words(
            [
                f"{r.say(s)} ({nframes[s]} frames from {fmt_time(good[s][0].t_s)})"
                for s in seen
            ]
        )
        + ".",
        True,
        {"observations": [o.to_dict() for s in seen for o in (good[s][0], good[s][-1])]},
    )


def _order_step(r: Context, order: list[str], i0: int, i1: int, missed: list[str]) -> Step:
    """The comparison with the survey order, citing the missed segments' continuity facts
    (or, when none is missed, those between the first and last segment seen)."""
    kg = r.kg
    gap_facts = [f for s in missed for f in kg.facts_about(s) if f.p == "continuous_with"]
    return Step(
        "Compared with the survey order, "
        + (
            f"{join_words([r.say(s) for s in missed])} "
            f"{'was' if len(missed) == 1 else 'were'} not seen between segments that were."
            if missed
            else "no segment between the first and last seen is missing."
        ),
        True,
        {"triples": r.triples(gap_facts or [
            f for a, b in zip(order[i0:i1], order[i0 + 1:i1 + 1], strict=False)
            for f in kg.facts_about(a) if f.p == "continuous_with" and b in (f.s, f.o)]),
         "rule": "bowel survey order (lumen order)"},
    )


def _survey_text(r: Context, win: str, order: list[str], seen: list[str], missed: list[str],
                 glimpsed: list[str], not_reached: list[str], good: Segments) -> str:
    """What is said: the missed segments and where the camera jumped, or that none was."""
    spoken = [f"the {r.say(s)}" for s in missed]
    if missed:
        text = f"Yes: in {win} we missed {join_words(spoken)}."
        text += " " + _gap_evidence(r, order, seen, missed, good)
        if glimpsed:
            text += (
                f" {join_words(['the ' + r.say(s) for s in glimpsed]).capitalize()} "
                "may have been glimpsed with low confidence."
            )
    else:
        text = (
            f"No: every segment from the {r.say(seen[0])} to the {r.say(seen[-1])} "
            f"was seen in {win}."
        )
    if not_reached:
        text += (
            " Not seen at either end of the survey: "
            + join_words([r.say(s) for s in not_reached])
            + "."
        )
    return text


def missed_segments(r: Context, q: Question, tl: Any, now: float, prev: Answer | None) -> Answer:
    """Segments missed in the last ``minutes``; less sure when one was glimpsed weakly."""
    bad = r.need_slot(q, "minutes")
    if bad:
        return bad
    cfg, kg = r.cfg, r.kg
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
        return abstain(
            q.intent,
            f"{UNSURE}: I have not seen any bowel segment in {win}.",
            steps,
            reason="no bowel segment observed in the window",
        )
    steps.append(_seen_step(r, seen, nframes, good))
    i0, i1 = order.index(seen[0]), order.index(seen[-1])
    missed = [s for s in order[i0 : i1 + 1] if s not in seen]
    not_reached = [s for s in order if s not in seen and s not in missed]
    steps.append(_order_step(r, order, i0, i1, missed))
    confidence = sum(o.score * weight(o) for s in seen for o in good[s]) / sum(
        nframes[s] for s in seen
    )
    glimpsed = [s for s in missed if weak[s]]
    if glimpsed:
        confidence *= 0.7
    text = _survey_text(r, win, order, seen, missed, glimpsed, not_reached, good)
    data = {
        "missed": missed,
        "seen": seen,
        "not_reached": not_reached,
        "window_s": [round(t0, 3), round(now, 3)],
    }
    return Answer(text, steps, confidence, False, "", q.intent, [], data)
