"""Laparoscopic instruments drawn in view space: shafts from the edge, jaws at the tip.

Each tool is drawn into the RGB frame and, with the very same polygons, into the label map,
so the mask matches the pixels exactly. Sizes are relative to the frame height.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision.labels import CLASS_ID, IGNORE_INDEX

#: Label written for tools that have no segmentation class (irrigator, specimen bag).
UNLABELLED_TOOL = IGNORE_INDEX

TOOL_CLASS = {
    "grasper": CLASS_ID["grasper"],
    "l_hook": CLASS_ID["l_hook"],
    "clip_applier": CLASS_ID["clip_applier"],
    "scissors": CLASS_ID["scissors"],
    "irrigator": UNLABELLED_TOOL,
}

#: Shaft colours (RGB): insulated black shafts for grasper / hook / scissors, bare metal for
#: the clip applier and the irrigator.
SHAFT_RGB = {
    "grasper": (52, 54, 60),
    "l_hook": (28, 28, 32),
    "clip_applier": (150, 152, 160),
    "scissors": (40, 44, 58),
    "irrigator": (176, 178, 182),
}


@dataclass
class ToolPose:
    """Where a tool is in the view: ``entry`` on/outside the frame edge and ``tip`` (pixels)."""

    kind: str
    entry: tuple[float, float]
    tip: tuple[float, float]
    opening: float = 0.3  # jaw half-angle, radians
    active: bool = False  # energised (L-hook cautery)


def _poly(pts: list[tuple[float, float]] | np.ndarray) -> np.ndarray:
    return np.round(np.asarray(pts, np.float32) * 16).astype(np.int32)


def _fill(rgb: np.ndarray, label: np.ndarray, pts, colour, cls: int | None) -> None:
    p = _poly(pts)
    cv2.fillPoly(rgb, [p], colour, cv2.LINE_AA, shift=4)
    if cls is not None:
        cv2.fillPoly(label, [p], int(cls), cv2.LINE_8, shift=4)


def _shade(colour: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, c * f))) for c in colour)  # type: ignore[return-value]


def _shaft(rgb, label, e, t, w0, w1, colour, cls) -> None:
    """Cylindrical shaft from entry ``e`` to tip-base ``t``: banded shading + highlight."""
    d = t - e
    n = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-6)
    bands = [(-0.5, -0.28, 0.55), (-0.28, 0.02, 0.85), (0.02, 0.16, 1.35), (0.16, 0.3, 1.0),
             (0.3, 0.5, 0.6)]
    for a, b, f in bands:
        pts = [e + n * w0 * a, e + n * w0 * b, t + n * w1 * b, t + n * w1 * a]
        _fill(rgb, label, pts, _shade(colour, f), None)
    pts = [e - n * w0 / 2, e + n * w0 / 2, t + n * w1 / 2, t - n * w1 / 2]
    if cls is not None:
        cv2.fillPoly(label, [_poly(pts)], int(cls), cv2.LINE_8, shift=4)


def _rot(v: np.ndarray, a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def draw_tool(rgb: np.ndarray, label: np.ndarray, pose: ToolPose, rng: np.random.Generator | None
              = None) -> None:
    """Draw one instrument into ``rgb`` (uint8 HxWx3) and ``label`` (uint8 HxW) in place."""
    h = rgb.shape[0]
    e = np.asarray(pose.entry, np.float64)
    tip = np.asarray(pose.tip, np.float64)
    d = tip - e
    length = np.linalg.norm(d) + 1e-6
    u = d / length
    n = np.array([-u[1], u[0]])
    cls = TOOL_CLASS[pose.kind]
    col = SHAFT_RGB[pose.kind]
    metal = (196, 198, 206)
    if pose.kind == "grasper":
        jl = 0.11 * h
        base = tip - u * jl
        _shaft(rgb, label, e, base, 0.16 * h, 0.055 * h, col, cls)
        for sgn in (-1, 1):
            ju = _rot(u, sgn * pose.opening)
            jn = np.array([-ju[1], ju[0]])
            p0 = base + n * sgn * 0.012 * h
            pts = [p0 - jn * 0.018 * h, p0 + jn * 0.018 * h, p0 + ju * jl + jn * 0.008 * h,
                   p0 + ju * jl - jn * 0.008 * h]
            _fill(rgb, label, pts, metal, cls)
            # fenestration (window in the jaw) shows darker metal
            c = p0 + ju * jl * 0.5
            win = [c - ju * jl * 0.22 - jn * 0.005 * h, c - ju * jl * 0.22 + jn * 0.005 * h,
                   c + ju * jl * 0.22 + jn * 0.003 * h, c + ju * jl * 0.22 - jn * 0.003 * h]
            _fill(rgb, label, win, (95, 96, 104), cls)
        _fill(rgb, label, [base - n * 0.03 * h, base + n * 0.03 * h,
                           base + n * 0.026 * h + u * 0.018 * h,
                           base - n * 0.026 * h + u * 0.018 * h], (150, 150, 158), cls)
    elif pose.kind == "l_hook":
        rl = 0.07 * h
        base = tip - u * rl
        _shaft(rgb, label, e, base, 0.12 * h, 0.04 * h, col, cls)
        rod = [base - n * 0.008 * h, base + n * 0.008 * h, tip + n * 0.007 * h,
               tip - n * 0.007 * h]
        _fill(rgb, label, rod, metal, cls)
        hook_end = tip + n * 0.035 * h - u * 0.004 * h
        hk = [tip - n * 0.007 * h + u * 0.007 * h, tip - n * 0.007 * h - u * 0.007 * h,
              hook_end - u * 0.006 * h, hook_end + u * 0.006 * h]
        _fill(rgb, label, hk, (222, 222, 228), cls)
        if pose.active:
            c = tuple(int(v) for v in tip)
            cv2.circle(rgb, c, max(2, int(0.02 * h)), (255, 244, 200), -1, cv2.LINE_AA)
            cv2.circle(rgb, c, max(1, int(0.009 * h)), (255, 255, 255), -1, cv2.LINE_AA)
    elif pose.kind == "clip_applier":
        jl = 0.075 * h
        base = tip - u * jl
        _shaft(rgb, label, e, base, 0.19 * h, 0.07 * h, col, cls)
        op = min(pose.opening, 0.25)
        for sgn in (-1, 1):
            ju = _rot(u, sgn * op)
            jn = np.array([-ju[1], ju[0]])
            p0 = base + n * sgn * 0.02 * h
            pts = [p0 - jn * 0.016 * h, p0 + jn * 0.016 * h, p0 + ju * jl + jn * 0.012 * h,
                   p0 + ju * jl - jn * 0.012 * h]
            _fill(rgb, label, pts, (170, 172, 182), cls)
    elif pose.kind == "scissors":
        bl = 0.09 * h
        base = tip - u * bl
        _shaft(rgb, label, e, base, 0.15 * h, 0.05 * h, col, cls)
        for sgn in (-1, 1):
            ju = _rot(u, sgn * pose.opening * 0.7)
            jn = np.array([-ju[1], ju[0]])
            p0 = base
            curve = [p0 + ju * bl * f + jn * (0.02 * h * (f * f) * 1.0) for f in
                     np.linspace(0, 1, 6)]
            outer = [c + jn * 0.012 * h * (1 - f) for c, f in zip(curve, np.linspace(0, 1, 6),
                                                                  strict=True)]
            inner = [c - jn * 0.004 * h for c in curve]
            _fill(rgb, label, outer + inner[::-1], (200, 182, 128), cls)
    elif pose.kind == "irrigator":
        _shaft(rgb, label, e, tip, 0.13 * h, 0.05 * h, col, cls)
        for f in (0.92, 0.96):
            c = e + d * f
            cv2.circle(rgb, tuple(int(v) for v in c), max(1, int(0.006 * h)), (60, 60, 60), -1)
    else:
        raise ValueError(f"unknown tool kind {pose.kind!r}")


def draw_specimen_bag(rgb: np.ndarray, label: np.ndarray, centre: tuple[float, float],
                      radius: float) -> None:
    """Translucent plastic retrieval bag (no segmentation class: labelled ignore)."""
    h, w = label.shape
    m = np.zeros((h, w), np.uint8)
    cx, cy = centre
    pts = [(cx + radius * np.cos(a) * (1 + 0.12 * np.sin(3 * a)),
            cy + radius * 0.8 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 24, endpoint=False)]
    cv2.fillPoly(m, [_poly(pts)], 1, cv2.LINE_8, shift=4)
    sel = m.astype(bool)
    rgb[sel] = (rgb[sel].astype(np.uint16) * 2 // 5 + np.array([138, 150, 160], np.uint16)
                ).clip(0, 255).astype(np.uint8)
    label[sel] = UNLABELLED_TOOL
    cv2.polylines(rgb, [_poly(pts)], True, (225, 230, 235), max(1, int(radius * 0.04)),
                  cv2.LINE_AA, shift=4)
