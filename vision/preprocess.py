"""Frame preprocessing: field-of-view crop, resize, layout conversion.

Normalisation (mean / std) happens inside the network, so the runtime input is float32
NCHW RGB in 0..255. Everything here is a few cheap OpenCV / NumPy calls on one frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision.errors import VisionError


@dataclass(frozen=True)
class CropBox:
    """Field-of-view box in frame pixels: x0, y0 inclusive, x1, y1 exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        """Box width in pixels."""
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        """Box height in pixels."""
        return self.y1 - self.y0


def find_fov(frame_rgb: np.ndarray, threshold: int = 20, step: int = 8,
             min_fraction: float = 0.5) -> CropBox:
    """Bounding box of the lit field of view (endoscope circle / letterbox removed).

    Looks at every ``step``-th pixel; rows and columns whose brightest sampled pixel is at
    most ``threshold`` (0..255) count as black border. Falls back to the full frame when the
    lit area is smaller than ``min_fraction`` of either side (a dark scene, not a border).
    """
    h, w = frame_rgb.shape[:2]
    small = frame_rgb[::step, ::step].max(axis=2)
    rows = np.flatnonzero(small.max(axis=1) > threshold)
    cols = np.flatnonzero(small.max(axis=0) > threshold)
    if rows.size == 0 or cols.size == 0:
        return CropBox(0, 0, w, h)
    y0, y1 = int(rows[0]) * step, min(h, (int(rows[-1]) + 1) * step)
    x0, x1 = int(cols[0]) * step, min(w, (int(cols[-1]) + 1) * step)
    if (x1 - x0) < min_fraction * w or (y1 - y0) < min_fraction * h:
        return CropBox(0, 0, w, h)
    return CropBox(x0, y0, x1, y1)


def check_frame(frame_rgb: np.ndarray) -> None:
    """Raise VisionError unless ``frame_rgb`` is an [H, W, 3] uint8 array."""
    if not isinstance(frame_rgb, np.ndarray) or frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
        shape = getattr(frame_rgb, "shape", None)
        raise VisionError(f"expected an RGB frame of shape [H, W, 3], got {shape}")
    if frame_rgb.dtype != np.uint8:
        raise VisionError(f"expected a uint8 frame, got {frame_rgb.dtype}")
    if frame_rgb.shape[0] < 8 or frame_rgb.shape[1] < 8:
        raise VisionError(f"frame too small: {frame_rgb.shape[1]}x{frame_rgb.shape[0]}")


def resize_rgb(frame_rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an RGB uint8 frame to ``size`` = (width, height); area filter when shrinking."""
    h, w = frame_rgb.shape[:2]
    if (w, h) == tuple(size):
        return frame_rgb
    interp = cv2.INTER_AREA if w > size[0] and h > size[1] else cv2.INTER_LINEAR
    return cv2.resize(frame_rgb, tuple(size), interpolation=interp)


def to_input(image_rgb: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8 -> contiguous float32 [1, 3, H, W] in 0..255."""
    return np.ascontiguousarray(image_rgb.transpose(2, 0, 1)[None], dtype=np.float32)


def preprocess(frame_rgb: np.ndarray, size: tuple[int, int], fov_crop: bool = True,
               box: CropBox | None = None) -> tuple[np.ndarray, CropBox]:
    """Crop the field of view, resize to ``size`` (w, h), return the model input and the box.

    ``box``: a field-of-view box found on an earlier frame of the same video (skips the
    search); ignored when it does not fit the frame.
    """
    check_frame(frame_rgb)
    h, w = frame_rgb.shape[:2]
    if box is None or box.x1 > w or box.y1 > h:
        box = find_fov(frame_rgb) if fov_crop else CropBox(0, 0, w, h)
    crop = frame_rgb[box.y0:box.y1, box.x0:box.x1]
    return to_input(resize_rgb(crop, size)), box
