"""Laparoscopic cholecystectomy scene: plan (phases, events) and per-frame renderer.

Geometry lives on a world canvas 1.35 x the view, in units of the world height with the
origin at its centre (x right, y down). Organs are drawn as polygons / thick polylines into
a world label map and a height map; textures are gathered through the label map, shading
comes from the blurred height map, then one ``cv2.remap`` applies camera motion and the
breathing deformation to pixels and labels alike. Instruments are drawn in view space
with the same polygons into pixels and labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from vision.errors import VisionError
from vision.labels import CLASS_ID, CLASSES, CVS_CRITERIA, PHASES, TOOLS
from vision.synth.events import SceneEvent
from vision.synth.instruments import ToolPose, draw_specimen_bag, draw_tool
from vision.synth.noise import blobs, fractal_noise
from vision.synth.optics import add_glints, add_smoke, apply_gain, fov_mask, vignette
from vision.synth.scene import (
    Camera,
    SynthFrame,
    gather,
    jitter_track,
    present_classes,
    render_size,
    smoothstep,
    upsample,
)
from vision.synth.textures import tissue_textures, wetness_lut

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
WORLD_SCALE = 1.35  # world canvas / view size
WORLD_HZ = 15.0  # organ state (dissection, clips, blood) updates per second; camera every frame

C = CLASS_ID


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
    names = [p for p in PHASES if p not in skip]
    if not names:
        raise VisionError("every phase was skipped")
    if clip_early is not None and "ClippingCutting" not in names:
        raise VisionError("clip_before_cvs needs the ClippingCutting phase (it was skipped)")

    def lay(names_: list[str], t0: float, t1: float) -> list[Phase]:
        tot = sum(PHASE_WEIGHTS[n] for n in names_)
        out, t = [], t0
        for n in names_:
            d = (t1 - t0) * PHASE_WEIGHTS[n] / tot
            out.append(Phase(n, t, t + d))
            t += d
        if out:
            out[-1].end_s = t1
        return out

    if clip_early is None:
        phases = lay(names, 0.0, seconds)
    else:
        i = names.index("ClippingCutting")
        after = names[i:]
        k = PHASE_WEIGHTS["ClippingCutting"] / sum(PHASE_WEIGHTS[n] for n in after)
        f = CLIP_PLAN[0][0]
        s = (clip_early - f * k * seconds) / (1 - f * k)
        if i > 0 and s <= 0.05 * seconds or s <= 0:
            raise VisionError(f"clip_before_cvs@{clip_early:g} is too early for a "
                              f"{seconds:g} s feed")
        phases = lay(names[:i], 0.0, s) + lay(after, s, seconds)
    # skipped phases: the time at which they would have started
    skipped = []
    for n in skip:
        j = PHASES.index(n)
        nxt = next((p for p in phases if PHASES.index(p.name) > j), None)
        skipped.append((n, nxt.start_s if nxt else seconds))

    by = {p.name: p for p in phases}
    inf = float("inf")
    calot = by.get("CalotTriangleDissection")
    clipping = by.get("ClippingCutting")
    cvs = [inf, inf, inf]
    if calot is not None:
        for k_, f_ in enumerate(CVS_AT):
            tc = calot.start_s + f_ * (calot.end_s - calot.start_s)
            if clip_early is None or tc < clip_early - 1e-6:
                cvs[k_] = tc
        if clip_early is not None and all(c < inf for c in cvs):
            cvs[2] = inf
    clips: list[tuple[float, str]] = []
    cut = None
    if clipping is not None:
        d = clipping.end_s - clipping.start_s
        clips = [(clipping.start_s + f_ * d, s_) for f_, s_ in CLIP_PLAN]
        cut = clipping.start_s + CUT_AT * d
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
    suction = [(a, min(b, seconds)) for a, b in suction if a < seconds]

    plan = CholecPlan(seconds, phases, skipped, tuple(cvs), clips, cut, sorted(bleeding), vessel,
                      cautery, suction)
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
        if c < inf:
            ev.append({"kind": "cvs_criterion_met", "time_s": c, "criterion": CVS_CRITERIA[k_]})
    plan.events = ev  # bleeding / large-vessel events are added by the renderer (location)
    return plan


# --------------------------------------------------------------------------- geometry
GB_FUNDUS = np.array([0.30, -0.17])
GB_NECK = np.array([0.03, 0.05])
DUCT_JUNCTION = np.array([-0.17, 0.17])
CALOT_CENTRE = np.array([-0.06, 0.06])
CALOT_R = 0.2
CBD_PTS = np.array([(-0.30, -0.08), (-0.22, 0.05), (-0.17, 0.17), (-0.13, 0.33), (-0.10, 0.56)])
ARTERY_PTS = np.array([(0.07, -0.03), (-0.02, -0.01), (-0.10, 0.0), (-0.19, -0.02),
                       (-0.25, -0.07)])
VESSEL_PTS = np.array([(-0.60, 0.20), (-0.38, 0.27), (-0.18, 0.36), (0.02, 0.47), (0.2, 0.6)])
BAG_POS = np.array([0.30, 0.26])

CAMERA_TARGETS = {  # phase -> (x, y, zoom)
    "Preparation": (0.04, -0.04, 0.98),
    "CalotTriangleDissection": (-0.05, 0.05, 0.72),
    "ClippingCutting": (-0.06, 0.08, 0.66),
    "GallbladderDissection": (0.12, -0.04, 0.8),
    "GallbladderPackaging": (0.12, 0.04, 0.95),
    "CleaningCoagulation": (0.1, -0.05, 0.8),
    "GallbladderRetraction": (0.08, -0.02, 0.98),
}


def _polyline_at(pts: np.ndarray, s: float) -> np.ndarray:
    """Point at arc-length fraction ``s`` along a polyline."""
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    cum = np.concatenate([[0], np.cumsum(seg)])
    d = s * cum[-1]
    i = min(max(int(np.searchsorted(cum, d)) - 1, 0), len(seg) - 1)
    f = (d - cum[i]) / max(seg[i], 1e-9)
    return pts[i] + f * (pts[i + 1] - pts[i])


def _noisy_ring(centre: np.ndarray, r: float, harm: np.ndarray, n: int = 40) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rr = r * (1 + sum(h[0] * np.sin((k + 2) * a + h[1]) for k, h in enumerate(harm)))
    return np.stack([centre[0] + rr * np.cos(a), centre[1] + rr * np.sin(a)], 1)


class CholecScene:
    """Renders frames of a laparoscopic cholecystectomy following a :class:`CholecPlan`."""

    def __init__(self, plan: CholecPlan, size: tuple[int, int], fps: float, seed: int,
                 n_frames: int):
        self.plan, self.size, self.fps = plan, size, fps
        self.vw, self.vh = render_size(size)
        self.ww, self.wh = int(self.vw * WORLD_SCALE), int(self.vh * WORLD_SCALE)
        rng = np.random.default_rng([seed, 7])
        self.rng = rng
        tex = tissue_textures(rng, self.wh, self.ww, scale=self.wh)
        self.tex_names = ["fat", *[k for k in tex if k != "fat"]]
        stack = np.stack([tex[k] for k in self.tex_names])
        self.tex_flat = stack.reshape(-1, 3)
        self.lut = np.zeros(256, np.int64)
        for i, k in enumerate(self.tex_names):
            self.lut[C[k]] = i
        self.wet = np.zeros(256, np.float32)
        self.wet[: len(CLASSES)] = wetness_lut(CLASSES)
        gn = fractal_noise(rng, self.wh, self.ww, 0.06 * self.wh, 3, 0.5)
        gs = blobs(rng, self.wh, self.ww, int(self.ww * self.wh / 2600) + 6,
                   0.004 * self.wh, 0.014 * self.wh, 0.004 * self.wh)
        gs = np.clip(gs * 1.8, 0, 1) ** 1.5
        self.glint = np.clip(gs * np.clip((gn - 0.45) * 3.0, 0, 1) + 0.12 * gn, 0, 1).astype(
            np.float32)
        self.glint = cv2.resize(self.glint, (self.ww // 2, self.wh // 2),
                                interpolation=cv2.INTER_AREA)
        self.smoke = fractal_noise(rng, 2 * self.vh, 2 * self.vw, 0.25 * self.vh, 4)
        yy, xx = np.mgrid[0:2 * self.vh, 0:2 * self.vw].astype(np.float32)
        self.smoke_blob = np.exp(-(((xx - self.vw) ** 2 + (yy - self.vh) ** 2)
                                   / (2 * (0.45 * self.vh) ** 2))).astype(np.float32)
        self.breath = (fractal_noise(rng, self.vh, self.vw, 0.5 * self.vh, 2) - 0.5,
                       fractal_noise(rng, self.vh, self.vw, 0.5 * self.vh, 2) - 0.5)
        self.fov = fov_mask(self.vh, self.vw, "circle", 0.74)
        g = vignette(self.vh, self.vw, 0.65, 1.8) * 160.0
        g[~self.fov] = 0
        self.gain = np.clip(g, 0, 255).astype(np.uint8)
        self.cam = Camera((self.vw, self.vh))
        self.jit = jitter_track(rng, n_frames + 1, fps)
        self.calot_harm = rng.uniform(-1, 1, (4, 2)) * np.array([0.08, 3.0])
        self.win_harm = rng.uniform(-1, 1, (4, 2)) * np.array([0.12, 3.0])
        self.blood_harm = rng.uniform(-1, 1, (5, 2)) * np.array([0.07, 3.0])
        self.strands = rng.uniform(-1, 1, (7, 4))
        self.loops = [(float(rng.uniform(-0.7, 0.7)), float(rng.uniform(0.33, 0.5)),
                       float(rng.uniform(0.12, 0.22)), float(rng.uniform(0.06, 0.09)),
                       float(rng.uniform(-25, 25))) for _ in range(4)]
        self._cache: tuple[float, tuple[np.ndarray, np.ndarray, dict]] | None = None
        # rounding radius per class (world pixels): large organs bulge, tubes are cylinders
        radius = {"liver": 0.09, "gallbladder": 0.07, "gi_tract": 0.07, "fat": 0.035,
                  "abdominal_wall": 0.1, "cystic_duct": 0.017, "cystic_artery": 0.011,
                  "common_bile_duct": 0.025, "large_vessel": 0.035, "blood": 0.02,
                  "connective_tissue": 0.008, "liver_ligament": 0.025, "hepatic_vein": 0.012,
                  "clip": 0.006}
        self.inv_round = np.full(256, 1.0 / (0.025 * self.wh), np.float32)
        for k, v in radius.items():  # distances are measured at half resolution
            self.inv_round[C[k]] = 1.0 / max(v * self.wh / 2, 1.0)
        self._bleed_pos: dict[float, tuple[np.ndarray, str]] = {}
        for tb in plan.bleeding:
            self._bleed_pos[tb] = self._bleed_site(tb)

    # ---------------------------------------------------------------- helpers
    def _px(self, p: np.ndarray) -> np.ndarray:
        """World units -> world pixels (N, 2) float."""
        p = np.asarray(p, np.float64)
        return np.stack([self.ww / 2 + p[..., 0] * self.wh, self.wh / 2 + p[..., 1] * self.wh],
                        -1)

    def _poly(self, p: np.ndarray) -> np.ndarray:
        return np.round(self._px(p) * 4).astype(np.int32)

    def _bleed_site(self, t: float) -> tuple[np.ndarray, str]:
        idx, _ = self.plan.phase_at(t)
        name = PHASES[idx]
        if name in ("Preparation", "CalotTriangleDissection", "ClippingCutting"):
            return _polyline_at(ARTERY_PTS, 0.45) + np.array([0.0, 0.02]), "cystic_artery"
        if name == "GallbladderDissection":
            return np.array([0.16, -0.1]), "liver"
        return np.array([0.05, -0.05]), "liver"

    def camera_at(self, t: float, frame: int) -> tuple[tuple[float, float], float, float]:
        """(world-pixel centre, zoom, roll) of the camera at time ``t``."""
        plan = self.plan
        idx, _ = plan.phase_at(t)
        cur = next(i for i, p in enumerate(plan.phases) if PHASES.index(p.name) == idx)
        ph = plan.phases[cur]
        tgt = np.array(CAMERA_TARGETS[ph.name])
        if cur > 0:
            prev = np.array(CAMERA_TARGETS[plan.phases[cur - 1].name])
            ramp = min(1.5, 0.5 * (ph.end_s - ph.start_s))
            tgt = prev + (tgt - prev) * smoothstep((t - ph.start_s) / max(ramp, 1e-3))
        x = tgt[0] + 0.02 * math.sin(2 * math.pi * t / 7.3) + 0.01 * math.sin(2 * math.pi * t / 3.1)
        y = tgt[1] + 0.012 * math.sin(2 * math.pi * t / 5.1 + 1.0)
        z = tgt[2] * (1 + 0.04 * math.sin(2 * math.pi * t / 9.0 + 0.5))
        j = self.jit[min(frame, len(self.jit) - 1)]
        lim_y = 0.5 - z / (2 * WORLD_SCALE) - 0.02
        lim_x = self.ww / self.wh / 2 - z * self.vw / self.vh / (2 * WORLD_SCALE) - 0.02
        x, y = min(max(x, -lim_x), lim_x), min(max(y, -lim_y), lim_y)
        centre = (self.ww / 2 + x * self.wh + j[0] * 0.004 * self.vh,
                  self.wh / 2 + y * self.wh + j[1] * 0.004 * self.vh)
        roll = 0.05 * math.sin(2 * math.pi * t / 11.0) + float(j[2])
        return centre, z, roll

    # ---------------------------------------------------------------- state
    def _gb_axis(self, t: float) -> tuple[np.ndarray, np.ndarray, float, bool]:
        """Gallbladder fundus, neck (world units), scale, visible."""
        plan = self.plan
        f, n, sc = GB_FUNDUS.copy(), GB_NECK.copy(), 1.0
        pull = 0.012 * math.sin(2 * math.pi * t / 4.3)
        f += np.array([pull, -pull])
        gbd = plan.phase("GallbladderDissection")
        pack = plan.phase("GallbladderPackaging")
        q = 0.0
        if gbd is not None:
            q = float(smoothstep((t - gbd.start_s) / max(gbd.end_s - gbd.start_s, 1e-6)))
        elif pack is not None and t >= pack.start_s:
            q = 1.0
        n = n + q * np.array([0.13, -0.11])
        f = f + q * np.array([0.06, -0.02])
        later = [p for p in plan.phases if PHASES.index(p.name) >= PHASES.index(
            "GallbladderPackaging")]
        if later and t >= later[0].start_s:
            if pack is not None and t < pack.end_s:
                k = float(smoothstep((t - pack.start_s) / max(pack.end_s - pack.start_s, 1e-6)))
                mid = (f + n) / 2
                tgt = BAG_POS
                shift = (tgt - mid) * k
                f, n = f + shift, n + shift
                sc = 1.0 - 0.75 * k
                return f, n, sc, k < 0.97
            return f, n, 0.0, False
        return f, n, sc, True

    def _dissection(self, t: float) -> float:
        """Calot triangle dissection progress 0..1 (stays at its last value afterwards)."""
        calot = self.plan.phase("CalotTriangleDissection")
        if calot is None:
            return 1.0 if t >= self.plan.phases[0].end_s else 0.0
        p = (t - calot.start_s) / max(calot.end_s - calot.start_s, 1e-6)
        p = min(max(float(p), 0.0), 1.0)
        if math.isinf(self.plan.cvs_times[2]):
            # clipping before CVS: dissection stops short of clearing the triangle
            p = min(p, 0.5)
        return p

    # ---------------------------------------------------------------- world
    def _world(self, t: float) -> tuple[np.ndarray, np.ndarray, dict]:
        """World label map and height map at time ``t``."""
        ww, wh = self.ww, self.wh
        L = np.full((wh, ww), C["fat"], np.uint8)
        H = np.full((wh, ww), 100, np.uint8)
        X = np.linspace(-ww / wh / 2 - 0.05, ww / wh / 2 + 0.05, 48)
        info: dict = {}

        def fill(pts, cls, h):
            p = self._poly(pts)
            cv2.fillPoly(L, [p], int(cls), cv2.LINE_8, shift=2)
            cv2.fillPoly(H, [p], int(h), cv2.LINE_8, shift=2)

        def tube(pts, thick, cls, h):
            p = self._poly(pts)
            th = max(1, int(round(thick * wh)))
            cv2.polylines(L, [p], False, int(cls), th, cv2.LINE_8, shift=2)
            for f_, dh in ((1.0, 0), (0.65, 25), (0.3, 50)):
                cv2.polylines(H, [p], False, int(min(255, h + dh)), max(1, int(th * f_)),
                              cv2.LINE_8, shift=2)

        # bowel at the bottom, omentum over part of it
        ygi = 0.2 + 0.05 * np.sin(4 * X + 1.0)
        fill(np.concatenate([np.stack([X, ygi], 1), [[X[-1], 0.6], [X[0], 0.6]]]), C["gi_tract"],
             130)
        # bowel loops (duodenum, hepatic flexure) bulging at different heights
        for (lx, ly, ax, ay, ang), hgt in zip(self.loops, (150, 170, 160, 145), strict=True):
            cv2.ellipse(L, tuple(int(v) for v in self._px(np.array([lx, ly]))),
                        (int(ax * wh), int(ay * wh)), ang, 0, 360, C["gi_tract"], -1)
            cv2.ellipse(H, tuple(int(v) for v in self._px(np.array([lx, ly]))),
                        (int(ax * wh), int(ay * wh)), ang, 0, 360, hgt, -1)
        om = _noisy_ring(np.array([0.42, 0.36]), 0.12, self.calot_harm * 0.8)
        om[:, 0] = 0.42 + (om[:, 0] - 0.42) * 1.8
        fill(om, C["fat"], 150)
        # abdominal wall: top band and far sides
        ytop = -0.43 + 0.025 * np.sin(5 * X)
        fill(np.concatenate([[[X[0], -0.6], [X[-1], -0.6]], np.stack([X[::-1], ytop[::-1]], 1)]),
             C["abdominal_wall"], 80)
        # liver with its lower edge
        yle = -0.07 + 0.05 * np.sin(2.1 * X + 0.5) + 0.025 * np.sin(5.3 * X)
        fill(np.concatenate([np.stack([X, ytop - 0.01], 1), np.stack([X[::-1], yle[::-1]], 1)]),
             C["liver"], 170)
        fill(np.array([(-0.47, -0.6), (-0.33, -0.6), (-0.30, -0.3), (-0.28, -0.09),
                       (-0.33, -0.08), (-0.38, -0.3)]), C["liver_ligament"], 185)
        cv2.ellipse(L, tuple(int(v) for v in self._px(np.array([0.30, -0.31]))),
                    (int(0.085 * wh), int(0.017 * wh)), 12, 0, 360, C["hepatic_vein"], -1)
        # common bile duct, large vessel
        tube(CBD_PTS, 0.05, C["common_bile_duct"], 150)
        if self.plan.large_vessel is not None and t >= self.plan.large_vessel:
            pulse = 0.5 + 0.5 * math.sin(2 * math.pi * 1.25 * (t - self.plan.large_vessel))
            tube(VESSEL_PTS, 0.07 * (1 + 0.16 * pulse), C["large_vessel"], 160)
        # the areolar plane of the hepatocystic triangle, under the fat that covers it
        fill(_noisy_ring(CALOT_CENTRE, CALOT_R * 0.85, self.calot_harm), C["connective_tissue"],
             115)
        # cystic artery and duct, gallbladder
        f, n, sc, gb_vis = self._gb_axis(t)
        cut = self.plan.cut_time is not None and t >= self.plan.cut_time
        duct = np.array([n, (n + DUCT_JUNCTION) / 2 + np.array([0.02, 0.04]), DUCT_JUNCTION])
        duct0 = np.array([GB_NECK, (GB_NECK + DUCT_JUNCTION) / 2 + np.array([0.02, 0.04]),
                          DUCT_JUNCTION])
        art0 = ARTERY_PTS.copy()
        if cut:
            stump = np.array([_polyline_at(duct0, f_) for f_ in np.linspace(0.45, 1.0, 5)])
            tube(stump, 0.034, C["cystic_duct"], 150)
            art_stump = np.array([_polyline_at(art0, f_) for f_ in np.linspace(0.5, 1.0, 5)])
            tube(art_stump, 0.022, C["cystic_artery"], 150)
            if gb_vis:
                d_ = n - GB_NECK
                tube(np.array([_polyline_at(duct0, f_) + d_ for f_ in np.linspace(0, 0.32, 4)]),
                     0.034 * sc, C["cystic_duct"], 150)
        else:
            tube(art0, 0.022, C["cystic_artery"], 150)
            tube(duct if gb_vis else duct0, 0.034, C["cystic_duct"], 150)
        if gb_vis and sc > 0:
            ctrl = (f + n) / 2 + np.array([-0.03, -0.03])
            for s in np.linspace(0, 1, 22):
                p = (1 - s) ** 2 * f + 2 * (1 - s) * s * ctrl + s * s * n
                r = 0.105 * (1 - 0.6 * s ** 1.3) * sc
                c = tuple(int(v) for v in self._px(p))
                cv2.circle(L, c, max(1, int(r * wh)), C["gallbladder"], -1)
                cv2.circle(H, c, max(1, int(r * wh)), 200, -1)
                cv2.circle(H, c, max(1, int(0.6 * r * wh)), 225, -1)
        # Calot triangle: fat and connective tissue, progressively dissected
        p = self._dissection(t)
        if p < 1.0 or math.isinf(self.plan.cvs_times[2]):
            Lb, Hb = L.copy(), H.copy()
            fill(_noisy_ring(CALOT_CENTRE, CALOT_R, self.calot_harm), C["fat"], 165)
            wr = CALOT_R * 0.95 * float(smoothstep(p / 0.88))
            if wr > 0.005:
                win = np.zeros_like(L)
                cv2.fillPoly(win, [self._poly(_noisy_ring(CALOT_CENTRE + np.array([0.0, 0.01]),
                                                          wr, self.win_harm))], 1, cv2.LINE_8,
                             shift=2)
                np.copyto(L, Lb, where=win.astype(bool))
                np.copyto(H, Hb, where=win.astype(bool))
                for i, (a0, a1, b0, b1) in enumerate(self.strands):
                    if p > 0.12 * (i + 1):
                        continue
                    pa = CALOT_CENTRE + wr * 0.9 * np.array([math.cos(a0 * 3), math.sin(a0 * 3)])
                    pb = CALOT_CENTRE + wr * 0.9 * np.array([math.cos(b0 * 3 + 2.5),
                                                             math.sin(b0 * 3 + 2.5)])
                    mid = (pa + pb) / 2 + 0.02 * np.array([a1, b1])
                    tube(np.array([pa, mid, pb]), 0.012 + 0.008 * (1 - p), C["connective_tissue"],
                         160)
        # cystic plate exposed (C3): liver bed visible between the gallbladder and the liver
        c3 = self.plan.cvs_at(t)[2]
        if c3 and gb_vis and t < (self.plan.cut_time or float("inf")):
            cv2.ellipse(L, tuple(int(v) for v in self._px(np.array([0.05, -0.065]))),
                        (int(0.05 * wh), int(0.02 * wh)), -35, 0, 360, C["liver"], -1)
        # clips
        for tc, s_ in self.plan.clips:
            if t < tc:
                continue
            k = [c for c in self.plan.clips if c[1] == s_].index((tc, s_))
            pts = duct0 if s_ == "cystic_duct" else art0
            th = 0.034 if s_ == "cystic_duct" else 0.022
            pos = {"cystic_duct": (0.62, 0.72, 0.28), "cystic_artery": (0.62, 0.3, 0.5)}[s_][k]
            if cut and pos < 0.45 and s_ == "cystic_duct":
                if not gb_vis:
                    continue
                shift = n - GB_NECK
            elif cut and pos < 0.5 and s_ == "cystic_artery":
                continue
            else:
                shift = np.zeros(2)
            c = _polyline_at(pts, pos) + shift
            d = _polyline_at(pts, min(pos + 0.05, 1)) - _polyline_at(pts, max(pos - 0.05, 0))
            d = d / (np.linalg.norm(d) + 1e-9)
            nrm = np.array([-d[1], d[0]])
            hl, hw = th * 0.95, 0.007
            quad = np.array([c - nrm * hl - d * hw, c + nrm * hl - d * hw, c + nrm * hl + d * hw,
                             c - nrm * hl + d * hw])
            fill(quad, C["clip"], 240)
        # bleeding
        for tb in self.plan.bleeding:
            if t < tb:
                continue
            pos, _ = self._bleed_site(tb)
            age = t - tb
            r = 0.075 * (1 - math.exp(-age / 2.5)) + 0.012
            clean = self.plan.phase("CleaningCoagulation")
            if clean is not None and clean.start_s > tb and t > clean.start_s:
                r *= max(0.25, 1 - (t - clean.start_s) / max(clean.end_s - clean.start_s, 1e-3))
            fill(_noisy_ring(pos, r, self.blood_harm, 36), C["blood"], 185)
            trick = min(0.2, 0.05 * age)
            tube(np.array([pos, pos + np.array([-0.01, trick * 0.6]),
                           pos + np.array([0.005, trick])]), 0.02, C["blood"], 180)
        info["gb"] = (f, n, sc, gb_vis)
        info["p"] = p
        return L, H, info

    # ---------------------------------------------------------------- render
    def _world_rgb(self, t: float) -> tuple[np.ndarray, np.ndarray, dict]:
        """Shaded world RGB, labels and state; organs update at WORLD_HZ (cached between)."""
        wt = math.floor(t * WORLD_HZ + 1e-6) / WORLD_HZ if self.fps > WORLD_HZ else t
        if self._cache is not None and self._cache[0] == wt:
            return self._cache[1]
        L, H, info = self._world(wt)
        rgb_w = gather(self.tex_flat, L, self.lut)
        # shading is smooth: computed at half the world resolution, then upsampled
        hw, hh = self.ww // 2, self.wh // 2
        Lh = cv2.resize(L, (hw, hh), interpolation=cv2.INTER_NEAREST)
        # 1. rounded volumes: brightness rises from each region's edge to its inside
        edge = np.zeros(Lh.shape, np.uint8)
        edge[1:, :] |= Lh[1:, :] != Lh[:-1, :]
        edge[:, 1:] |= Lh[:, 1:] != Lh[:, :-1]
        d = cv2.distanceTransform(1 - edge, cv2.DIST_L2, 3)
        z = np.minimum(d * self.inv_round[Lh], 1.0)
        z = np.sqrt(z * (2.0 - z))  # circular cross-section
        # 2. light from the scope: nearer (higher) tissue is brighter; 3. oblique light
        sm = cv2.resize(H, (self.ww // 4, self.wh // 4), interpolation=cv2.INTER_AREA)
        sm = cv2.GaussianBlur(sm.astype(np.float32), (0, 0), 2.0)
        gx = cv2.Sobel(sm, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(sm, cv2.CV_32F, 0, 1, ksize=3)
        tilt = np.clip(1.0 - 0.006 * (gx * 0.5 + gy * 0.8), 0.5, 1.3) * (0.75 + sm / 400.0)
        tilt = cv2.resize(tilt, (hw, hh), interpolation=cv2.INTER_LINEAR)
        shade = cv2.convertScaleAbs((0.5 + 0.5 * z) * tilt, alpha=128.0)
        rgb_w = apply_gain(rgb_w, cv2.resize(shade, (self.ww, self.wh),
                                             interpolation=cv2.INTER_LINEAR))
        # wet glints on the crowns of convex surfaces; they slide a little with the camera
        centre, _, _ = self.camera_at(wt, int(wt * self.fps))
        m = np.float32([[1, 0, -0.15 * (centre[0] - self.ww / 2)],
                        [0, 1, -0.15 * (centre[1] - self.wh / 2)]])
        g = cv2.warpAffine(self.glint, m, (hw, hh), borderMode=cv2.BORDER_WRAP)
        z2 = z * z
        # sharp glints plus a broad wet sheen on the crown of each bulge
        spec = cv2.convertScaleAbs(self.wet[Lh] * z2 * (g + 0.05 * z2 * z2), alpha=300.0)
        rgb_w = add_glints(rgb_w, cv2.resize(spec, (self.ww, self.wh),
                                             interpolation=cv2.INTER_LINEAR))
        # soften the polygon edges a little (tissue boundaries are not vector-sharp)
        rgb_w = cv2.GaussianBlur(rgb_w, (3, 3), 0.7)
        self._cache = (wt, (rgb_w, L, info))
        return rgb_w, L, info

    def render(self, frame: int) -> SynthFrame:
        """Render frame ``frame`` (time = frame / fps) at the output size."""
        t = frame / self.fps
        plan = self.plan
        rgb_w, L, info = self._world_rgb(t)
        centre, zoom, roll = self.camera_at(t, frame)
        b = math.sin(2 * math.pi * t / 4.0)
        amp = 0.03 * self.vh * b
        mx, my = self.cam.maps(centre, zoom, roll, (self.breath[0] * amp * 0.6,
                                                     self.breath[1] * amp))
        rgb = cv2.remap(rgb_w, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        lab = cv2.remap(L, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT101)
        tools, tool_state = self._tools(t, centre, zoom, roll, info)
        for pose in tool_state:
            draw_tool(rgb, lab, pose)
        bag = self._bag(t, centre, zoom, roll)
        if bag is not None:
            draw_specimen_bag(rgb, lab, bag[0], bag[1])
            tools.add("SpecimenBag")
        # smoke from cautery, around the hook tip
        dens = 0.0
        for a, b_ in plan.cautery:
            if a <= t < b_:
                dens = max(dens, min(1.0, (t - a) / 0.4) * 0.75)
            elif t >= b_:
                dens = max(dens, 0.75 * math.exp(-(t - b_) / 1.5))
        hook = next((p_ for p_ in tool_state if p_.kind == "l_hook"), None)
        if dens > 0.01:
            cx, cy = (hook.tip if hook else (self.vw / 2, self.vh / 2))
            ox = int(min(max(self.vw - cx, 0), self.vw))
            oy = int(min(max(self.vh - cy + 0.1 * self.vh, 0), self.vh))
            drift = int(t * 0.08 * self.vh) % self.vh
            fld = self.smoke[(np.arange(self.vh) + drift) % (2 * self.vh)][:, ox:ox + self.vw]
            fld = fld * self.smoke_blob[oy:oy + self.vh, ox:ox + self.vw]
            rgb = add_smoke(rgb, fld * 1.6, dens)
        # optics: vignetting, field stop
        # the scope's own light: closer (zoomed in) tissue is brighter
        k = min(max((0.8 / zoom) ** 0.5, 0.9), 1.15)
        gain = self.gain if abs(k - 1) < 0.01 else cv2.convertScaleAbs(self.gain, alpha=k)
        rgb = apply_gain(rgb, gain)
        lab[~self.fov] = C["background"]
        rgb_o, lab_o = upsample(rgb, lab, self.size)
        present = present_classes(lab, lab_o, len(CLASSES))
        tools_present = set(tools)
        for cls_name, tool in (("grasper", "Grasper"), ("l_hook", "Hook"),
                               ("clip_applier", "Clipper"), ("scissors", "Scissors")):
            if tool in tools_present and C[cls_name] not in present:
                tools_present.discard(tool)
        return SynthFrame(rgb_o, lab_o, [x for x in TOOLS if x in tools_present],
                          {"centre": centre, "zoom": zoom, "roll": roll}, present)

    def view_of(self, t: float, frame: int, world_pt: np.ndarray) -> tuple[float, float]:
        """View pixel (render resolution) of a world point (world units) at time ``t``."""
        centre, zoom, roll = self.camera_at(t, frame)
        return self.cam.to_view(tuple(self._px(world_pt)), centre, zoom, roll)

    def located_events(self) -> list[dict]:
        """Bleeding and large-vessel events with their image location at onset."""
        out = []
        for tb in self.plan.bleeding:
            pos, struct = self._bleed_site(tb)
            out.append({"kind": "bleeding_onset", "time_s": tb,
                        "location": self._quadrant(tb, pos), "structure": struct})
        if self.plan.large_vessel is not None:
            tv = self.plan.large_vessel
            out.append({"kind": "large_vessel", "time_s": tv, "location": "calot_triangle",
                        "image_region": self._quadrant(tv, _polyline_at(VESSEL_PTS, 0.5)),
                        "pulsatile": True})
        return out

    def _quadrant(self, t: float, pt: np.ndarray) -> str:
        x, y = self.view_of(t, int(round(t * self.fps)), pt)
        v = "upper" if y < self.vh / 2 else "lower"
        h = "left" if x < self.vw / 2 else "right"
        return f"{v} {h} quadrant"

    def _tools(self, t: float, centre, zoom, roll, info) -> tuple[set[str], list[ToolPose]]:
        plan = self.plan
        idx, prog = plan.phase_at(t)
        name = PHASES[idx]
        ph = plan.phases[[PHASES.index(p.name) for p in plan.phases].index(idx)]
        vw, vh = self.vw, self.vh
        view = lambda p: np.array(self.cam.to_view(tuple(self._px(p)), centre, zoom, roll))  # noqa: E731
        since = t - ph.start_s
        enter = float(smoothstep(since / 0.8))
        poses: list[ToolPose] = []
        tools: set[str] = set()
        f, n, sc, gb_vis = info["gb"]

        def add(kind, entry, tip, opening=0.25, active=False, ramp=1.0, tool=None):
            entry = np.asarray(entry, float)
            tip = entry + (np.asarray(tip, float) - entry) * ramp
            poses.append(ToolPose(kind, tuple(entry), tuple(tip), opening, active))
            if tool:
                tools.add(tool)

        top_right = (vw * 1.12, -0.15 * vh)
        right = (vw * 1.1, vh * 0.78)
        left = (-0.12 * vw, 0.2 * vh)
        wob = np.array([0.01 * vw * math.sin(t * 2.1), 0.01 * vh * math.sin(t * 1.7)])
        hold_f = view(f + np.array([0.02, -0.04])) + wob * 0.3
        if name == "Preparation":
            add("grasper", top_right, hold_f, 0.35 * (1 - enter) + 0.08, ramp=enter,
                tool="Grasper")
        elif name in ("CalotTriangleDissection", "ClippingCutting", "GallbladderDissection"):
            add("grasper", top_right, hold_f, 0.08, tool="Grasper")
            if gb_vis:
                neck = view(n + np.array([0.05, 0.0])) + wob * 0.5
                add("grasper", right, neck, 0.1, ramp=enter if name ==
                    "CalotTriangleDissection" else 1.0, tool="Grasper")
            if name == "CalotTriangleDissection":
                p = info["p"]
                wr = CALOT_R * 0.95 * float(smoothstep(p / 0.88)) + 0.03
                a = 1.2 + 1.1 * math.sin(t * 0.9)
                tip = view(CALOT_CENTRE + wr * np.array([math.cos(a), -abs(math.sin(a))]))
                act = any(a_ <= t < b_ for a_, b_ in plan.cautery)
                add("l_hook", left, tip + wob, active=act, ramp=enter, tool="Hook")
            elif name == "GallbladderDissection":
                bed = view((f + n) / 2 + np.array([-0.05, 0.07]) + 0.03 * np.array(
                    [math.sin(t * 0.7), math.cos(t * 0.5)]))
                act = any(a_ <= t < b_ for a_, b_ in plan.cautery)
                add("l_hook", left, bed + wob, active=act, ramp=enter, tool="Hook")
            else:  # clipping and cutting
                cut_t = plan.cut_time or ph.end_s
                d0 = np.array([GB_NECK, (GB_NECK + DUCT_JUNCTION) / 2 + np.array([0.02, 0.04]),
                               DUCT_JUNCTION])
                if t < cut_t - 0.15 * (ph.end_s - ph.start_s):
                    nxt = next(((tc, s_) for tc, s_ in plan.clips if tc >= t),
                               plan.clips[-1])
                    k = [c for c in plan.clips if c[1] == nxt[1]].index(nxt)
                    pos = {"cystic_duct": (0.62, 0.72, 0.28),
                           "cystic_artery": (0.62, 0.3, 0.5)}[nxt[1]][k]
                    pts = d0 if nxt[1] == "cystic_duct" else ARTERY_PTS
                    tip = view(_polyline_at(pts, pos) + np.array([-0.015, -0.035]))
                    opening = 0.22 * min(max((nxt[0] - t) / 0.5, 0.0), 1.0)
                    add("clip_applier", (-0.12 * vw, 0.45 * vh), tip, opening, ramp=enter,
                        tool="Clipper")
                else:
                    tip = view(_polyline_at(d0, 0.5) + np.array([-0.01, -0.03]))
                    opening = 0.35 * abs(math.sin((t - cut_t) * 3.0)) if t < cut_t else 0.05
                    ramp = float(smoothstep((t - (cut_t - 0.15 * (ph.end_s - ph.start_s)))
                                            / 0.6))
                    add("scissors", (-0.12 * vw, 0.45 * vh), tip, opening, ramp=ramp,
                        tool="Scissors")
        elif name == "GallbladderPackaging":
            add("grasper", top_right, view(f + np.array([0.0, -0.02])) if gb_vis else
                view(BAG_POS), 0.08, tool="Grasper")
        elif name == "CleaningCoagulation":
            add("grasper", top_right, view(np.array([0.25, -0.2])) + wob, 0.3, tool="Grasper")
            add("irrigator", left, view(np.array([0.08, -0.07])) + wob, ramp=enter,
                tool="Irrigator")
        elif name == "GallbladderRetraction":
            bag = self._bag(t, centre, zoom, roll)
            tip = np.array(bag[0]) if bag else np.array(top_right)
            add("grasper", top_right, tip, 0.08, tool="Grasper")
        return tools, poses

    def _bag(self, t: float, centre, zoom, roll):
        plan = self.plan
        later = [p for p in plan.phases if PHASES.index(p.name) >= PHASES.index(
            "GallbladderPackaging")]
        if not later or t < later[0].start_s:
            return None
        pos = np.array(self.cam.to_view(tuple(self._px(BAG_POS)), centre, zoom, roll))
        r = 0.2 * self.vh / zoom
        ret = plan.phase("GallbladderRetraction")
        pack = plan.phase("GallbladderPackaging")
        if pack is None and (ret is None or t < ret.start_s):
            return None
        if ret is not None and t >= ret.start_s:
            k = float(smoothstep((t - ret.start_s) / max(ret.end_s - ret.start_s, 1e-6) * 1.3))
            pos = pos + (np.array([self.vw * 1.25, -0.3 * self.vh]) - pos) * k
        return (float(pos[0]), float(pos[1])), r
