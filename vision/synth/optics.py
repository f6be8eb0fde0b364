"""Camera optics shared by both scenes: field-of-view stop, vignetting, smoke, glints.

All functions work on render-resolution uint8 / float32 images and are cheap enough to run
once per frame (a few OpenCV calls each).
"""

from __future__ import annotations

import cv2
import numpy as np


def fov_mask(h: int, w: int, kind: str = "circle", radius: float = 0.62) -> np.ndarray:
    """Boolean (h, w) mask of the scope's field of view.

    ``circle``: a disc whose radius is ``radius`` x half the frame diagonal, clipped by the
    frame (the usual laparoscope look: dark corners); ``octagon``: a cut-corner rectangle
    (as shown by many endoscopy processors).
    """
    m = np.zeros((h, w), np.uint8)
    cx, cy = w / 2.0, h / 2.0
    if kind == "octagon":
        c = 0.13 * min(h, w)
        pts = np.array([[c, 0], [w - c, 0], [w, c], [w, h - c], [w - c, h], [c, h], [0, h - c],
                        [0, c]], np.float32)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1, cv2.LINE_AA)
    else:
        r = min(radius, 0.78) * np.hypot(w, h) / 2.0
        cv2.circle(m, (int(round(cx)), int(round(cy))), int(round(r)), 1, -1, cv2.LINE_8)
    return m.astype(bool)


def vignette(h: int, w: int, strength: float = 0.55, power: float = 2.2) -> np.ndarray:
    """Multiplicative radial fall-off (float32 (h, w), 1 at the centre)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2)) / np.sqrt(2)
    return (1.0 - strength * np.clip(r, 0, 1) ** power).astype(np.float32)


def apply_gain(rgb: np.ndarray, gain_u8: np.ndarray) -> np.ndarray:
    """``rgb * gain / 128`` for a uint8 gain map (HxW or HxWx3), in uint8 (saturating)."""
    if gain_u8.ndim == 2:
        gain_u8 = cv2.merge([gain_u8, gain_u8, gain_u8])
    return cv2.multiply(rgb, gain_u8, scale=1.0 / 128.0)


def add_smoke(rgb: np.ndarray, field: np.ndarray, density: float) -> np.ndarray:
    """Blend a grey-white haze into ``rgb`` where the smoke ``field`` (float32 [0,1]) is thick."""
    if density <= 0.01:
        return rgb
    a = np.clip(field * np.float32(density), 0.0, 0.85).astype(np.float32)
    haze = np.full_like(rgb, 205)
    return cv2.blendLinear(rgb, haze, 1.0 - a, a)


def add_glints(rgb: np.ndarray, spec: np.ndarray) -> np.ndarray:
    """Add white specular highlights (``spec`` uint8 (h, w), 0-255) saturating at white."""
    return cv2.add(rgb, cv2.merge([spec, spec, spec]))
