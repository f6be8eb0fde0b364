"""Cholecystectomy scripts: the phases laid out over a feed's length and the scripted events
(CVS criteria, clips, cut, bleeding, large vessel, cautery, suction), all in seconds.

The phase list is ``vision.labels.PHASES`` (Cholec80); ``PHASE_WEIGHTS`` gives each its
relative duration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vision.errors import VisionError
from vision.labels import CVS_CRITERIA, PHASES
from vision.synth.events import SceneEvent

#: Relative phase durations: approximate mean durations (s) of the Cholec80 phases.
PHASE_WEIGHTS: dict[str, float] = {
    "Preparation": 125.0,
    "CalotTriangleDissection": 954.0,
    "ClippingCutting": 168.0,
    "GallbladderDissection": 857.0,
    "GallbladderPackaging": 98.0,
    "CleaningCoagulation": 178.0,
    "GallbladderRetraction": 83.0,
}

#: Fractions of the Calot triangle dissection at which each CVS criterion becomes true.
CVS_AT = (0.55, 0.75, 0.9)
#: Clip times as fractions of the clipping phase: (fraction, structure).
CLIP_PLAN = ((0.22, "cystic_duct"), (0.32, "cystic_duct"), (0.42, "cystic_duct"),
             (0.55, "cystic_artery"), (0.65, "cystic_artery"))
CUT_AT = 0.82  # fraction of the clipping phase at which the duct and artery are divided


@dataclass
class Phase:
    """A phase interval [start_s, end_s)."""

    name: str
    start_s: float
    end_s: float


@dataclass
class CholecPlan:
    """Everything scripted about one cholecystectomy feed (times in seconds)."""

    seconds: float
    phases: list[Phase]
    skipped: list[tuple[str, float]]
    cvs_times: tuple[float, float, float]
    clips: list[tuple[float, str]]
    cut_time: float | None
    bleeding: list[float]
    large_vessel: float | None
    cautery: list[tuple[float, float]]
    suction: list[tuple[float, float]]
    events: list[dict] = field(default_factory=list)

    def phase_at(self, t: float) -> tuple[int, float]:
        """(index into PHASES, progress 0..1 within the phase) at time ``t``."""
        for ph in self.phases:
            if ph.start_s <= t < ph.end_s:
                return PHASES.index(ph.name), (t - ph.start_s) / max(ph.end_s - ph.start_s, 1e-6)
        last = self.phases[-1]
        return PHASES.index(last.name), 1.0

    def phase(self, name: str) -> Phase | None:
        """The interval of phase ``name`` or None when skipped."""
        return next((p for p in self.phases if p.name == name), None)

    def cvs_at(self, t: float) -> list[int]:
        """The three CVS criteria (0/1) at time ``t``."""
        return [int(t >= c) for c in self.cvs_times]


def plan_cholecystectomy(seconds: float, seed: int, events: list[SceneEvent]) -> CholecPlan:
    """Lay out phases and events over ``seconds``; raise VisionError on impossible scripts."""
    rng = np.random.default_rng([seed, 101])
    skip, clip_early, bleeding, vessel = _read_events(events, seconds)
    names = [p for p in PHASES if p not in skip]
    if not names:
        raise VisionError("every phase was skipped")
    if clip_early is not None and "ClippingCutting" not in names:
        raise VisionError("clip_before_cvs needs the ClippingCutting phase (it was skipped)")
    phases = _lay_phases(names, seconds, clip_early)
    # skipped phases: the time at which they would have started
    skipped = []
    for n in skip:
        j = PHASES.index(n)
        nxt = next((p for p in phases if PHASES.index(p.name) > j), None)
        skipped.append((n, nxt.start_s if nxt else seconds))

    by = {p.name: p for p in phases}
    cvs = _cvs_times(by.get("CalotTriangleDissection"), clip_early)
    clipping = by.get("ClippingCutting")
    clips: list[tuple[float, str]] = []
    cut = None
    if clipping is not None:
        d = clipping.end_s - clipping.start_s
        clips = [(clipping.start_s + f_ * d, s_) for f_, s_ in CLIP_PLAN]
        cut = clipping.start_s + CUT_AT * d
    cautery = _cautery(by, rng)
    suction = _suction(by, rng, bleeding, seconds)
    plan = CholecPlan(seconds, phases, skipped, tuple(cvs), clips, cut, sorted(bleeding), vessel,
                      cautery, suction)
    plan.events = _plan_events(skipped, clips, cut, cautery, suction, cvs)
    return plan


def _read_events(events: list[SceneEvent], seconds: float
                 ) -> tuple[list[str], float | None, list[float], float | None]:
    """(skipped phases, clip_before_cvs time, bleeding times, large-vessel time) in seconds."""
    skip = []
    clip_early: float | None = None
    bleeding: list[float] = []
    vessel: float | None = None
    for ev in events:
        if ev.kind == "skip_phase":
            if ev.arg not in PHASES:
                raise VisionError(f"unknown phase {ev.arg!r}; phases: {', '.join(PHASES)}")
            skip.append(ev.arg)
        elif ev.kind == "clip_before_cvs":
            clip_early = float(ev.time_s)  # type: ignore[arg-type]
        elif ev.kind == "bleeding":
            bleeding.append(float(ev.time_s))  # type: ignore[arg-type]
        elif ev.kind == "large_vessel":
            vessel = float(ev.time_s)  # type: ignore[arg-type]
        else:
            raise VisionError(f"event {ev.kind!r} does not apply to the cholecystectomy scenario")
        if ev.time_s is not None and not (0.0 <= ev.time_s < seconds):
            raise VisionError(f"event {ev.spec()} is outside the feed (0..{seconds:g} s)")
    return skip, clip_early, bleeding, vessel


def _lay(names_: list[str], t0: float, t1: float) -> list[Phase]:
    """Phases ``names_`` over [t0, t1) in proportion to ``PHASE_WEIGHTS``."""
    tot = sum(PHASE_WEIGHTS[n] for n in names_)
    out, t = [], t0
    for n in names_:
        d = (t1 - t0) * PHASE_WEIGHTS[n] / tot
        out.append(Phase(n, t, t + d))
        t += d
    if out:
        out[-1].end_s = t1
    return out


def _lay_phases(names: list[str], seconds: float, clip_early: float | None) -> list[Phase]:
    """The phases over the feed; with ``clip_early`` the clipping phase starts early enough
    for its first clip to fall at that time."""
    if clip_early is None:
        return _lay(names, 0.0, seconds)
    i = names.index("ClippingCutting")
    after = names[i:]
    k = PHASE_WEIGHTS["ClippingCutting"] / sum(PHASE_WEIGHTS[n] for n in after)
    f = CLIP_PLAN[0][0]
    s = (clip_early - f * k * seconds) / (1 - f * k)
    if i > 0 and s <= 0.05 * seconds or s <= 0:
        raise VisionError(f"clip_before_cvs@{clip_early:g} is too early for a "
                          f"{seconds:g} s feed")
    return _lay(names[:i], 0.0, s) + _lay(after, s, seconds)


def _cvs_times(calot: Phase | None, clip_early: float | None) -> list[float]:
    """When each CVS criterion is met (inf: never; clipping early leaves C3 unmet)."""
    inf = float("inf")
    cvs = [inf, inf, inf]
    if calot is not None:
        for k_, f_ in enumerate(CVS_AT):
            tc = calot.start_s + f_ * (calot.end_s - calot.start_s)
            if clip_early is None or tc < clip_early - 1e-6:
                cvs[k_] = tc
        if clip_early is not None and all(c < inf for c in cvs):
            cvs[2] = inf
    return cvs


def _cautery(by: dict[str, Phase], rng: np.random.Generator) -> list[tuple[float, float]]:
    """Random cautery bursts (start, end) during the two dissection phases."""
    cautery = []
    for n in ("CalotTriangleDissection", "GallbladderDissection"):
        p = by.get(n)
        if p is None:
            continue
        t = p.start_s + rng.uniform(0.4, 1.2)
        while t < p.end_s - 0.3:
            dur = float(rng.uniform(0.5, 1.3))
            cautery.append((float(t), float(min(t + dur, p.end_s))))
            t += dur + rng.uniform(1.6, 4.0)
    return cautery


def _suction(by: dict[str, Phase], rng: np.random.Generator, bleeding: list[float],
             seconds: float) -> list[tuple[float, float]]:
    """Suction (start, end): after each bleeding and in bursts while cleaning."""
    suction = []
    for tb in bleeding:
        suction.append((tb + 2.0, tb + 3.5))
    p = by.get("CleaningCoagulation")
    if p is not None:
        t = p.start_s + 0.3
        while t < p.end_s - 0.3:
            dur = float(rng.uniform(0.6, 1.6))
            suction.append((float(t), float(min(t + dur, p.end_s))))
            t += dur + rng.uniform(0.8, 2.5)
    return [(a, min(b, seconds)) for a, b in suction if a < seconds]


def _plan_events(skipped: list[tuple[str, float]], clips: list[tuple[float, str]],
                 cut: float | None, cautery: list[tuple[float, float]],
                 suction: list[tuple[float, float]], cvs: list[float]) -> list[dict]:
    """The scripted events of the truth file (bleeding / large-vessel events are added by the
    renderer, which knows their location)."""
    ev: list[dict] = []
    for n, t in skipped:
        ev.append({"kind": "phase_skipped", "time_s": t, "phase": n})
    for t, s_ in clips:
        ev.append({"kind": "clip_applied", "time_s": t, "structure": s_,
                   "cvs_reached": bool(all(c <= t for c in cvs))})
    if cut is not None:
        ev.append({"kind": "structures_divided", "time_s": cut,
                   "structures": ["cystic_duct", "cystic_artery"]})
    for a, b in cautery:
        ev.append({"kind": "cautery", "time_s": a, "duration_s": round(b - a, 3)})
    for a, b in suction:
        ev.append({"kind": "suction", "time_s": a, "duration_s": round(b - a, 3)})
    for k_, c in enumerate(cvs):
        if c < float("inf"):
            ev.append({"kind": "cvs_criterion_met", "time_s": c, "criterion": CVS_CRITERIA[k_]})
    return ev
