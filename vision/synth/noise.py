"""Procedural noise fields (value noise, fractal sums, streaks), all from seeded generators.

Every field is float32 in [0, 1] with shape (height, width); computed once per feed and then
warped per frame, so their cost does not scale with the number of frames.
"""

from __future__ import annotations

import cv2
import numpy as np


def value_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth value noise: random values on a grid of ``cell`` pixels, bicubic-upsampled."""
    gh = max(2, int(np.ceil(h / max(cell, 1.0))) + 2)
    gw = max(2, int(np.ceil(w / max(cell, 1.0))) + 2)
    grid = rng.random((gh, gw), dtype=np.float32)
    big = cv2.resize(grid, (int((gw - 1) * cell) + 1, int((gh - 1) * cell) + 1),
                     interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(big[:h, :w])


def fractal_noise(
    rng: np.random.Generator, h: int, w: int, cell: float = 64.0, octaves: int = 4,
    persistence: float = 0.5,
) -> np.ndarray:
    """Sum of ``octaves`` value-noise layers (cell halves per octave), normalised to [0, 1]."""
    out = np.zeros((h, w), np.float32)
    amp = 1.0
    for _ in range(octaves):
        out += amp * value_noise(rng, h, w, cell)
        amp *= persistence
        cell = max(cell / 2.0, 1.0)
    return normalise(out)


def normalise(a: np.ndarray) -> np.ndarray:
    """Rescale an array to [0, 1] (float32)."""
    lo, hi = float(a.min()), float(a.max())
    return ((a - lo) / (hi - lo + 1e-6)).astype(np.float32)


def ridges(
    rng: np.random.Generator, h: int, w: int, cell: float, width: float = 0.04
) -> np.ndarray:
    """Thin branching lines (vessel-like): where a smooth noise field crosses 0.5."""
    n = fractal_noise(rng, h, w, cell, octaves=3, persistence=0.45)
    return np.clip(1.0 - np.abs(n - 0.5) / width, 0.0, 1.0).astype(np.float32)


def streaks(
    rng: np.random.Generator, h: int, w: int, length: float, angle_deg: float
) -> np.ndarray:
    """Anisotropic noise (fibres): noise stretched ``length`` times along ``angle_deg``."""
    side = int(np.hypot(h, w)) + 4
    base = fractal_noise(rng, side, max(8, int(side / length)), cell=6.0, octaves=3)
    base = cv2.resize(base, (side, side), interpolation=cv2.INTER_LINEAR)
    rot = cv2.getRotationMatrix2D((side / 2, side / 2), angle_deg, 1.0)
    base = cv2.warpAffine(base, rot, (side, side), borderMode=cv2.BORDER_REFLECT)
    y0, x0 = (side - h) // 2, (side - w) // 2
    return normalise(base[y0:y0 + h, x0:x0 + w])


def blobs(rng: np.random.Generator, h: int, w: int, count: int, rmin: float, rmax: float,
          blur: float = 1.5) -> np.ndarray:
    """Sparse soft elliptical spots (for specular glints, lobules, nodules), in [0, 1]."""
    out = np.zeros((h, w), np.float32)
    xs = rng.uniform(0, w, count)
    ys = rng.uniform(0, h, count)
    ra = rng.uniform(rmin, rmax, count)
    rb = ra * rng.uniform(0.3, 1.0, count)
    ang = rng.uniform(0, 180, count)
    val = rng.uniform(0.5, 1.0, count)
    for x, y, a, b, t, v in zip(xs, ys, ra, rb, ang, val, strict=True):
        cv2.ellipse(out, (int(x), int(y)), (max(1, int(a)), max(1, int(b))), float(t), 0, 360,
                    float(v), -1, cv2.LINE_AA)
    if blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    return np.clip(out, 0, 1)
