"""The overlay compositor: draws annotations, alert banners and the status line on frames.

Annotations come in :class:`AnnotationSet` objects that carry the frame id they were computed
from; the compositor always draws the newest set it has onto the newest frame, and marks the
set as stale (with its age in frames and ms) when it is older than ``stale_after`` frames.
Colours are RGB tuples (0-255); all coordinates are frame pixels.

True to the picture (:class:`DrawOptions`): segmentation is drawn as outlines (contours), the
tissue inside keeps its colour; a translucent fill only on request (``fill``). A class or a
tracked outline is drawn only at or above ``min_score`` and once it was seen in ``agree`` of
the last ``window`` analysed frames (held as long as that holds: no flicker); findings under
``certain_score`` or marked ``dashed`` (taught / uncertain) are dashed. Labels are light
text with a dark outline on a dark tag, kept clear of the banners and the status strip.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from copilot.messages import VideoFrame
from copilot.overlay_draw import (
    STATUS_REFRESH_S,
    _class_strokes,
    _dashes,
    _layer,
    _stroke,
    _tag,
    _text,
    draw_status,
)

log = logging.getLogger(__name__)

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


@dataclass
class LabelMap:
    """A class-id map at model resolution, outlined with ``palette`` (K x 3 RGB); filled at
    ``alpha`` only when the viewer asks. ``scores``: class id -> detection confidence (0-1;
    a class without a score counts as certain); ``names``: class id -> label."""

    classes: np.ndarray  # (h, w) uint8 class ids
    palette: np.ndarray  # (K, 3) uint8; row 0 (background) is not drawn
    alpha: float = 0.3
    scores: dict[int, float] | None = None
    names: tuple[str, ...] = ()
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
    """Closed polygons (each N x 2, frame px) drawn in ``colour`` with an optional label.

    ``track``: a detection (drawn after temporal agreement, held through short gaps, keyed
    by ``label``); ``score``: its confidence (0-1, None: certain); ``dashed``: taught or
    uncertain."""

    polygons: list[np.ndarray]
    colour: tuple[int, int, int]
    label: str = ""
    thickness: int = 3
    track: bool = False
    score: float | None = None
    dashed: bool = False


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


@dataclass(frozen=True)
class DrawOptions:
    """What one viewer wants drawn: ``fill`` label maps (translucent) or outline them only;
    ``hidden`` sources; the status strip; the confidence and agreement gates (see module)."""

    fill: bool = False
    hidden: frozenset[str] = frozenset()
    status_line: bool = True
    notes: bool = True  # free text items (e.g. "alerts muted until"); a page shows them itself
    min_score: float = 0.5
    certain_score: float = 0.7
    agree: int = 2
    window: int = 3
    thickness: int = 2


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


class _Track:
    """Agreement history of one drawable (a label-map class or a tracked outline)."""

    __slots__ = ("hits", "last")

    def __init__(self) -> None:
        self.hits: list[bool] = []
        self.last: Any = None  # what was drawn when last seen (polygons / class mask source)


class Compositor:
    """Draws annotation sets, banners and the status line onto a copy of the frame."""

    #: outlines of the same classes are traced again at most this often (media s)
    REDRAW_S = 0.15

    def __init__(self, stale_after: int = 10, status_line: bool = True,
                 options: DrawOptions | None = None) -> None:
        self.stale_after = stale_after
        self.options = options or DrawOptions(status_line=status_line)
        self._status_cache: dict[str, Any] | None = None
        # source -> the last set taken into history (the object, not its id(): a freed set's
        # id can be reused by the next one, which would then never count as fresh)
        self._seen: dict[str, AnnotationSet] = {}
        self._tracks: dict[tuple[str, Any], _Track] = {}
        self._strokes: dict[tuple, list[tuple[tuple[int, int, int], list[np.ndarray], bool,
                                              str, tuple[int, int]]]] = {}
        self._stroke_refs: list = []  # keeps the keyed label maps alive (their id()s unique)
        self._layers: dict[tuple, tuple[list, tuple[np.ndarray, np.ndarray]]] = {}
        self._stroke_last: tuple[float, tuple, tuple] | None = None

    @property
    def status_line(self) -> bool:
        """Whether the engineering strip (frame, fps, latency, health) is drawn."""
        return self.options.status_line

    @status_line.setter
    def status_line(self, on: bool) -> None:
        self.options = dataclasses.replace(self.options, status_line=bool(on))

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
        options: DrawOptions | None = None,
    ) -> np.ndarray:
        """Return the annotated RGB image for ``frame`` (``options``: this viewer's; default
        the compositor's own).

        The input is copied unless ``in_place`` (the caller owns the frame: no analysis stage
        reads it), which saves a full-frame copy per frame in passthrough.
        """
        opt = options or self.options
        img = frame.image if in_place else frame.image.copy()
        h, w = img.shape[:2]
        scale = max(0.35, min(w, h) / 900)
        banners: list[Banner] = []
        stale_notes: list[str] = []
        captions: list[str] = []
        labels: list[tuple[str, tuple[int, int], tuple[int, int, int]]] = []
        sets = [a for a in sets if a.source not in opt.hidden]
        n_banners = sum(isinstance(i, Banner) for a in sets for i in a.items)
        top = int(28 * scale) + 4 + int(36 * scale) * min(n_banners, 3)
        bottom = h - ((int(26 * scale) + 6) if opt.status_line and status is not None else 0)
        for ann in sets:
            age = frame.frame_id - ann.frame_id
            stale = age > self.stale_after
            if stale and opt.notes:  # (a page shows the stages' health itself)
                age_ms = age / frame.fps * 1000 if frame.fps else 0.0
                stale_notes.append(f"{ann.source} stale +{age} fr ({age_ms:.0f} ms)")
            fresh = self._seen.get(ann.source) is not ann
            self._seen[ann.source] = ann
            if ann.label_map is not None:
                self._draw_label_map(img, ann, opt, fresh, stale, (scale, top, bottom),
                                     float(frame.media_t_s or 0.0))
            tracked: set[str] = set()
            for item in ann.items:
                if isinstance(item, Banner):
                    banners.append(item)
                elif isinstance(item, Outline) and item.track:
                    tracked.add(item.label)
                else:
                    labels += self._draw_item(img, item, scale, opt, dim=stale)
            for item in self._agreed_outlines(ann, tracked, opt, fresh):
                labels += self._draw_item(img, item, scale, opt, dim=stale)
            if ann.caption and ann.caption not in captions:
                captions.append(ann.caption)
        for text, org, colour in labels:
            _tag(img, text, org, scale * 0.75, colour, top, bottom)
        for i, b in enumerate(banners[:3]):
            self._draw_banner(img, b, i, scale)
        y = top
        for note in stale_notes:
            _text(img, note, (8, y), scale * 0.7, LEVEL_COLOURS["warning"])
            y += int(24 * scale)
        for k, cap in enumerate(captions):  # each caption once, above the strip
            _tag(img, cap, (8, bottom - 8 - int(30 * scale) * k), scale * 0.7,
                 (255, 255, 255), top, bottom)
        if opt.status_line and status is not None:
            self._draw_status(img, frame, status, scale)
        return img

    def _agree(self, key: tuple[str, Any], present: bool, fresh: bool, opt: DrawOptions
               ) -> bool:
        """Record (on a fresh analysed set) and judge one drawable's temporal agreement."""
        tr = self._tracks.get(key)
        if tr is None:
            tr = self._tracks[key] = _Track()
        if fresh:
            tr.hits.append(present)
            del tr.hits[:-max(1, opt.window)]
        return sum(tr.hits[-opt.window:]) >= min(opt.agree, opt.window)

    def _agreed_outlines(self, ann: AnnotationSet, tracked: set[str], opt: DrawOptions,
                         fresh: bool) -> list[Outline]:
        """Tracked outlines that passed the gates; a gap within the window draws the last."""
        now = {it.label: it for it in ann.items if isinstance(it, Outline) and it.track}
        keys = {k[1] for k in self._tracks if k[0] == ann.source and isinstance(k[1], str)}
        out = []
        for label in sorted(keys | tracked):
            it = now.get(label)
            ok = it is not None and (it.score is None or it.score >= opt.min_score)
            key = (ann.source, label)
            if self._agree(key, ok, fresh, opt):
                tr = self._tracks[key]
                if ok:
                    tr.last = it
                if tr.last is not None:
                    out.append(tr.last)
        return out

    def _draw_label_map(self, img: np.ndarray, ann: AnnotationSet, opt: DrawOptions,
                        fresh: bool, dim: bool, place: tuple[float, int, int],
                        t: float = 0.0) -> None:
        """Outline (or, on request, fill) the agreed classes with their labels; a class
        missing from this map but agreed within the window is drawn from the last map that
        had it. ``place``: (text scale, top and bottom px labels stay between); ``t``: media
        s. The outlines are traced again at most every REDRAW_S while the same classes are
        drawn (the model may give a new map every frame; tracing costs ~10 ms at 480p)."""
        lm = ann.label_map
        assert lm is not None
        h, w = img.shape[:2]
        present = {int(c) for c in np.unique(lm.classes) if c}
        ok = {c for c in present if (lm.scores or {}).get(c, 1.0) >= opt.min_score}
        draw: list[tuple[LabelMap, int]] = []
        tracked = {k[1][1] for k in self._tracks if k[0] == ann.source
                   and isinstance(k[1], tuple)}
        for c in sorted(tracked | present):
            key = (ann.source, ("class", c))
            agreed = self._agree(key, c in ok, fresh, opt)
            tr = self._tracks[key]
            if c in ok:
                tr.last = lm
            if agreed and tr.last is not None:
                draw.append((tr.last, c))
        if opt.fill and draw:
            for m in {id(m): m for m, _ in draw}.values():
                colour, _ = m.at_size(w, h)
                cls = m.classes
                if cls.shape[:2] != (h, w):
                    cls = cv2.resize(cls, (w, h), interpolation=cv2.INTER_NEAREST)
                fg = np.isin(cls, [c for mm, c in draw if mm is m]).astype(np.uint8)
                alpha = m.alpha * (0.5 if dim else 1.0)
                blended = cv2.addWeighted(img, 1.0 - alpha, colour, alpha, 0.0)
                cv2.copyTo(blended, fg, img)
        key = (tuple((id(m), c) for m, c in draw), w, h, opt.certain_score)
        strokes = self._strokes.get(key)
        last = self._stroke_last
        if strokes is None and last is not None and last[1] == (
                tuple(c for _, c in draw), w, h, opt.certain_score) \
                and 0 <= t - last[0] < self.REDRAW_S:
            strokes = self._strokes.get(last[2])
        if strokes is None:
            strokes = [_class_strokes(m, c, w, h, (m.scores or {}).get(c), opt)
                       for m, c in draw]
            strokes = [s for s in strokes if s is not None]
            self._strokes.clear()
            self._strokes[key] = strokes
            self._stroke_refs = [m for m, _ in draw]
            self._stroke_last = (t, (tuple(c for _, c in draw), w, h, opt.certain_score), key)
        thick = max(1, round(opt.thickness * min(1.0, min(h, w) / 480)))  # 1 px under 360p
        lkey = (id(strokes), thick, dim, place)
        held = self._layers.get(lkey)
        if held is None or held[0] is not strokes:  # drawn once per result and view
            held = self._layers[lkey] = (strokes, _layer(strokes, w, h, thick, dim, place))
            for k in [k for k in self._layers if k != lkey]:
                del self._layers[k]
        idx, pix = held[1]
        if img.flags.c_contiguous:
            img.reshape(-1, 3)[idx] = pix
        else:  # a strided frame: index rows and columns
            rows, cols = np.divmod(idx, w)
            img[rows, cols] = pix

    @staticmethod
    def _draw_item(img: np.ndarray, item: Any, scale: float, opt: DrawOptions, dim: bool
                   ) -> list:
        colour = tuple(int(c * (0.6 if dim else 1.0)) for c in item.colour)
        labels = []
        if isinstance(item, Outline):
            pts = [np.asarray(p, np.int32).reshape(-1, 1, 2) for p in item.polygons if len(p)]
            if pts:
                dashed = item.dashed or (item.score is not None
                                         and item.score < opt.certain_score)
                if dashed:
                    pts = [d for p in pts for d in _dashes(p[:, 0, :], 10.0 * scale + 4)]
                _stroke(img, pts, colour, item.thickness, closed=not dashed)
                if item.label:  # at the top of its largest polygon
                    big = max(item.polygons, key=len)
                    big = np.asarray(big, np.int32).reshape(-1, 2)
                    x, y = big[int(np.argmin(big[:, 1]))]
                    labels.append((item.label, (int(x), int(y) - 6), colour))
        elif isinstance(item, Box):
            x0, y0, x1, y1 = (int(v) for v in item.xyxy)
            cv2.rectangle(img, (x0, y0), (x1, y1), colour, 2)
            if item.label:
                labels.append((item.label, (x0, y0 - 6), colour))
        elif isinstance(item, Text) and opt.notes:
            _text(img, item.text, (int(item.xy[0]), int(item.xy[1])), scale * 0.8, colour)
        return labels

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
    STATUS_REFRESH_S = STATUS_REFRESH_S

    def _draw_status(self, img: np.ndarray, frame: VideoFrame, st: Status,
                     scale: float) -> None:
        """The engineering strip at the bottom (see ``copilot.overlay_draw.draw_status``)."""
        self._status_cache = draw_status(img, frame, st, scale, self._status_cache)


def colour_of(name: str | tuple[int, int, int]) -> tuple[int, int, int]:
    """An RGB colour from a spoken name ("red") or an RGB tuple."""
    if isinstance(name, tuple):
        return name
    try:
        return NAMED_COLOURS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown colour {name!r}; known: {', '.join(NAMED_COLOURS)}") from None
