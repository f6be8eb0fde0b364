"""Procedure questions: the current phase (and what follows it), and skipped steps (the
phase order of the procedure model and the "no clipping before CVS" rule). Times in s."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from kg_reasoning.answers import UNSURE, Answer, Question, Step, abstain, obs_evidence, window_ref
from kg_reasoning.phrasing import fmt_time, join_words
from kg_reasoning.questions.base import Context
from kg_reasoning.questions.cvs import clip_rule_step
from kg_reasoning.timeline import Observation, TimelineLike, weight

PROCEDURE = "laparoscopic_cholecystectomy"


def _run_start(r: Context, tl: TimelineLike, now: float, name: str, first: float) -> float:
    """Start (s) of the current run of phase ``name`` (``first``: its first recent frame)."""
    start = first
    for o in reversed(tl.window(0.0, now, "phase")):
        if o.name != name and o.score >= r.cfg.detect_min_score:
            break
        start = o.t_s
    return start


def _next_step(r: Context, name: str) -> tuple[Step, str] | None:
    """The phase that follows ``name`` in the procedure model, as a step and its name."""
    phases = [p["name"] for p in r.kg.procedures[PROCEDURE]["phases"]]
    if not (name in phases and phases.index(name) + 1 < len(phases)):
        return None
    nxt = phases[phases.index(name) + 1]
    return Step(
        f"In the procedure model, {r.kg.phase_spoken(nxt)} follows.",
        True,
        {
            "rule": "laparoscopic cholecystectomy phase order",
            "source": r.kg.procedures[PROCEDURE].get("src", ""),
            "triples": [f.to_dict(r.kg) for f in r.kg.facts_about(
                r.kg.phase_key(name)) if f.p == "precedes" and
                f.o == r.kg.phase_key(nxt)],
        },
    ), nxt


def current_phase(r: Context, q: Question, tl: Any, now: float, prev: Answer | None) -> Answer:
    """The phase most recent confident frames vote for, since when, and what comes next."""
    obs = [
        o
        for o in tl.window(now - r.cfg.recent_s, now, "phase")
        if o.score >= r.cfg.detect_min_score
    ]
    if len(obs) < r.cfg.min_frames:
        return abstain(
            q.intent,
            f"{UNSURE} which phase we are in: no confident phase "
            f"estimate in the last {r.cfg.recent_s:g} seconds.",
            [
                Step(
                    "No confident phase observations now.",
                    False,
                    {"observations": obs_evidence(obs),
                     "window": window_ref(now - r.cfg.recent_s, now)},
                )
            ],
            reason="no confident phase observations",
        )
    votes = Counter(o.name for o in obs)
    name, n = votes.most_common(1)[0]
    share = n / len(obs)
    mine = [o for o in obs if o.name == name]
    score = sum(o.score for o in mine) / len(mine)
    start = _run_start(r, tl, now, name, mine[0].t_s)
    steps = [
        Step(
            f"The phase model says {r.kg.phase_spoken(name)} in {n} of {len(obs)} "
            f"recent frames (mean score {score:.2f}).",
            share >= 0.5,
            {
                "observations": obs_evidence(mine),
                "scores": {"share": round(share, 3), "mean": round(score, 3)},
            },
        )
    ]
    if share < r.cfg.region_min_share:
        return abstain(
            q.intent,
            f"{UNSURE} which phase we are in.",
            steps,
            reason="phase estimates disagree",
            confidence=share * score,
        )
    text = f"We are in the {r.kg.phase_spoken(name)} phase, since {fmt_time(start)}."
    following = _next_step(r, name)
    if following is not None:
        steps.append(following[0])
        text += f" Next expected: {r.kg.phase_spoken(following[1])}."
    return Answer(
        text, steps, share * score, False, "", q.intent, [], {"phase": name, "since_s": start}
    )


def _entered(r: Context, tl: TimelineLike, now: float
             ) -> tuple[list[Observation], dict[str, list[Observation]]]:
    """Confident phase observations up to ``now``, and those of each phase seen in at least
    ``phase_min_frames`` frames (the phases entered)."""
    cfg = r.cfg
    obs = [o for o in tl.window(0.0, now, "phase") if o.score >= cfg.detect_min_score]
    groups: dict[str, list[Observation]] = defaultdict(list)
    for o in obs:
        groups[o.name].append(o)
    entered = {
        n: g for n, g in groups.items() if sum(weight(o) for o in g) >= cfg.phase_min_frames
    }
    return obs, entered


def _seen_step(r: Context, order: list[str], entered: dict[str, list[Observation]]) -> Step:
    """The phases seen, in order, with when each began."""
    return Step(
        "Phases seen, in order: "
        + join_words(
            [f"{r.kg.phase_spoken(n)} from {fmt_time(entered[n][0].t_s)}" for n in order]
        )
        + ".",
        True,
        {
            "observations": [entered[n][0].to_dict() for n in order],
            "scores": {n: sum(weight(o) for o in entered[n]) for n in order},
        },
    )


def _order_step(r: Context, phases: list[dict], last_idx: int, skipped: list[dict]) -> Step:
    """The comparison with the expected order, citing its graph edges (phase precedes
    phase) up to the last phase seen."""
    keys = [r.kg.phase_key(p["name"]) for p in phases[: last_idx + 1]]
    order_facts = [f.to_dict(r.kg) for k in keys for f in r.kg.facts_about(k)
                   if f.p == "precedes" and f.s == k and f.o in keys]
    return Step(
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


def _skipped_text(skipped: list[dict], violation: bool, rule_ok: bool) -> str:
    """What is said: the skipped phases, a CVS rule violation, or that nothing was skipped."""
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
    return " ".join(parts)


def skipped_step(r: Context, q: Question, tl: Any, now: float, prev: Answer | None) -> Answer:
    """Required phases missing before the last phase seen, and clipping before the CVS."""
    proc = r.kg.procedures[PROCEDURE]
    phases = proc["phases"]
    obs, entered = _entered(r, tl, now)
    if not entered:
        return abstain(
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
    steps = [_seen_step(r, order, entered)]
    last_idx = max(names.index(n) for n in entered if n in names)
    skipped = [
        p for p in phases[:last_idx] if p["name"] not in entered and not p.get("optional")
    ]
    steps.append(_order_step(r, phases, last_idx, skipped))
    # rule: no clipping or cutting before CVS
    rule_step, violation, rule_ok = clip_rule_step(r, tl, now, proc["rules"][0], entered)
    steps.append(rule_step)
    # as sure as the phase model was of the phases the comparison rests on
    confidence = min(sum(o.score for o in g) / len(g) for g in entered.values())
    if not rule_ok:
        confidence *= 0.5
    data = {
        "skipped": [p["name"] for p in skipped],
        "cvs_rule_violated": violation,
        "phases_seen": order,
    }
    return Answer(_skipped_text(skipped, violation, rule_ok), steps, confidence, False, "",
                  q.intent, [], data)
