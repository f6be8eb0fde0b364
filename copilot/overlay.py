"""The overlay compositor: draws annotations, alert banners and the status line on frames.

Annotations come in :class:`AnnotationSet` objects that carry the frame id they were computed
from; the compositor always draws the newest set it has onto the newest frame, and marks the
set as stale (with its age in frames and ms) when it is older than ``stale_after`` frames.
Colours are RGB tuples (0-255); all coordinates are frame pixels.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from copilot.messages import VideoFrame

log = logging.getLogger(__name__)

FONT = cv2.FONT_HERSHEY_SIMPLEX
NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (255, 40, 40),
    "green": (40, 220, 60),
    "blue": (60, 110, 255),
    "yellow": (255, 230, 0),
    "white": (255, 255, 255),
    "orange": (255, 150, 0),
    "purple": (180, 60, 255),
    "cyan": (0, 230, 255),
}
LEVEL_COLOURS = {"alert": (220, 30, 30), "warning": (240, 160, 0), "info": (40, 110, 200)}
HEALTH_COLOURS = {"ok": (120, 230, 120), "starting": (200, 200, 200), "stopped": (200, 200, 200)}
BAD_HEALTH = (255, 90, 60)


@dataclass
class LabelMap:
    """A class-id map at model resolution, drawn with ``palette`` (K x 3 RGB) at ``alpha``."""

    classes: np.ndarray  # (h, w) uint8 class ids
    palette: np.ndarray  # (K, 3) uint8; row 0 (background) is not drawn
    alpha: float = 0.35
    _cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False, compare=False)

    def at_size(self, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """(colour image (h, w, 3), foreground mask (h, w) uint8) at frame size, computed once
        per map and size: the same map is drawn on every frame until the next result."""
        hit = self._cache.get((w, h))
        if hit is None:
            # colourise at model resolution, then scale (nearest) to the frame: the palette
            # lookup at frame size cost ~8 ms per result at 720p
            colour = self.palette[self.classes]
            fg = (self.classes > 0).astype(np.uint8)
            if self.classes.shape[:2] != (h, w):
                colour = cv2.resize(colour, (w, h), interpolation=cv2.INTER_NEAREST)
                fg = cv2.resize(fg, (w, h), interpolation=cv2.INTER_NEAREST)
            hit = (colour, fg)
            self._cache.clear()
            self._cache[(w, h)] = hit
        return hit


@dataclass
class Outline:
    """Closed polygons (each N x 2, frame px) drawn in ``colour`` with an optional label."""

    polygons: list[np.ndarray]
    colour: tuple[int, int, int]
    label: str = ""
    thickness: int = 3


@dataclass
class Box:
    """An axis-aligned box (x0, y0, x1, y1) in frame px."""

    xyxy: tuple[float, float, float, float]
    colour: tuple[int, int, int]
    label: str = ""


@dataclass
class Text:
    """A text label at (x, y) frame px (baseline-left)."""

    text: str
    xy: tuple[float, float]
    colour: tuple[int, int, int] = (255, 255, 255)


@dataclass
class Banner:
    """A banner across the top: ``level`` is alert, warning or info."""

    text: str
    level: str = "alert"


@dataclass
class AnnotationSet:
    """Everything one source wants drawn, computed from frame ``frame_id`` at ``t_ns``."""

    source: str
    frame_id: int
    t_ns: int
    label_map: LabelMap | None = None
    items: list[Outline | Box | Text | Banner] = field(default_factory=list)
    caption: str = ""


@dataclass
class Status:
    """What the status line shows: fps (Hz), latency (ms), stage health by name."""

    fps: float = 0.0
    latency_ms: float | None = None
    health: dict[str, str] = field(default_factory=dict)
    extra: str = ""


class AnnotationStore:
    """Newest annotation set per source; written by analysis stages, read by the compositor."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sets: dict[str, AnnotationSet] = {}
        self.hidden: set[str] = set()

    def publish(self, ann: AnnotationSet) -> None:
        """Replace the set of ``ann.source`` if ``ann`` is not older than it."""
        with self._lock:
            old = self._sets.get(ann.source)
            if old is None or ann.frame_id >= old.frame_id:
                self._sets[ann.source] = ann

    def clear(self, source: str) -> None:
        """Forget the set of ``source``."""
        with self._lock:
            self._sets.pop(source, None)

    def current(self) -> list[AnnotationSet]:
        """The newest set of every visible source (sorted by source name)."""
        with self._lock:
            return [self._sets[k] for k in sorted(self._sets) if k not in self.hidden]


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour, th: int = 1):
    cv2.putText(img, text, org, FONT, scale, (0, 0, 0), th + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, FONT, scale, colour, th, cv2.LINE_AA)


@functools.lru_cache(maxsize=512)
def _glyph(ch: str, scale: float, colour: tuple[int, int, int]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One character as drawn by :func:`_text` (dark outline, coloured fill): its pixels'
    row / column offsets from the text origin (baseline left, px), their RGB values, and the
    advance to the next character (px; OpenCV's Hershey text has no kerning)."""
    (w, h), base = cv2.getTextSize(ch, FONT, scale, 1)
    pad = 4
    canvas = np.zeros((h + base + 2 * pad, w + 2 * pad, 3), np.uint8)
    mask = np.zeros(canvas.shape[:2], np.uint8)
    org = (pad, pad + h)
    _text(canvas, ch, org, scale, colour)
    cv2.putText(mask, ch, org, FONT, scale, 255, 3, cv2.LINE_AA)
    r, c = np.nonzero(mask)
    return r - org[1], c - org[0], canvas[r, c], w - 1


@functools.lru_cache(maxsize=256)
def _text_pixels(text: str, scale: float, colour: tuple[int, int, int]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """A string laid out from :func:`_glyph` s, same layout as the glyphs' (offsets from the
    origin, RGB values, advance in px). Cached: status parts such as "decode:ok" repeat."""
    dr, dc, pix = [], [], []
    x = 0
    for ch in text:
        r, c, p, adv = _glyph(ch, scale, colour)
        dr.append(r)
        dc.append(c + x)
        pix.append(p)
        x += adv
    if not dr:
        return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros((0, 3), np.uint8), 0
    return np.concatenate(dr), np.concatenate(dc), np.concatenate(pix), x


class Compositor:
    """Draws annotation sets, banners and the status line onto a copy of the frame."""

    def __init__(self, stale_after: int = 10, status_line: bool = True) -> None:
        self.stale_after = stale_after
        self.status_line = status_line
        self._status_cache: dict[str, Any] | None = None

    def warm_up(self) -> None:
        """Draw once on a small dummy frame: OpenCV initialises its fonts and threads on the
        first call (tens of ms), which would otherwise land on the first real frame."""
        try:
            dummy = VideoFrame(t_ns=0, trace_id="warm-up", media_t_s=0.0, frame_id=0,
                               image=np.zeros((64, 64, 3), np.uint8), fps=30.0)
            self.compose(dummy, [], Status(fps=0.0, health={"warm-up": "ok"}), in_place=True)
        except Exception as exc:  # noqa: BLE001 - a warm-up failure is not a run failure
            log.debug("compositor warm-up failed: %s", exc)

    def compose(
        self,
        frame: VideoFrame,
        sets: list[AnnotationSet],
        status: Status | None = None,
        in_place: bool = False,
    ) -> np.ndarray:
        """Return the annotated RGB image for ``frame``.

        The input is copied unless ``in_place`` (the caller owns the frame: no analysis stage
        reads it), which saves a full-frame copy per frame in passthrough.
        """
        img = frame.image if in_place else frame.image.copy()
        h, w = img.shape[:2]
        scale = max(0.35, min(w, h) / 900)
        banners: list[Banner] = []
        stale_notes: list[str] = []
        for ann in sets:
            age = frame.frame_id - ann.frame_id
            stale = age > self.stale_after
            if stale:
                age_ms = age / frame.fps * 1000 if frame.fps else 0.0
                stale_notes.append(f"{ann.source} stale +{age} fr ({age_ms:.0f} ms)")
            if ann.label_map is not None:
                self._draw_label_map(img, ann.label_map, dim=stale)
            for item in ann.items:
                if isinstance(item, Banner):
                    banners.append(item)
                else:
                    self._draw_item(img, item, scale, dim=stale)
            if ann.caption:
                _text(img, ann.caption, (8, int(h - 34 * scale - 8)), scale * 0.8, (255, 255, 255))
        for i, b in enumerate(banners[:3]):
            self._draw_banner(img, b, i, scale)
        y = int(28 * scale) + 4 + int(36 * scale) * min(len(banners), 3)
        for note in stale_notes:
            _text(img, note, (8, y), scale * 0.7, LEVEL_COLOURS["warning"])
            y += int(24 * scale)
        if self.status_line and status is not None:
            self._draw_status(img, frame, status, scale)
        return img

    @staticmethod
    def _draw_label_map(img: np.ndarray, lm: LabelMap, dim: bool) -> None:
        h, w = img.shape[:2]
        colour, fg = lm.at_size(w, h)
        alpha = lm.alpha * (0.5 if dim else 1.0)
        blended = cv2.addWeighted(img, 1.0 - alpha, colour, alpha, 0.0)
        cv2.copyTo(blended, fg, img)

    @staticmethod
    def _draw_item(img: np.ndarray, item: Any, scale: float, dim: bool) -> None:
        colour = tuple(int(c * (0.6 if dim else 1.0)) for c in item.colour)
        if isinstance(item, Outline):
            pts = [np.asarray(p, np.int32).reshape(-1, 1, 2) for p in item.polygons if len(p)]
            if pts:
                cv2.polylines(img, pts, True, colour, item.thickness, cv2.LINE_AA)
                if item.label:
                    x, y = pts[0][:, 0, :].min(axis=0)
                    _text(img, item.label, (int(x), max(12, int(y) - 6)), scale * 0.7, colour)
        elif isinstance(item, Box):
            x0, y0, x1, y1 = (int(v) for v in item.xyxy)
            cv2.rectangle(img, (x0, y0), (x1, y1), colour, 2)
            if item.label:
                _text(img, item.label, (x0, max(12, y0 - 6)), scale * 0.7, colour)
        elif isinstance(item, Text):
            _text(img, item.text, (int(item.xy[0]), int(item.xy[1])), scale * 0.8, colour)

    @staticmethod
    def _draw_banner(img: np.ndarray, b: Banner, row: int, scale: float) -> None:
        w = img.shape[1]
        bh = int(36 * scale)
        y0 = 4 + row * bh
        colour = LEVEL_COLOURS.get(b.level, LEVEL_COLOURS["alert"])
        roi = img[y0 : y0 + bh - 2, 4 : w - 4]
        roi[:] = (roi * 0.25 + np.array(colour) * 0.75).astype(np.uint8)
        _text(img, b.text, (12, y0 + int(bh * 0.7)), scale * 0.9, (255, 255, 255), 2)

    #: the status line's numbers (frame, fps, latency) are re-rendered at most this often
    #: (media seconds); a change of stage health is drawn at once
    STATUS_REFRESH_S = 0.25

    def _draw_status(self, img: np.ndarray, frame: VideoFrame, st: Status,
                     scale: float) -> None:
        """Darken the bottom bar and lay the status text over it.

        The text is laid out from cached glyphs (:func:`_glyph`) only when it changes and at
        most every STATUS_REFRESH_S of media; each frame then costs two numpy operations (a
        shift and an indexed copy of the text's pixels). Drawing the text with OpenCV for every
        frame (a dozen calls, each releasing and retaking the GIL) slowed the decoder thread by
        several per cent; re-rendering it every 0.25 s of media still cost ~0.6 ms a time."""
        h, w = img.shape[:2]
        bar_h = int(26 * scale) + 6
        roi = img[h - bar_h : h]
        np.right_shift(roi, 2, out=roi)  # darken to 1/4: integer, in place
        numbers = [f"#{frame.frame_id}", f"{st.fps:4.1f} fps"]
        if st.latency_ms is not None:
            numbers.append(f"lat {st.latency_ms:3.0f} ms")
        health = tuple(st.health.items())
        t = float(frame.media_t_s or 0.0)
        c = self._status_cache
        if (c is None or c["shape"] != roi.shape or c["health"] != health or c["extra"] != st.extra
                or (c["numbers"] != numbers and not 0 <= t - c["t"] < self.STATUS_REFRESH_S)):
            y = bar_h - int(bar_h * 0.3)
            sc = scale * 0.6
            runs = [(p, (230, 230, 230)) for p in numbers]
            runs += [(f"{n}:{state}", HEALTH_COLOURS.get(state, BAD_HEALTH)) for n, state in health]
            if st.extra:
                runs.append((st.extra, (230, 230, 230)))
            rows, cols, pixels = [], [], []
            x = 8
            for part, colour in runs:
                dr, dc, pix, adv = _text_pixels(part, sc, colour)
                r, cc = dr + y, dc + x
                keep = (r >= 0) & (r < bar_h) & (cc >= 0) & (cc < w)
                rows.append(r[keep])
                cols.append(cc[keep])
                pixels.append(pix[keep])
                x += adv + 14
            idx = (np.concatenate(rows) * w + np.concatenate(cols)) if rows else np.zeros(0, int)
            c = self._status_cache = {"shape": roi.shape, "health": health, "extra": st.extra,
                                      "numbers": numbers, "t": t, "idx": idx,
                                      "pixels": np.concatenate(pixels) if pixels
                                      else np.zeros((0, 3), np.uint8)}
        # a few thousand indexed pixels: ~40 us, where np.copyto(where=mask) took ~1 ms at 720p
        if roi.flags.c_contiguous:
            roi.reshape(-1, 3)[c["idx"]] = c["pixels"]
        else:  # a strided frame: reshape would copy, so index rows and columns
            rows, cols = np.divmod(c["idx"], roi.shape[1])
            roi[rows, cols] = c["pixels"]


def colour_of(name: str | tuple[int, int, int]) -> tuple[int, int, int]:
    """An RGB colour from a spoken name ("red") or an RGB tuple."""
    if isinstance(name, tuple):
        return name
    try:
        return NAMED_COLOURS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown colour {name!r}; known: {', '.join(NAMED_COLOURS)}") from None
