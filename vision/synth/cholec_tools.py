"""Instruments of the cholecystectomy scene: which tools are in view per phase and where
(view pixels), and the specimen bag."""

from __future__ import annotations

import math

import numpy as np

from vision.labels import PHASES
from vision.synth.cholec_anatomy import (
    ARTERY_PTS,
    BAG_POS,
    CALOT_CENTRE,
    CALOT_R,
    DUCT_JUNCTION,
    GB_NECK,
    _polyline_at,
)
from vision.synth.instruments import ToolPose
from vision.synth.scene import smoothstep


class CholecInstruments:
    """Tool poses of a :class:`vision.synth.cholec.CholecScene` (a mixin: uses its ``plan``,
    camera ``cam``, view size ``vw`` x ``vh`` and ``_px``)."""

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
                kind, tip, opening, ramp, tool = self._clipping_tool(t, ph, view, enter)
                add(kind, (-0.12 * vw, 0.45 * vh), tip, opening, ramp=ramp, tool=tool)
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

    def _clipping_tool(self, t: float, ph, view, enter: float
                       ) -> tuple[str, np.ndarray, float, float, str]:
        """The clip applier at the next clip, then the scissors at the duct: (kind, tip in
        view pixels, jaw opening, entry ramp, Cholec80 tool name)."""
        plan = self.plan
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
            return "clip_applier", tip, opening, enter, "Clipper"
        tip = view(_polyline_at(d0, 0.5) + np.array([-0.01, -0.03]))
        opening = 0.35 * abs(math.sin((t - cut_t) * 3.0)) if t < cut_t else 0.05
        ramp = float(smoothstep((t - (cut_t - 0.15 * (ph.end_s - ph.start_s))) / 0.6))
        return "scissors", tip, opening, ramp, "Scissors"

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
