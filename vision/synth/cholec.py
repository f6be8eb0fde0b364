"""Laparoscopic cholecystectomy scene: plan (phases, events) and per-frame renderer.

Geometry lives on a world canvas 1.35 x the view, in units of the world height with the
origin at its centre (x right, y down). Organs are drawn as polygons / thick polylines into
a world label map and a height map; textures are gathered through the label map, shading
comes from the blurred height map, then one ``cv2.remap`` applies camera motion and the
breathing deformation to pixels and labels alike. Instruments are drawn in view space
with the same polygons into pixels and labels.

The script is ``vision.synth.cholec_plan``, the anatomy and world maps
``vision.synth.cholec_anatomy``, the instruments ``vision.synth.cholec_tools``; this module
shades, moves the camera and composes the frame.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from vision.labels import CLASSES, PHASES, TOOLS
from vision.synth.cholec_anatomy import (
    ARTERY_PTS,
    BAG_POS,
    CALOT_CENTRE,
    CALOT_R,
    CAMERA_TARGETS,
    CBD_PTS,
    DUCT_JUNCTION,
    GB_FUNDUS,
    GB_NECK,
    VESSEL_PTS,
    C,
    CholecWorld,
    _polyline_at,
)
from vision.synth.cholec_anatomy import _noisy_ring as _noisy_ring
from vision.synth.cholec_plan import (
    CLIP_PLAN,
    CUT_AT,
    CVS_AT,
    PHASE_WEIGHTS,
    CholecPlan,
    Phase,
    plan_cholecystectomy,
)
from vision.synth.cholec_tools import CholecInstruments
from vision.synth.instruments import draw_specimen_bag, draw_tool
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

__all__ = ["ARTERY_PTS", "BAG_POS", "CALOT_CENTRE", "CALOT_R", "CAMERA_TARGETS", "CBD_PTS",
           "CLIP_PLAN", "CUT_AT", "CVS_AT", "DUCT_JUNCTION", "GB_FUNDUS", "GB_NECK",
           "PHASE_WEIGHTS", "VESSEL_PTS", "C", "CholecPlan", "CholecScene", "Phase",
           "plan_cholecystectomy"]

WORLD_SCALE = 1.35  # world canvas / view size
WORLD_HZ = 15.0  # organ state (dissection, clips, blood) updates per second; camera every frame


class CholecScene(CholecWorld, CholecInstruments):
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
