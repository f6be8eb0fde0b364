"""Privacy for recordings: find out-of-body frames (the camera outside the patient) and blur them.

When the endoscope is pulled out of the patient it films the operating room: faces, screens,
name badges. With ``RunConfig.blur_out_of_body`` the copilot blurs such frames in what it
records (annotated.mp4, the UI stream), so the people in the room cannot be recognised.

The decision, per frame, comes from

- the vision model's region head when it is sure (``region == "out_of_body"`` with a score
  >= ``model_threshold``, or another region with that score: inside), else
- a cheap colour heuristic (``colour_fractions``, on a 64 px wide copy, about 0.2 ms per
  frame): inside the body most lit pixels are tissue-coloured (red, pink, orange, yellow
  fat: hue 330-50 degrees, saturated) and the rest is pale (smoke, bile, specular light,
  metal), while an operating room shows blue / green drapes, gowns and walls and grey / white
  surfaces. ``out_of_body_score`` = (1 + cool + pale / 2 - tissue) / 2, clipped to 0-1, with
  the fractions of lit pixels; >= 0.5 is outside. On the synthetic feeds the in-body maximum
  is 0.39 (a smoky frame with the pale gallbladder); a portrait photo scores 0.6, drapes and
  sky scenes 0.6-0.7.

``OutOfBodyGate`` adds hysteresis that fails safe: one out-of-body frame starts the blur at
once, and it stops only after ``clear_frames`` consecutive inside frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

#: Score (1 - tissue fraction) above which a frame counts as outside the body.
DEFAULT_THRESHOLD = 0.5
#: Region-head score above which the vision model's region decides alone.
MODEL_THRESHOLD = 0.8
OUT_OF_BODY = "out_of_body"


def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    a = np.asarray(rgb)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {a.shape}")
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    return a


def colour_fractions(rgb: np.ndarray, width: int = 64) -> dict[str, float]:
    """Fractions (0-1) of the lit pixels (V >= 15 %) by colour class.

    ``tissue``: hue in [330, 360) or [0, 50] degrees, saturation >= 0.25; ``cool``: hue in
    (80, 280) degrees, saturation >= 0.16 (drapes, gowns, walls, screens); ``pale``:
    saturation < 0.16 (white / grey). A frame with no lit pixel (lens covered, camera off)
    counts as all tissue (nothing to hide).
    """
    a = _as_rgb(rgb)
    h, w = a.shape[:2]
    if w > width:
        a = cv2.resize(a, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2HSV)  # H in 0-179, S, V 0-255
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    lit = val >= 38
    n = int(lit.sum())
    if n == 0:
        return {"tissue": 1.0, "cool": 0.0, "pale": 0.0}
    tissue = lit & ((hue <= 25) | (hue >= 165)) & (sat >= 64)
    cool = lit & (hue > 40) & (hue < 140) & (sat >= 40)
    pale = lit & (sat < 40)
    return {"tissue": float(tissue.sum()) / n, "cool": float(cool.sum()) / n,
            "pale": float(pale.sum()) / n}


def out_of_body_score(rgb: np.ndarray) -> float:
    """0 (inside the patient) .. 1 (operating room); >= 0.5 means outside (see module doc)."""
    f = colour_fractions(rgb)
    return float(np.clip((1.0 + f["cool"] + 0.5 * f["pale"] - f["tissue"]) / 2.0, 0.0, 1.0))


def is_out_of_body(rgb: np.ndarray, region: str | None = None, region_score: float = 0.0,
                   threshold: float = DEFAULT_THRESHOLD,
                   model_threshold: float = MODEL_THRESHOLD) -> bool:
    """Decide one frame: the vision model's region when sure, else the colour heuristic."""
    if region is not None and region_score >= model_threshold:
        return region == OUT_OF_BODY
    return out_of_body_score(rgb) >= threshold


def blur_out_of_body(rgb: np.ndarray, cell: int = 24) -> np.ndarray:
    """A copy of ``rgb`` no one can be recognised in: pixelated to ``cell`` px blocks, then
    Gaussian-blurred (same size and dtype; faces, badges and screens become colour blobs)."""
    a = _as_rgb(rgb)
    h, w = a.shape[:2]
    sw, sh = max(1, w // cell), max(1, h // cell)
    small = cv2.resize(a, (sw, sh), interpolation=cv2.INTER_AREA)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    k = max(3, (cell // 2) | 1)
    if w >= k and h >= k:
        out = cv2.GaussianBlur(out, (k, k), 0)
    return out


@dataclass
class OutOfBodyGate:
    """Per-stream decision with fail-safe hysteresis; ``apply`` blurs when outside.

    Blurring starts on the first out-of-body frame and stops after ``clear_frames``
    consecutive inside frames. ``blurred`` counts the frames blurred so far.
    """

    threshold: float = DEFAULT_THRESHOLD
    model_threshold: float = MODEL_THRESHOLD
    clear_frames: int = 5
    outside: bool = False
    blurred: int = 0
    _inside_run: int = field(default=0, repr=False)

    def update(self, rgb: np.ndarray, region: str | None = None,
               region_score: float = 0.0) -> bool:
        """Feed one frame (and the model's region if known); True while blurring."""
        if is_out_of_body(rgb, region, region_score, self.threshold, self.model_threshold):
            self.outside = True
            self._inside_run = 0
        elif self.outside:
            self._inside_run += 1
            if self._inside_run >= self.clear_frames:
                self.outside = False
                self._inside_run = 0
        return self.outside

    def apply(self, rgb: np.ndarray, region: str | None = None,
              region_score: float = 0.0) -> np.ndarray:
        """``rgb`` itself when inside, a blurred copy when outside (see ``update``)."""
        if self.update(rgb, region, region_score):
            self.blurred += 1
            return blur_out_of_body(rgb)
        return rgb
