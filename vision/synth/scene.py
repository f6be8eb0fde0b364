"""Shared machinery of the synthetic scenes: render resolution, camera, per-frame output.

A scene renders at a reduced *render* resolution (at most 640 px wide) and upsamples to
the requested output size: the pixels with bilinear, the label map with nearest, from the
same geometry, so masks stay consistent with the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from vision.errors import VisionError

#: Widest render resolution; larger outputs are upsampled (keeps 720p at ~30 ms/frame).
MAX_RENDER_WIDTH = 640


@dataclass
class SynthFrame:
    """One rendered frame: ``rgb`` (H, W, 3) uint8 RGB, ``mask`` (H, W) uint8 class ids."""

    rgb: np.ndarray
    mask: np.ndarray
    tools: list[str] = field(default_factory=list)  # tool names visible (vision.labels.TOOLS)
    info: dict = field(default_factory=dict)
    classes: list[int] = field(default_factory=list)  # class ids with >= 1 pixel in ``mask``


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    """Validate an output (width, height); both even (H.264 yuv420p) and within 64..3840."""
    try:
        w, h = int(size[0]), int(size[1])
    except (TypeError, ValueError, IndexError) as exc:
        raise VisionError(f"bad frame size {size!r}: expected (width, height)") from exc
    if not (64 <= w <= 3840 and 64 <= h <= 2160):
        raise VisionError(f"frame size {w}x{h} out of range (64x64 .. 3840x2160)")
    if w % 2 or h % 2:
        raise VisionError(f"frame size {w}x{h} must be even in both dimensions (H.264 yuv420p)")
    return w, h


def render_size(size: tuple[int, int]) -> tuple[int, int]:
    """Render resolution for an output size: same aspect, at most MAX_RENDER_WIDTH wide."""
    w, h = size
    if w <= MAX_RENDER_WIDTH:
        return w, h
    f = MAX_RENDER_WIDTH / w
    return MAX_RENDER_WIDTH, max(2, int(round(h * f)))


def smoothstep(x: float | np.ndarray) -> float | np.ndarray:
    """Cubic ease 0 -> 1 on [0, 1] (clamped)."""
    if isinstance(x, np.ndarray):
        x = np.clip(x, 0.0, 1.0)
    else:
        x = min(max(float(x), 0.0), 1.0)
    return x * x * (3 - 2 * x)


def jitter_track(rng: np.random.Generator, n: int, fps: float) -> np.ndarray:
    """(n, 3) camera shake (dx, dy, droll): smoothed random walk + small high-frequency tremor."""
    n_out = max(n, 1)
    n = max(n_out, int(8 * fps) + 8)  # the smoothing kernels must fit in the track
    walk = np.cumsum(rng.normal(0, 1, (n, 3)), axis=0)
    k = max(3, int(fps * 0.6)) | 1
    ker = np.ones(k) / k
    smooth = np.stack([np.convolve(walk[:, i], ker, mode="same") for i in range(3)], 1)
    smooth -= np.stack([np.convolve(smooth[:, i], np.ones(max(3, int(fps * 4)) | 1) /
                                    (max(3, int(fps * 4)) | 1), mode="same") for i in range(3)], 1)
    tremor = rng.normal(0, 0.25, (n, 3))
    out = smooth * 0.35 + tremor
    out[:, 2] *= 0.004
    return out[:n_out].astype(np.float32)


class Camera:
    """Maps view pixels to world pixels: world = centre + zoom * R(roll) * (view - view_centre).

    ``maps`` also adds a smooth deformation field (breathing) given in view pixels.
    """

    def __init__(self, view_size: tuple[int, int]):
        self.vw, self.vh = view_size
        gy, gx = np.mgrid[0:self.vh, 0:self.vw].astype(np.float32)
        self.gx = gx - (self.vw - 1) / 2.0
        self.gy = gy - (self.vh - 1) / 2.0

    def maps(self, centre: tuple[float, float], zoom: float, roll: float,
             deform: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """cv2.remap maps (float32) from view to world pixels."""
        c, s = np.float32(np.cos(roll) * zoom), np.float32(np.sin(roll) * zoom)
        mx = c * self.gx - s * self.gy + np.float32(centre[0])
        my = s * self.gx + c * self.gy + np.float32(centre[1])
        if deform is not None:
            mx += deform[0]
            my += deform[1]
        return mx, my

    def to_view(self, pt: tuple[float, float], centre: tuple[float, float], zoom: float,
                roll: float) -> tuple[float, float]:
        """World pixel -> view pixel (inverse of ``maps`` without deformation)."""
        dx, dy = (pt[0] - centre[0]) / zoom, (pt[1] - centre[1]) / zoom
        c, s = np.cos(-roll), np.sin(-roll)
        return (c * dx - s * dy + (self.vw - 1) / 2.0, s * dx + c * dy + (self.vh - 1) / 2.0)


def upsample(rgb: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Resize render-resolution outputs to ``size``: pixels bilinear, labels nearest."""
    w, h = size
    if rgb.shape[1] == w and rgb.shape[0] == h:
        return rgb, mask
    return (cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR),
            cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST))


def present_classes(lab_render: np.ndarray, lab_out: np.ndarray, n_classes: int) -> list[int]:
    """Class ids (< n_classes) present in the output mask.

    When the output is an exact integer upscale of the render (nearest), both hold the
    same set, so the smaller map is counted.
    """
    hr, wr = lab_render.shape
    ho, wo = lab_out.shape
    exact = ho % hr == 0 and wo % wr == 0 and ho // hr == wo // wr
    src = lab_render if exact else lab_out
    counts = np.bincount(src.ravel(), minlength=256)[:n_classes]
    return [int(c) for c in np.flatnonzero(counts)]


def gather(tex_flat: np.ndarray, label: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """RGB image whose pixel (y, x) is texture ``lut[label[y, x]]`` at (y, x).

    ``tex_flat`` is (n_textures * H * W, 3); ``lut`` maps class id -> texture index.
    """
    h, w = label.shape
    if len(tex_flat) >= 2 ** 31:
        raise ValueError("texture stack too large for int32 indexing")
    offs = (lut.astype(np.int64) * (h * w)).astype(np.int32)
    idx = offs[label]
    idx += _ramp(h, w)
    return np.take(tex_flat, idx.ravel(), axis=0).reshape(h, w, 3)


_RAMPS: dict[tuple[int, int], np.ndarray] = {}


def _ramp(h: int, w: int) -> np.ndarray:
    """Cached (h, w) int32 array of flat pixel indices."""
    r = _RAMPS.get((h, w))
    if r is None:
        r = _RAMPS[(h, w)] = np.arange(h * w, dtype=np.int32).reshape(h, w)
    return r
