"""Cholecystectomy scene geometry: anatomy in world units and the world label / height maps.

World units: the world canvas's height, origin at its centre (x right, y down). Organs are
polygons and thick polylines drawn into a label map (class ids) and a height map (0-255,
higher = nearer the scope) that the renderer shades (``vision.synth.cholec``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from vision.labels import CLASS_ID, PHASES
from vision.synth.scene import smoothstep

C = CLASS_ID

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


class CholecWorld:
    """Organ state and world maps of a :class:`vision.synth.cholec.CholecScene` (a mixin:
    uses its ``plan``, world size ``ww`` x ``wh`` pixels and the seeded shape harmonics)."""

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
    def _fill(self, L: np.ndarray, H: np.ndarray, pts: np.ndarray, cls: int, h: int) -> None:
        """Fill the polygon ``pts`` (world units) with class ``cls`` and height ``h``."""
        p = self._poly(pts)
        cv2.fillPoly(L, [p], int(cls), cv2.LINE_8, shift=2)
        cv2.fillPoly(H, [p], int(h), cv2.LINE_8, shift=2)

    def _tube(self, L: np.ndarray, H: np.ndarray, pts: np.ndarray, thick: float, cls: int,
              h: int) -> None:
        """Draw the polyline ``pts`` ``thick`` world units wide, higher along its middle."""
        p = self._poly(pts)
        th = max(1, int(round(thick * self.wh)))
        cv2.polylines(L, [p], False, int(cls), th, cv2.LINE_8, shift=2)
        for f_, dh in ((1.0, 0), (0.65, 25), (0.3, 50)):
            cv2.polylines(H, [p], False, int(min(255, h + dh)), max(1, int(th * f_)),
                          cv2.LINE_8, shift=2)

    def _world(self, t: float) -> tuple[np.ndarray, np.ndarray, dict]:
        """World label map and height map at time ``t``."""
        L = np.full((self.wh, self.ww), C["fat"], np.uint8)
        H = np.full((self.wh, self.ww), 100, np.uint8)
        info: dict = {}
        self._draw_surroundings(L, H, t)
        # cystic artery and duct, gallbladder
        f, n, sc, gb_vis = self._gb_axis(t)
        cut = self.plan.cut_time is not None and t >= self.plan.cut_time
        duct0 = np.array([GB_NECK, (GB_NECK + DUCT_JUNCTION) / 2 + np.array([0.02, 0.04]),
                          DUCT_JUNCTION])
        art0 = ARTERY_PTS.copy()
        self._draw_cystic(L, H, f, n, sc, gb_vis, cut, duct0, art0)
        p = self._dissection(t)
        if p < 1.0 or math.isinf(self.plan.cvs_times[2]):
            self._draw_calot(L, H, p)
        # cystic plate exposed (C3): liver bed visible between the gallbladder and the liver
        c3 = self.plan.cvs_at(t)[2]
        if c3 and gb_vis and t < (self.plan.cut_time or float("inf")):
            cv2.ellipse(L, tuple(int(v) for v in self._px(np.array([0.05, -0.065]))),
                        (int(0.05 * self.wh), int(0.02 * self.wh)), -35, 0, 360, C["liver"], -1)
        self._draw_clips(L, H, t, n, gb_vis, cut, duct0, art0)
        self._draw_bleeding(L, H, t)
        info["gb"] = (f, n, sc, gb_vis)
        info["p"] = p
        return L, H, info

    def _draw_surroundings(self, L: np.ndarray, H: np.ndarray, t: float) -> None:
        """Bowel, omentum, abdominal wall, liver, common bile duct, large vessel (from its
        onset) and the areolar plane of the hepatocystic triangle."""
        ww, wh = self.ww, self.wh
        X = np.linspace(-ww / wh / 2 - 0.05, ww / wh / 2 + 0.05, 48)
        # bowel at the bottom, omentum over part of it
        ygi = 0.2 + 0.05 * np.sin(4 * X + 1.0)
        self._fill(L, H, np.concatenate([np.stack([X, ygi], 1), [[X[-1], 0.6], [X[0], 0.6]]]),
                   C["gi_tract"], 130)
        # bowel loops (duodenum, hepatic flexure) bulging at different heights
        for (lx, ly, ax, ay, ang), hgt in zip(self.loops, (150, 170, 160, 145), strict=True):
            cv2.ellipse(L, tuple(int(v) for v in self._px(np.array([lx, ly]))),
                        (int(ax * wh), int(ay * wh)), ang, 0, 360, C["gi_tract"], -1)
            cv2.ellipse(H, tuple(int(v) for v in self._px(np.array([lx, ly]))),
                        (int(ax * wh), int(ay * wh)), ang, 0, 360, hgt, -1)
        om = _noisy_ring(np.array([0.42, 0.36]), 0.12, self.calot_harm * 0.8)
        om[:, 0] = 0.42 + (om[:, 0] - 0.42) * 1.8
        self._fill(L, H, om, C["fat"], 150)
        # abdominal wall: top band and far sides
        ytop = -0.43 + 0.025 * np.sin(5 * X)
        self._fill(L, H, np.concatenate([[[X[0], -0.6], [X[-1], -0.6]],
                                         np.stack([X[::-1], ytop[::-1]], 1)]),
                   C["abdominal_wall"], 80)
        # liver with its lower edge
        yle = -0.07 + 0.05 * np.sin(2.1 * X + 0.5) + 0.025 * np.sin(5.3 * X)
        self._fill(L, H, np.concatenate([np.stack([X, ytop - 0.01], 1),
                                         np.stack([X[::-1], yle[::-1]], 1)]),
                   C["liver"], 170)
        self._fill(L, H, np.array([(-0.47, -0.6), (-0.33, -0.6), (-0.30, -0.3), (-0.28, -0.09),
                                   (-0.33, -0.08), (-0.38, -0.3)]), C["liver_ligament"], 185)
        cv2.ellipse(L, tuple(int(v) for v in self._px(np.array([0.30, -0.31]))),
                    (int(0.085 * wh), int(0.017 * wh)), 12, 0, 360, C["hepatic_vein"], -1)
        # common bile duct, large vessel
        self._tube(L, H, CBD_PTS, 0.05, C["common_bile_duct"], 150)
        if self.plan.large_vessel is not None and t >= self.plan.large_vessel:
            pulse = 0.5 + 0.5 * math.sin(2 * math.pi * 1.25 * (t - self.plan.large_vessel))
            self._tube(L, H, VESSEL_PTS, 0.07 * (1 + 0.16 * pulse), C["large_vessel"], 160)
        # the areolar plane of the hepatocystic triangle, under the fat that covers it
        self._fill(L, H, _noisy_ring(CALOT_CENTRE, CALOT_R * 0.85, self.calot_harm),
                   C["connective_tissue"], 115)

    def _draw_cystic(self, L: np.ndarray, H: np.ndarray, f: np.ndarray, n: np.ndarray,
                     sc: float, gb_vis: bool, cut: bool, duct0: np.ndarray,
                     art0: np.ndarray) -> None:
        """Cystic artery and duct (stumps once cut) and the gallbladder from fundus ``f`` to
        neck ``n`` at scale ``sc``."""
        wh = self.wh
        duct = np.array([n, (n + DUCT_JUNCTION) / 2 + np.array([0.02, 0.04]), DUCT_JUNCTION])
        if cut:
            stump = np.array([_polyline_at(duct0, f_) for f_ in np.linspace(0.45, 1.0, 5)])
            self._tube(L, H, stump, 0.034, C["cystic_duct"], 150)
            art_stump = np.array([_polyline_at(art0, f_) for f_ in np.linspace(0.5, 1.0, 5)])
            self._tube(L, H, art_stump, 0.022, C["cystic_artery"], 150)
            if gb_vis:
                d_ = n - GB_NECK
                self._tube(L, H, np.array([_polyline_at(duct0, f_) + d_
                                           for f_ in np.linspace(0, 0.32, 4)]),
                           0.034 * sc, C["cystic_duct"], 150)
        else:
            self._tube(L, H, art0, 0.022, C["cystic_artery"], 150)
            self._tube(L, H, duct if gb_vis else duct0, 0.034, C["cystic_duct"], 150)
        if gb_vis and sc > 0:
            ctrl = (f + n) / 2 + np.array([-0.03, -0.03])
            for s in np.linspace(0, 1, 22):
                p = (1 - s) ** 2 * f + 2 * (1 - s) * s * ctrl + s * s * n
                r = 0.105 * (1 - 0.6 * s ** 1.3) * sc
                c = tuple(int(v) for v in self._px(p))
                cv2.circle(L, c, max(1, int(r * wh)), C["gallbladder"], -1)
                cv2.circle(H, c, max(1, int(r * wh)), 200, -1)
                cv2.circle(H, c, max(1, int(0.6 * r * wh)), 225, -1)

    def _draw_calot(self, L: np.ndarray, H: np.ndarray, p: float) -> None:
        """Calot triangle: fat and connective tissue over it, a window dissected to
        progress ``p`` (0..1) showing what lies beneath, strands across it."""
        Lb, Hb = L.copy(), H.copy()
        self._fill(L, H, _noisy_ring(CALOT_CENTRE, CALOT_R, self.calot_harm), C["fat"], 165)
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
                self._tube(L, H, np.array([pa, mid, pb]), 0.012 + 0.008 * (1 - p),
                           C["connective_tissue"], 160)

    def _draw_clips(self, L: np.ndarray, H: np.ndarray, t: float, n: np.ndarray,
                    gb_vis: bool, cut: bool, duct0: np.ndarray, art0: np.ndarray) -> None:
        """Clips applied by time ``t`` on the cystic duct and artery (the gallbladder side
        moves with its neck ``n`` once cut)."""
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
            self._fill(L, H, quad, C["clip"], 240)

    def _draw_bleeding(self, L: np.ndarray, H: np.ndarray, t: float) -> None:
        """Bleeding that started by time ``t``: a spreading pool and a trickle (shrinking
        during cleaning and coagulation)."""
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
            self._fill(L, H, _noisy_ring(pos, r, self.blood_harm, 36), C["blood"], 185)
            trick = min(0.2, 0.05 * age)
            self._tube(L, H, np.array([pos, pos + np.array([-0.01, trick * 0.6]),
                                       pos + np.array([0.005, trick])]), 0.02, C["blood"], 180)
