"""The critical view of safety (CVS): its three criteria now (scores in [0, 1] over the last
``recent_s`` seconds), when it was first reached, and the "no clipping before CVS" rule."""

from __future__ import annotations

from typing import Any

from kg_reasoning.answers import UNSURE, Answer, Question, Step, abstain, obs_evidence, window_ref
from kg_reasoning.phrasing import fmt_time, join_words
from kg_reasoning.questions.base import Context
from kg_reasoning.timeline import Observation, TimelineLike, weight

#: (per-criterion steps, mean score per criterion, missing, borderline, unmet criteria)
Assessment = tuple[list[Step], dict[str, float], list[dict], list[dict], list[dict]]


def _assess(r: Context, obs: list[Observation], now: float) -> Assessment:
    """One step per criterion: met, not met, borderline or not assessed (weighted mean)."""
    cfg, cvs = r.cfg, r.kg.cvs
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
    return steps, per, missing, borderline, unmet


def _said(q: Question, text: str, steps: list[Step], conf: float, data: dict[str, Any]
          ) -> Answer:
    """A CVS answer that does not abstain (no overlay actions)."""
    return Answer(text, steps, conf, False, "", q.intent, [], data)


def _verdict(q: Question, steps: list[Step], per: dict[str, float], borderline: list[dict],
             unmet: list[dict], data: dict[str, Any]) -> Answer:
    """Reached, not reached, or unsure (a borderline criterion and none clearly unmet)."""
    conf = min(max(v, 1 - v) for v in per.values())
    if borderline and unmet:
        # CVS needs all three: one criterion clearly not met decides, whatever the others
        data["reached"] = False
        data["borderline"] = [c["name"] for c in borderline]
        sure = min(max(per[c["name"]], 1 - per[c["name"]]) for c in unmet)
        return _said(
            q,
            f"No, the critical view of safety is not reached: "
            f"{join_words([c['spoken'] for c in unmet])} not yet; "
            f"{join_words([c['spoken'] for c in borderline])} is borderline.",
            steps, sure, data,
        )
    if borderline:
        said = (f"{UNSURE} whether the critical view of safety is reached: "
                f"{join_words([c['spoken'] for c in borderline])} is borderline.")
        why = "borderline criterion " + ", ".join(c["name"] for c in borderline)
        return abstain(q.intent, said, steps, reason=why, confidence=conf, data=data)
    data["reached"] = not unmet
    if not unmet:
        return _said(
            q, "Yes, the critical view of safety is reached: all three criteria are met.",
            steps, conf, data,
        )
    return _said(
        q,
        f"No, the critical view of safety is not reached: "
        f"{join_words([c['spoken'] for c in unmet])} not yet.",
        steps, conf, data,
    )


def cvs_status(r: Context, q: Question, tl: Any, now: float, prev: Answer | None) -> Answer:
    """Is the CVS reached now: each criterion over the last ``recent_s`` seconds."""
    cfg = r.cfg
    obs = tl.window(now - cfg.recent_s, now, "cvs")
    steps, per, missing, borderline, unmet = _assess(r, obs, now)
    rule = Step(
        "Rule: the critical view of safety is reached when all three criteria are met.",
        True,
        {
            "rule": "CVS = C1 and C2 and C3",
            "rule_id": "rule:cvs_all_criteria",
            "source": r.kg.sources.get("strasberg", "Strasberg 1995"),
        },
    )
    steps.append(rule)
    data = {"criteria": {k: round(v, 3) for k, v in per.items()}}
    if missing:
        return abstain(
            q.intent,
            f"{UNSURE}: the critical view of safety has not been "
            f"assessed in the last {cfg.recent_s:g} seconds.",
            steps,
            reason="no CVS observations for " + ", ".join(c["name"] for c in missing),
            data=data,
        )
    return _verdict(q, steps, per, borderline, unmet, data)


def cvs_reached_time(r: Context, tl: TimelineLike, until: float) -> tuple[float | None, list]:
    """First time all criteria's latest scores are met (None if never), with evidence."""
    names = [c["name"] for c in r.kg.cvs["criteria"]]
    thr = r.kg.cvs.get("threshold", 0.5)
    latest: dict[str, Observation] = {}
    for o in tl.window(0.0, until, "cvs"):
        latest[o.name] = o
        if all(n in latest and latest[n].score >= thr for n in names):
            return o.t_s, [latest[n] for n in names]
    return None, list(latest.values())


def clip_rule_step(r: Context, tl: TimelineLike, now: float, rule: dict[str, Any],
                   entered: dict[str, list[Observation]]) -> tuple[Step, bool, bool]:
    """The "no clipping or cutting before CVS" rule up to ``now``: its step, whether it was
    violated, and whether it could be checked (False: clipping but no CVS assessment)."""
    clip_times = [
        o.t_s
        for o in tl.window(0.0, now, "event")
        if o.name in rule["before_events"] and o.score >= r.cfg.detect_min_score
    ]
    if rule["before_phase"] in entered:
        clip_times.append(entered[rule["before_phase"]][0].t_s)
    clip_t = min(clip_times) if clip_times else None
    cites = {"rule": rule["text"], "rule_id": f"rule:{rule['name']}"}
    if clip_t is None:
        return Step(
            "Clipping has not started, so the CVS rule is not yet at stake.", True, cites
        ), False, True
    cvs_t, ev = cvs_reached_time(r, tl, clip_t)
    has_cvs = bool(tl.window(0.0, now, "cvs"))
    if not has_cvs:
        return Step(
            f"Clipping started at {fmt_time(clip_t)}, but there is no CVS "
            "assessment to check the rule.",
            False,
            cites,
        ), False, False
    if cvs_t is None:
        return Step(
            f"Clipping started at {fmt_time(clip_t)} before the critical view"
            " of safety was reached.",
            True,
            {
                **cites,
                "observations": [o.to_dict() for o in ev],
                "scores": {"clip_t_s": clip_t},
            },
        ), True, True
    return Step(
        f"The critical view of safety was reached at {fmt_time(cvs_t)}, "
        f"before clipping at {fmt_time(clip_t)}.",
        True,
        {
            **cites,
            "observations": [o.to_dict() for o in ev],
            "scores": {"cvs_t_s": cvs_t, "clip_t_s": clip_t},
        },
    ), False, True
