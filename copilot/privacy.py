"""Privacy by default: nothing that is not the inside of the patient leaves the copilot.

``Anonymiser`` runs once per decoded frame, on the video path before any consumer sees the
frame (it never waits for the vision stage):

1. **Burned-in text**: the endoscope's field of view (FOV) is found on a 1/8 sampling grid
   (lit = HSV value > ``FOV_LIT``; thin strokes removed by a 3x3 opening; the convex hull of
   the largest lit region, one grid step wider: the picture's edge lies up to a step past
   the outermost lit sample). ``vision.preprocess.find_fov`` (the crop's bounding box) cannot
   serve here: burned-in text is lit, so its box takes the text in. Everything outside the
   hull is blacked out in place, so the names and dates a tower prints around the circle
   reach neither the outputs nor the analysis. The hull is kept while it fits the lit samples
   (and a new hull overlaps it, IoU >= ``FOV_KEEP_IOU``): a stable border, rebuilt only when
   the view changes. A frame whose FOV cannot be found (largest lit area < ``MIN_FOV`` of
   the frame) is hidden.
2. **Out of body**: a colour score on the FOV's grid samples (``out_of_body_score``: inside the
   body lit pixels are tissue-coloured; an operating room is blue / green / grey / white) >=
   ``threshold`` hides the frame. The vision stage's verdict, when fresh (its frame within
   ``fresh_s`` of media time), can hide more: its region head saying ``out_of_body`` or its
   off-label flag with a low in-domain score, either confirmed by a colour score that leans
   outside (>= ``VISION_CONFIRM``); it never un-hides a frame.
3. **Hysteresis that errs on hiding**: one hidden frame starts a span at once; it ends only
   after ``clear_s`` of media time (at least ``clear_frames`` frames) judged inside.

Hidden frames are replaced by a grey "out of body" frame (``hidden_frame``: no pixel of the
original survives) where anything is written or shown. Each span is reported once to
``on_span(HiddenSpan)`` when it ends (``finish`` closes an open one) and ``on_change(hidden,
media_t_s, reason)`` when the state flips, so the app can log it and pause the brain.

Cost: about 0.5 CPU ms per 854x480 frame on the loaded 2-core CI machine (check and border;
``benchmarks/bench_privacy``).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

#: Colour score (0 inside .. 1 operating room) at which a frame is out of body: the dev
#: in-body maximum (0.34) plus a 0.1 margin, rounded up (benchmarks/bench_privacy.py; dev:
#: real clips of patient VID47, synthetic feeds, privacy feeds and close-up probes 0-4).
DEFAULT_THRESHOLD = 0.45
#: A fresh vision verdict of "outside" hides a frame whose colour score is at least this
#: (the dev in-body maximum, rounded up).
VISION_CONFIRM = 0.35
#: Region-head score at which the vision model's ``out_of_body`` counts.
MODEL_THRESHOLD = 0.8
#: In-domain score (0-1) below which an off-label vision verdict counts as outside.
IN_DOMAIN_MIN = 0.2
#: A grid sample is lit (part of the picture) when its HSV value exceeds this (0-255).
FOV_LIT = 20
#: Smallest field of view (fraction of the frame) that counts as found.
MIN_FOV = 0.2
#: A new hull replaces the kept one only when their IoU falls below this.
FOV_KEEP_IOU = 0.9
#: Hull covering at least this fraction of the grid: the whole frame is the picture.
FULL_FOV = 0.97
#: The kept hull fits a frame when at least this fraction of it is lit ...
HULL_LIT = 0.75
#: ... and at least this fraction of its rim (a hull too big for the picture has dark rims)
RIM_LIT = 0.6
#: ... and the component search runs again at least this often (frames).
RESEARCH_FRAMES = 10
OUT_OF_BODY = "out_of_body"
REASON_OUT = "out of body"
REASON_NO_FOV = "no field of view"
GREY = 96
_K3 = np.ones((3, 3), np.uint8)
log = logging.getLogger(__name__)


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


def _grid(rgb: np.ndarray, step: int) -> np.ndarray:
    """Every ``step``-th pixel (nearest sampling, contiguous)."""
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (max(1, w // step), max(1, h // step)),
                      interpolation=cv2.INTER_NEAREST)


def _score(f: dict[str, float]) -> float:
    return float(np.clip((1.0 + f["cool"] + 0.5 * f["pale"] - f["tissue"]) / 2.0, 0.0, 1.0))


def _class_lut() -> np.ndarray:
    """(hue 0-179, saturation 0-255) -> 0 other, 1 tissue, 2 cool, 3 pale (OpenCV HSV)."""
    hue = np.arange(256)[:, None]
    sat = np.arange(256)[None, :]
    lut = np.zeros((256, 256), np.uint8)
    lut[((hue <= 25) | (hue >= 165)) & (sat >= 64)] = 1
    lut[(hue > 40) & (hue < 140) & (sat >= 40)] = 2
    lut[np.broadcast_to(sat < 40, lut.shape)] = 3
    return lut


_CLASS_LUT = _class_lut()


def _score_counts(counts: np.ndarray) -> float:
    """The colour score from lit-sample counts per class (``_class_lut`` codes)."""
    n = int(counts.sum())
    if n == 0:
        return 0.0
    return _score({"tissue": counts[1] / n, "cool": counts[2] / n, "pale": counts[3] / n})


def _largest_hull(lit: np.ndarray) -> tuple[np.ndarray, float] | None:
    """(filled convex hull of the largest lit component (uint8 0/1), its fraction of the
    grid), or None when nothing is lit."""
    contours, _ = cv2.findContours(lit, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    biggest = max(contours, key=lambda c: (cv2.contourArea(c), len(c)))
    hull = np.zeros_like(lit)
    cv2.fillConvexPoly(hull, cv2.convexHull(biggest), 1)
    return hull, float(np.count_nonzero(hull)) / hull.size


def _bands(mask: np.ndarray) -> list[tuple[int, int, int, int, np.ndarray]]:
    """Rectangles (y0, y1, x0, x1, 3-channel mask part) that hold every zero of a convex
    0/255 ``mask``: the side bands when some columns are wholly inside (a circle cut by the
    frame), the top / bottom bands when some rows are, else the whole frame."""
    h, w = mask.shape
    cols = np.flatnonzero(mask.min(axis=0) == 255)
    rows = np.flatnonzero(mask.min(axis=1) == 255)
    if cols.size:
        rects = [(0, h, 0, int(cols[0])), (0, h, int(cols[-1]) + 1, w)]
    elif rows.size:
        rects = [(0, int(rows[0]), 0, w), (int(rows[-1]) + 1, h, 0, w)]
    else:
        rects = [(0, h, 0, w)]
    return [(y0, y1, x0, x1, cv2.merge([np.ascontiguousarray(mask[y0:y1, x0:x1])] * 3))
            for y0, y1, x0, x1 in rects if y1 > y0 and x1 > x0]


def colour_fractions(rgb: np.ndarray, width: int = 64) -> dict[str, float]:
    """Fractions (0-1) of the lit pixels (V >= 15 %) by colour class.

    ``tissue``: hue in [330, 360) or [0, 50] degrees, saturation >= 0.25; ``cool``: hue in
    (80, 280) degrees, saturation >= 0.16 (drapes, gowns, walls, screens); ``pale``:
    saturation < 0.16 (white / grey). No lit pixel counts as all tissue.
    """
    a = _as_rgb(rgb)
    h, w = a.shape[:2]
    if w > width:
        a = cv2.resize(a, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2HSV)
    counts = np.bincount(_CLASS_LUT[hsv[..., 0], hsv[..., 1]][hsv[..., 2] >= 38], minlength=4)
    n = int(counts.sum())
    if n == 0:
        return {"tissue": 1.0, "cool": 0.0, "pale": 0.0}
    return {"tissue": counts[1] / n, "cool": counts[2] / n, "pale": counts[3] / n}


def out_of_body_score(rgb: np.ndarray) -> float:
    """0 (inside the patient) .. 1 (operating room): (1 + cool + pale / 2 - tissue) / 2."""
    return _score(colour_fractions(rgb))


_HIDDEN_CACHE: dict[tuple[int, int], np.ndarray] = {}


def hidden_frame(width: int, height: int) -> np.ndarray:
    """A new grey frame saying "out of body - hidden" (what replaces a hidden frame)."""
    key = (width, height)
    img = _HIDDEN_CACHE.get(key)
    if img is None:
        img = np.full((height, width, 3), GREY, np.uint8)
        scale = max(0.4, min(width, height) / 400)
        for k, line in enumerate(("out of body", "hidden for privacy")):
            (tw, th), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
            org = ((width - tw) // 2, height // 2 - th + k * int(th * 2.2))
            cv2.putText(img, line, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (200, 200, 200), 2,
                        cv2.LINE_AA)
        _HIDDEN_CACHE[key] = img
    return img.copy()


@dataclass(frozen=True)
class FrameCheck:
    """One frame's own verdict: ``score`` (colour, 0-1), ``fov`` (fraction of the frame)."""

    outside: bool
    reason: str
    score: float
    fov: float


@dataclass
class HiddenSpan:
    """Frames hidden from ``start_s`` to ``end_s`` (media s, end exclusive) and why."""

    start_s: float
    end_s: float
    reason: str
    frames: int = 0
    causes: dict[str, int] = field(default_factory=dict)

    def as_record(self) -> dict[str, object]:
        """The session-log form (times rounded to ms)."""
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "reason": self.reason, "frames": self.frames, "causes": dict(self.causes)}


class Anonymiser:
    """Per-stream privacy filter (see the module doc). Thread-safe.

    ``process(frame_id, media_t_s, rgb)`` (decode thread) blacks out what lies outside the FOV
    in place and decides whether the frame is hidden; ``is_hidden(frame_id)`` answers for the
    other threads; ``render`` gives what may be shown.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, clear_s: float = 0.4,
                 clear_frames: int = 3, fresh_s: float = 0.6, step: int = 8,
                 on_span: Callable[[HiddenSpan], None] | None = None,
                 on_change: Callable[[bool, float, str], None] | None = None) -> None:
        self.threshold = threshold
        self.clear_s = clear_s
        self.clear_frames = clear_frames
        self.fresh_s = fresh_s
        self.step = step
        self.on_span = on_span
        self.on_change = on_change
        self.frames = 0
        self.hidden = 0  # frames hidden so far
        self.spans: list[HiddenSpan] = []
        self._lock = threading.Lock()
        self._decisions: OrderedDict[int, bool] = OrderedDict()
        self._open: HiddenSpan | None = None
        self._clear_since: float | None = None
        self._clear_n = 0
        self._last_t = 0.0
        self._vision: tuple[float, str] | None = None  # (media s, reason) of an "outside" vote
        self._hull: np.ndarray | None = None  # kept hull on the grid (uint8 0/1)
        self._mask: np.ndarray | None = None  # full-size 0/255 mask (None: all inside)
        self._bands: list[tuple[int, int, int, int, np.ndarray]] = []  # where its zeros are
        self._mask_shape: tuple[int, int] | None = None
        self._hull_n = 0
        self._rim: np.ndarray | None = None
        self._rim_n = 1
        self._since_search = 0

    # ---------------------------------------------------------------- per frame
    def check(self, rgb: np.ndarray) -> FrameCheck:
        """The frame's own verdict (no hysteresis); also updates the kept FOV hull.

        The component search runs when the kept hull no longer fits the lit samples (lit
        area outside it, or under ``HULL_LIT`` of it lit) and every ``RESEARCH_FRAMES``."""
        a = _as_rgb(rgb)
        small = _grid(a, self.step)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        val = hsv[..., 2]
        opened = cv2.morphologyEx((val > FOV_LIT).view(np.uint8), cv2.MORPH_OPEN, _K3)
        hull = self._hull
        fits = (hull is not None and self._mask is not None  # a full-frame hull: search
                and self._mask_shape == a.shape[:2] and self._since_search < RESEARCH_FRAMES
                and np.count_nonzero(opened > hull) <= 0.02 * opened.size
                and np.count_nonzero(opened & hull) >= HULL_LIT * self._hull_n
                and np.count_nonzero(opened & self._rim) >= RIM_LIT * self._rim_n)
        if fits:
            self._since_search += 1
            fov = self._hull_n / opened.size
        else:
            found = _largest_hull(opened)
            if found is None:
                return FrameCheck(True, REASON_NO_FOV, 0.0, 0.0)
            hull, fov = found
            if fov < MIN_FOV:
                return FrameCheck(True, REASON_NO_FOV, 0.0, fov)
            self._keep_hull(hull, a.shape[:2], fov)
            hull = self._hull
        lit = (val >= 38) & hull.view(bool)
        counts = np.bincount(_CLASS_LUT[hsv[..., 0], hsv[..., 1]][lit], minlength=4)
        score = _score_counts(counts)
        return FrameCheck(score >= self.threshold, REASON_OUT, score, fov)

    def _keep_hull(self, hull: np.ndarray, shape: tuple[int, int], fov: float) -> None:
        self._since_search = 0
        if self._hull is not None and self._mask_shape == shape:
            inter = np.count_nonzero(hull & self._hull)
            union = np.count_nonzero(hull | self._hull)
            if union and inter / union >= FOV_KEEP_IOU:
                return
        self._hull, self._mask_shape = hull, shape
        self._hull_n = int(np.count_nonzero(hull))
        self._rim = hull - cv2.erode(hull, _K3, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        self._rim_n = max(1, int(np.count_nonzero(self._rim)))
        if fov >= FULL_FOV:
            self._mask = None
            return
        h, w = shape
        pts = cv2.findNonZero(hull)
        big = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(big, cv2.convexHull(pts * self.step), 255)
        # the picture's true edge lies up to one grid step beyond the outermost lit sample:
        # keep that step (cutting into the picture changes what the vision model sees)
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * self.step + 1,) * 2)
        self._mask = cv2.dilate(big, k)
        self._bands = _bands(self._mask)

    def blackout(self, rgb: np.ndarray) -> np.ndarray:
        """Black out what lies outside the kept FOV, in place (a copy when read-only)."""
        m = self._mask
        if m is not None and m.shape == rgb.shape[:2]:
            if not rgb.flags.writeable:
                rgb = rgb.copy()
            for y0, y1, x0, x1, part in self._bands:
                view = rgb[y0:y1, x0:x1]
                np.bitwise_and(view, part, out=view)
        return rgb

    def note_vision(self, media_t_s: float, region: str | None = None,
                    region_score: float = 0.0, in_domain: float | None = None,
                    off_label: bool | None = None) -> None:
        """The vision stage's verdict on its frame at ``media_t_s`` (any thread)."""
        reason = ""
        if region == OUT_OF_BODY and region_score >= MODEL_THRESHOLD:
            reason = "vision: out of body"
        elif off_label and in_domain is not None and in_domain < IN_DOMAIN_MIN:
            reason = f"vision: off-label (in-domain {in_domain:.2f})"
        with self._lock:
            self._vision = (float(media_t_s), reason) if reason else None

    def process(self, frame_id: int, media_t_s: float, rgb: np.ndarray) -> np.ndarray:
        """Check a decoded frame, black out its border in place, record whether it is hidden.

        Returns ``rgb`` with the border blacked out (in place unless read-only);
        ``is_hidden(frame_id)`` tells the other threads.
        """
        try:
            c = self.check(rgb)
        except Exception as exc:  # noqa: BLE001 - a frame that cannot be checked is hidden
            log.warning("privacy check failed on frame %s (hidden): %s", frame_id, exc)
            c = FrameCheck(True, REASON_NO_FOV, 0.0, 0.0)
        t = float(media_t_s)
        outside, cause = c.outside, c.reason if c.outside else ""
        with self._lock:
            v = self._vision
        if not outside and v is not None and abs(t - v[0]) <= self.fresh_s \
                and c.score >= VISION_CONFIRM:
            outside, cause = True, v[1]
        rgb = self.blackout(rgb)
        with self._lock:
            hidden = self._step(t, outside, cause)
            self._decisions[frame_id] = hidden
            while len(self._decisions) > 4096:
                self._decisions.popitem(last=False)
            self.frames += 1
            self.hidden += hidden
        return rgb

    def _step(self, t: float, outside: bool, cause: str) -> bool:
        """Hysteresis (lock held): True while the frame at ``t`` is hidden."""
        dt = max(0.0, t - self._last_t) if self.frames else 0.0
        self._last_t = t
        span = self._open
        if outside:
            self._clear_since, self._clear_n = None, 0
            if span is None:
                reason = REASON_NO_FOV if cause == REASON_NO_FOV else REASON_OUT
                span = self._open = HiddenSpan(t, t, reason)
                self._notify(True, t, reason)
            span.causes[cause] = span.causes.get(cause, 0) + 1
        elif span is not None:
            if self._clear_since is None:
                self._clear_since = t
            self._clear_n += 1
            if self._clear_n >= self.clear_frames and t - self._clear_since >= self.clear_s:
                self._close(t)
                return False
        else:
            return False
        span.frames += 1
        span.end_s = t + (dt or 0.04)
        return True

    def _close(self, t: float) -> None:
        span, self._open = self._open, None
        self._clear_since, self._clear_n = None, 0
        if span is None:
            return
        # why, for the record: out of body when any frame was, else no field of view
        span.reason = REASON_OUT if set(span.causes) - {REASON_NO_FOV} else REASON_NO_FOV
        self.spans.append(span)
        if self.on_span is not None:
            self.on_span(span)
        self._notify(False, t, span.reason)

    def _notify(self, hidden: bool, t: float, reason: str) -> None:
        if self.on_change is not None:
            self.on_change(hidden, t, reason)

    def finish(self) -> None:
        """End of the stream: report the open span, if any."""
        with self._lock:
            if self._open is not None:
                self._close(self._open.end_s)

    # ---------------------------------------------------------------- for the consumers
    def is_hidden(self, frame_id: int) -> bool:
        """Was frame ``frame_id`` hidden? (True for a frame not processed: fail safe)."""
        with self._lock:
            return self._decisions.get(frame_id, True)

    @property
    def hiding(self) -> bool:
        """Is a hidden span open now?"""
        return self._open is not None

    def render(self, frame_id: int, rgb: np.ndarray) -> tuple[np.ndarray, bool]:
        """(what may be shown, hidden?): the grey frame for a hidden frame, else ``rgb``."""
        if self.is_hidden(frame_id):
            return hidden_frame(rgb.shape[1], rgb.shape[0]), True
        return rgb, False
