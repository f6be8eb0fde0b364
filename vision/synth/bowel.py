"""Bowel-survey endoscopy scene: a lumen with folds, passing through named segments.

The mucosa is a periodic texture in tube coordinates (angle, depth). Each frame maps view
pixels to (angle, depth = k / radius + travelled distance) around a moving lumen centre
with one ``cv2.remap``; light falls off with depth so the lumen centre is dark, which is
where the ``lumen`` label goes. Each segment has its own colour, fold pattern (circular
Kerckring folds, feathery jejunal folds, triangular haustra, rectal valves), vessels and
landmarks (papilla, lymphoid nodules, appendiceal orifice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from vision.errors import VisionError
from vision.labels import CLASS_ID, CLASSES, REGIONS, SEGMENTS
from vision.synth.events import SceneEvent
from vision.synth.noise import blobs, fractal_noise
from vision.synth.optics import add_glints, apply_gain, fov_mask, vignette
from vision.synth.scene import SynthFrame, present_classes, render_size, smoothstep, upsample

C = CLASS_ID

#: Route name -> segments visited, in anatomical order.
ROUTES: dict[str, tuple[str, ...]] = {
    "full": SEGMENTS,
    "upper": SEGMENTS[:6],
    "lower": SEGMENTS[6:],
}
#: Relative viewing time of each segment.
SEGMENT_WEIGHTS: dict[str, float] = {
    "duodenum_d1": 1.0, "duodenum_d2": 1.3, "duodenum_d3": 1.1, "duodenum_d4": 0.9,
    "jejunum": 1.6, "ileum": 1.6, "caecum": 1.1, "ascending_colon": 1.2,
    "transverse_colon": 1.4, "descending_colon": 1.2, "sigmoid_colon": 1.3, "rectum": 1.0,
}
BRIEF_S = 0.6  # how long a "seen only briefly" segment is shown (s)


@dataclass
class SegmentLook:
    """Appearance parameters of one segment."""

    colour: tuple[int, int, int]
    fold_freq: float  # folds per depth unit
    fold_depth: float  # 0..1 contrast of folds
    triangular: float  # 0 circular folds .. 1 triangular haustra
    vessels: float  # submucosal vessel visibility
    villi: float  # velvety fine texture
    nodules: float  # lymphoid nodules (ileum)
    radius: float  # lumen width (relative)
    bile: float  # yellow bile tint


LOOKS: dict[str, SegmentLook] = {
    "duodenum_d1": SegmentLook((222, 150, 128), 0.6, 0.25, 0.0, 0.1, 0.5, 0.0, 1.1, 0.05),
    "duodenum_d2": SegmentLook((226, 160, 118), 2.2, 0.75, 0.0, 0.05, 0.6, 0.0, 0.9, 0.35),
    "duodenum_d3": SegmentLook((214, 140, 112), 2.0, 0.65, 0.0, 0.1, 0.6, 0.0, 0.85, 0.15),
    "duodenum_d4": SegmentLook((208, 132, 116), 1.7, 0.55, 0.0, 0.1, 0.6, 0.0, 0.8, 0.1),
    "jejunum": SegmentLook((222, 120, 120), 3.4, 0.85, 0.0, 0.0, 0.9, 0.0, 0.8, 0.05),
    "ileum": SegmentLook((220, 160, 150), 1.0, 0.35, 0.0, 0.2, 0.5, 0.9, 0.75, 0.0),
    "caecum": SegmentLook((230, 178, 168), 0.7, 0.5, 0.4, 0.7, 0.1, 0.0, 1.4, 0.1),
    "ascending_colon": SegmentLook((232, 176, 160), 1.1, 0.7, 0.5, 0.6, 0.1, 0.0, 1.25, 0.05),
    "transverse_colon": SegmentLook((236, 186, 170), 1.3, 0.8, 1.0, 0.6, 0.1, 0.0, 1.1, 0.0),
    "descending_colon": SegmentLook((226, 168, 156), 0.8, 0.4, 0.2, 0.8, 0.1, 0.0, 0.95, 0.0),
    "sigmoid_colon": SegmentLook((220, 150, 140), 1.9, 0.7, 0.3, 0.6, 0.1, 0.0, 0.8, 0.0),
    "rectum": SegmentLook((214, 136, 128), 0.35, 0.6, 0.0, 1.0, 0.1, 0.0, 1.45, 0.0),
}


@dataclass
class Segment:
    """A shown segment interval [start_s, end_s)."""

    name: str
    start_s: float
    end_s: float


@dataclass
class BowelPlan:
    """Segments shown, missed / brief segments, events (times in seconds)."""

    seconds: float
    route: tuple[str, ...]
    segments: list[Segment]
    missed: list[tuple[str, float]]
    brief: list[str]
    large_vessel: float | None
    bleeding: list[float]
    events: list[dict] = field(default_factory=list)

    def segment_at(self, t: float) -> tuple[int, Segment]:
        """(index into self.segments, segment) at time ``t``."""
        for i, s in enumerate(self.segments):
            if s.start_s <= t < s.end_s:
                return i, s
        return len(self.segments) - 1, self.segments[-1]


def plan_bowel(seconds: float, seed: int, events: list[SceneEvent], route: str = "full"
               ) -> BowelPlan:
    """Lay out the survey; raise VisionError on unknown names or impossible scripts."""
    if route not in ROUTES:
        raise VisionError(f"unknown route {route!r}; routes: {', '.join(ROUTES)}")
    segs = ROUTES[route]
    skip: list[str] = []
    brief: list[str] = []
    vessel: float | None = None
    bleeding: list[float] = []
    for ev in events:
        if ev.kind in ("skip_segment", "brief_segment"):
            if ev.arg not in SEGMENTS:
                raise VisionError(f"unknown segment {ev.arg!r}; segments: {', '.join(SEGMENTS)}")
            if ev.arg not in segs:
                raise VisionError(f"segment {ev.arg!r} is not on the {route!r} route")
            (skip if ev.kind == "skip_segment" else brief).append(ev.arg)
        elif ev.kind == "large_vessel":
            vessel = float(ev.time_s)  # type: ignore[arg-type]
        elif ev.kind == "bleeding":
            bleeding.append(float(ev.time_s))  # type: ignore[arg-type]
        else:
            raise VisionError(f"event {ev.kind!r} does not apply to the bowel-survey scenario")
        if ev.time_s is not None and not (0.0 <= ev.time_s < seconds):
            raise VisionError(f"event {ev.spec()} is outside the feed (0..{seconds:g} s)")
    shown = [s for s in segs if s not in skip]
    if not shown:
        raise VisionError("every segment was skipped")
    n_brief = sum(1 for s in shown if s in brief)
    rest = seconds - n_brief * BRIEF_S
    if rest <= 0.5 * (len(shown) - n_brief):
        raise VisionError(f"a {seconds:g} s feed is too short for {len(shown)} segments")
    tot = sum(SEGMENT_WEIGHTS[s] for s in shown if s not in brief)
    out, t = [], 0.0
    for s in shown:
        d = BRIEF_S if s in brief else rest * SEGMENT_WEIGHTS[s] / max(tot, 1e-9)
        out.append(Segment(s, t, t + d))
        t += d
    out[-1].end_s = seconds
    missed = []
    for s in skip:
        j = SEGMENTS.index(s)
        nxt = next((x for x in out if SEGMENTS.index(x.name) > j), None)
        missed.append((s, nxt.start_s if nxt else seconds))
    plan = BowelPlan(seconds, segs, out, missed, brief, vessel, sorted(bleeding))
    ev_out: list[dict] = [{"kind": "segment_missed", "time_s": t_, "segment": s}
                          for s, t_ in missed]
    for s in out:
        if s.name in brief:
            ev_out.append({"kind": "segment_brief", "time_s": s.start_s, "segment": s.name,
                           "duration_s": round(s.end_s - s.start_s, 3)})
    plan.events = ev_out
    return plan


def _segment_texture(rng: np.random.Generator, look: SegmentLook, th: int, tw: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(RGB texture, fold-crest map) in tube coordinates: rows = depth, columns = angle.

    Periodic in both directions (sampled with BORDER_WRAP). ``th`` rows span 4 depth units.
    """
    yy, xx = np.mgrid[0:th, 0:tw].astype(np.float32)
    depth = yy / th * 4.0
    ang = xx / tw * 2 * np.pi
    tri = look.triangular * 0.18 * np.abs(np.sin(1.5 * ang))
    wig = 0.05 * np.sin(3 * ang + 1.3) + 0.03 * np.sin(7 * ang)
    if look.fold_freq >= 3:  # feathery jejunal folds: broken, closely spaced
        wig = wig + 0.08 * (_wrap_noise(rng, th, tw, tw / 16) - 0.5)
    freq = max(1, round(look.fold_freq * 4)) / 4.0  # whole folds per texture period
    phase = (depth + tri + wig) * freq
    frac = phase - np.floor(phase)
    # fold profile: a bright crest with a dark shadow just beyond it (light from the scope)
    crest = np.exp(-((frac - 0.35) / 0.13) ** 2)
    shadow = np.exp(-((frac - 0.56) / 0.1) ** 2)
    n1 = _wrap_noise(rng, th, tw, tw / 6)
    n2 = _wrap_noise(rng, th, tw, tw / 40)
    base = np.asarray(look.colour, np.float32)
    img = base[None, None, :] * (0.85 + 0.25 * (n1[..., None] - 0.5))
    img *= (1.0 + look.fold_depth * (0.35 * crest - 0.55 * shadow))[..., None]
    img *= (1.0 - 0.25 * look.villi * (n2[..., None] - 0.5))
    if look.vessels > 0:
        v = _wrap_ridges(rng, th, tw, tw / 10, 0.02) * (1 - crest)
        img = img * (1 - 0.5 * look.vessels * v[..., None]) + np.array([150, 40, 60],
                                                                        np.float32) * (
            0.5 * look.vessels * v[..., None])
    if look.nodules > 0:
        nod = blobs(rng, th, tw, int(tw * th / 900), tw / 200, tw / 90, 1.0)
        img = img * (1 - 0.35 * look.nodules * nod[..., None]) + np.array(
            [245, 220, 205], np.float32) * (0.35 * look.nodules * nod[..., None])
    if look.bile > 0:
        b = np.clip(_wrap_noise(rng, th, tw, tw / 8) - 0.45, 0, 1) * 2
        img = img * (1 - look.bile * b[..., None]) + np.array([200, 190, 70], np.float32) * (
            look.bile * b[..., None])
    glint = np.clip((crest - 0.6) * 2.5, 0, 1) * np.clip((n2 - 0.45) * 3, 0, 1)
    return np.clip(img, 0, 255).astype(np.uint8), glint.astype(np.float32)


def _wrap_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Fractal noise that tiles in both directions (angle wraps around, depth repeats)."""
    n = fractal_noise(rng, 2 * h, 2 * w, cell, 3)
    r = (np.arange(w, dtype=np.float32) / w)[None, :]
    m = n[:, w:] * (1 - r) + n[:, :w] * r
    rv = (np.arange(h, dtype=np.float32) / h)[:, None]
    return (m[h:] * (1 - rv) + m[:h] * rv).astype(np.float32)


def _wrap_ridges(rng: np.random.Generator, h: int, w: int, cell: float, width: float
                 ) -> np.ndarray:
    """Tileable thin branching lines (submucosal vessels)."""
    n = _wrap_noise(rng, h, w, cell)
    n = (n - n.mean()) / (n.std() + 1e-6) * 0.15 + 0.5
    return np.clip(1.0 - np.abs(n - 0.5) / width, 0.0, 1.0).astype(np.float32)


class BowelScene:
    """Renders endoscopy frames following a :class:`BowelPlan`."""

    def __init__(self, plan: BowelPlan, size: tuple[int, int], fps: float, seed: int,
                 n_frames: int):
        self.plan, self.size, self.fps = plan, size, fps
        self.vw, self.vh = render_size(size)
        rng = np.random.default_rng([seed, 11])
        self.tw, self.th = 720, 512
        self.tex: dict[str, np.ndarray] = {}
        self.tex_far: dict[str, np.ndarray] = {}
        for s in sorted({x.name for x in plan.segments}, key=SEGMENTS.index):
            srng = np.random.default_rng([seed, 12, SEGMENTS.index(s)])
            rgb, gl = _segment_texture(srng, LOOKS[s], self.th, self.tw)
            # glint strength rides along as the alpha channel: one remap per frame
            self.tex[s] = np.dstack([rgb, np.clip(gl * 255, 0, 255).astype(np.uint8)])
            # far away the folds crowd together: sample a blurred copy there (no aliasing)
            self.tex_far[s] = cv2.GaussianBlur(self.tex[s], (0, 0), sigmaX=2.0, sigmaY=14.0,
                                               borderType=cv2.BORDER_WRAP)
        # polar coordinates on a grid twice the view; sliced per frame around the lumen centre
        h2, w2 = 2 * self.vh, 2 * self.vw
        yy, xx = np.mgrid[0:h2, 0:w2].astype(np.float32)
        dx, dy = xx - self.vw, (yy - self.vh) * 1.05
        self.rad = np.hypot(dx, dy) / (0.5 * self.vh) + 1e-3
        self.theta = np.arctan2(dy, dx).astype(np.float32)
        self.ang = ((self.theta + np.pi) / (2 * np.pi) * self.tw).astype(np.float32)
        self._geo: dict[str, tuple[np.ndarray, ...]] = {}
        self.lumen_phase = rng.uniform(0, 2 * np.pi, 2)
        for s in self.tex:
            self._geometry(s)
        self.fov = fov_mask(self.vh, self.vw, "octagon")
        g = vignette(self.vh, self.vw, 0.45) * 128.0
        g[~self.fov] = 0
        self.gain = g.astype(np.uint8)
        self.wobble = rng.uniform(0, 2 * np.pi, 6)
        self.vessel_angle = float(rng.uniform(0.2, 1.2))
        self.blood_harm = rng.uniform(-1, 1, (4, 2)) * np.array([0.1, 3.0])

    def _lumen_centre(self, t: float) -> tuple[float, float]:
        w = self.wobble
        x = 0.16 * math.sin(0.31 * t + w[0]) + 0.08 * math.sin(0.83 * t + w[1])
        y = 0.13 * math.sin(0.27 * t + w[2]) + 0.06 * math.sin(0.71 * t + w[3])
        return self.vw / 2 + x * self.vw * 0.5, self.vh / 2 + y * self.vh * 0.5

    def _geometry(self, seg: str) -> tuple[np.ndarray, ...]:
        """Per-segment static maps on the 2x grid: texture row of each pixel at zero travel,
        light gain (uint8, x128), glint gain (uint8), lumen mask, far-texture weight. Cached."""
        g = self._geo.get(seg)
        if g is not None:
            return g
        look = LOOKS[seg]
        a3 = 0.05 + 0.16 * look.triangular  # triangular haustra give a three-cornered lumen
        p = self.lumen_phase
        mod = 1.0 + a3 * np.sin(3 * self.theta + p[0]) + 0.04 * np.sin(5 * self.theta + p[1])
        depth = look.radius * 1.2 / (self.rad * mod)  # depth units
        light = 1.0 / (1.0 + (depth / 2.2) ** 2)
        row = (depth * (self.th / 4.0)).astype(np.float32)
        gain = np.clip(light * 160.0, 0, 255).astype(np.uint8)
        spec = np.clip(np.clip(light * 1.6, 0, 1) * 230.0, 0, 255).astype(np.uint8)
        far = np.clip((depth - 1.5) / 3.0, 0.0, 1.0).astype(np.float32)
        g = (row, gain, spec, light < 0.12, far)
        self._geo[seg] = g
        return g

    def _sample(self, seg: str, t: float, ox: int, oy: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Lit RGB, glint (uint8), lumen mask for segment ``seg`` at time ``t``."""
        row, gain, spec, lumen, far = (a[oy:oy + self.vh, ox:ox + self.vw]
                                       for a in self._geometry(seg))
        ang = self.ang[oy:oy + self.vh, ox:ox + self.vw]
        travel = 0.55 * t + 0.12 * math.sin(0.9 * t + self.wobble[4])
        my = row + np.float32((travel % 4.0) * self.th / 4.0)
        rot = 0.03 * math.sin(0.4 * t + self.wobble[5]) * self.tw
        mx = ang + np.float32(rot)
        rgba = cv2.remap(self.tex[seg], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        rgba_far = cv2.remap(self.tex_far[seg], mx, my, cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_WRAP)
        rgba = cv2.blendLinear(rgba, rgba_far, 1.0 - far, far)
        rgb = apply_gain(np.ascontiguousarray(rgba[..., :3]), gain)
        glint = cv2.multiply(np.ascontiguousarray(rgba[..., 3]), spec, scale=1.0 / 255.0)
        return rgb, glint, lumen, gain

    def render(self, frame: int) -> SynthFrame:
        """Render frame ``frame`` (time = frame / fps) at the output size."""
        t = frame / self.fps
        i, seg = self.plan.segment_at(t)
        cx, cy = self._lumen_centre(t)
        ox = int(np.clip(round(self.vw - cx), 0, self.vw))
        oy = int(np.clip(round(self.vh - cy), 0, self.vh))
        look = LOOKS[seg.name]
        rgb, glint, lumen, _ = self._sample(seg.name, t, ox, oy)
        # cross-fade from the previous segment over the first 0.4 s of a segment
        if i > 0 and t - seg.start_s < 0.4:
            prev = self.plan.segments[i - 1]
            blend = 1.0 - float(smoothstep((t - seg.start_s) / 0.4))
            rgb2, glint2, _, _ = self._sample(prev.name, t, ox, oy)
            rgb = cv2.addWeighted(rgb, 1 - blend, rgb2, blend, 0)
            glint = cv2.addWeighted(glint, 1 - blend, glint2, blend, 0)
        rgb = add_glints(rgb, glint)
        lab = np.where(lumen, np.uint8(C["lumen"]), np.uint8(C["gi_tract"]))
        self._landmarks(rgb, lab, t, seg, (cx, cy), look)
        rgb = apply_gain(rgb, self.gain)
        lab[~self.fov] = C["background"]
        rgb_o, lab_o = upsample(rgb, lab, self.size)
        return SynthFrame(rgb_o, lab_o, [], {"segment": seg.name, "lumen_centre": (cx, cy)},
                          present_classes(lab, lab_o, len(CLASSES)))

    def _wall_point(self, centre: tuple[float, float], angle: float, r: float
                    ) -> tuple[float, float]:
        return (centre[0] + math.cos(angle) * r * 0.5 * self.vh,
                centre[1] + math.sin(angle) * r * 0.5 * self.vh / 1.05)

    def _landmarks(self, rgb, lab, t, seg: Segment, centre, look) -> None:
        vh = self.vh
        plan = self.plan
        if plan.large_vessel is not None and t >= plan.large_vessel:
            i_on, s_on = plan.segment_at(plan.large_vessel)
            if seg.name == s_on.name:
                pulse = 0.5 + 0.5 * math.sin(2 * math.pi * 1.2 * (t - plan.large_vessel))
                p = self._wall_point(centre, self.vessel_angle, 1.05)
                ax = (int(0.2 * vh * (1 + 0.12 * pulse)), int(0.085 * vh * (1 + 0.18 * pulse)))
                ang = math.degrees(self.vessel_angle) + 90
                c = (int(p[0]), int(p[1]))
                cv2.ellipse(rgb, c, ax, ang, 0, 360, (150, 40, 90), -1, cv2.LINE_AA)
                cv2.ellipse(rgb, c, (int(ax[0] * 0.7), int(ax[1] * 0.45)), ang, 0, 360,
                            (185, 70, 120), -1, cv2.LINE_AA)
                cv2.ellipse(rgb, (c[0] - int(ax[1] * 0.3), c[1] - int(ax[1] * 0.3)),
                            (max(1, int(ax[0] * 0.25)), max(1, int(ax[1] * 0.12))), ang, 0, 360,
                            (250, 235, 240), -1, cv2.LINE_AA)
                cv2.ellipse(lab, c, ax, ang, 0, 360, C["large_vessel"], -1, cv2.LINE_8)
        for tb in plan.bleeding:
            if t < tb:
                continue
            _, s_on = plan.segment_at(tb)
            if seg.name != s_on.name:
                continue
            age = t - tb
            r = (0.06 + 0.2 * (1 - math.exp(-age / 2.0))) * vh
            p = self._wall_point(centre, self.vessel_angle + 2.6, 1.1)
            a = np.linspace(0, 2 * np.pi, 30, endpoint=False)
            rr = r * (1 + sum(h[0] * np.sin((k + 2) * a + h[1])
                              for k, h in enumerate(self.blood_harm)))
            pts = np.stack([p[0] + rr * np.cos(a), p[1] + rr * 0.7 * np.sin(a)], 1)
            pts = np.round(pts * 16).astype(np.int32)
            cv2.fillPoly(rgb, [pts], (120, 6, 10), cv2.LINE_AA, shift=4)
            cv2.fillPoly(lab, [pts], C["blood"], cv2.LINE_8, shift=4)
        if seg.name == "duodenum_d2":  # major papilla: a pale nipple on the medial wall
            p = self._wall_point(centre, 2.4, 1.2)
            cv2.circle(rgb, (int(p[0]), int(p[1])), int(0.06 * vh), (236, 190, 160), -1,
                       cv2.LINE_AA)
            cv2.circle(rgb, (int(p[0]), int(p[1])), int(0.015 * vh), (120, 60, 50), -1,
                       cv2.LINE_AA)
        if seg.name == "caecum":  # appendiceal orifice: a crescent slit
            p = self._wall_point(centre, 4.0, 0.9)
            cv2.ellipse(rgb, (int(p[0]), int(p[1])), (int(0.07 * vh), int(0.02 * vh)), 30, 0,
                        360, (120, 70, 70), -1, cv2.LINE_AA)

    def region_index(self, t: float) -> int:
        """REGIONS index of the segment shown at time ``t``."""
        return REGIONS.index(self.plan.segment_at(t)[1].name)

    def located_events(self) -> list[dict]:
        """Large-vessel and bleeding events with the segment they happen in."""
        out = []
        if self.plan.large_vessel is not None:
            s = self.plan.segment_at(self.plan.large_vessel)[1].name
            out.append({"kind": "large_vessel", "time_s": self.plan.large_vessel,
                        "location": s, "pulsatile": True})
        for tb in self.plan.bleeding:
            out.append({"kind": "bleeding_onset", "time_s": tb,
                        "location": self.plan.segment_at(tb)[1].name})
        return out
