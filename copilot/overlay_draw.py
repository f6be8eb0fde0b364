"""Drawing primitives of the overlay compositor (``copilot.overlay``): outlined text, label
tags, dashed and contrast strokes, class contours of a label map, and the engineering status
strip. Colours are RGB (0-255), coordinates frame pixels."""

from __future__ import annotations

import functools
from typing import Any

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
HEALTH_COLOURS = {"ok": (120, 230, 120), "starting": (200, 200, 200), "stopped": (200, 200, 200)}
BAD_HEALTH = (255, 90, 60)
#: the status line's numbers (frame, fps, latency) are re-rendered at most this often
#: (media seconds); a change of stage health is drawn at once
STATUS_REFRESH_S = 0.25


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour, th: int = 1):
    cv2.putText(img, text, org, FONT, scale, (0, 0, 0), th + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, FONT, scale, colour, th, cv2.LINE_AA)


def _tag(img: np.ndarray, text: str, org: tuple[int, int], scale: float,
         colour: tuple[int, int, int], top: int, bottom: int,
         mask: np.ndarray | None = None) -> None:
    """A label readable on any tissue: a dark tag, a bar of the item's colour, light text
    with a dark outline; kept between ``top`` (under the banners) and ``bottom`` (above the
    status strip) and inside the frame (px). ``mask``: marks the tag's pixels (255)."""
    h, w = img.shape[:2]
    (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
    x = int(min(max(2, org[0]), max(2, w - tw - 12)))
    y = int(min(max(org[1], top + th + 4), bottom - base - 4))
    x0, y0, x1, y1 = x - 2, max(0, y - th - 3), min(w, x + tw + 9), min(h, y + base + 2)
    roi = img[y0:y1, x0:x1]
    np.right_shift(roi, 2, out=roi)  # darken to 1/4 under the text
    if mask is not None:
        mask[y0:y1, x0:x1] = 255
    img[y0:y1, x0:x0 + 3] = colour
    light = tuple(int(255 - (255 - c) * 0.25) for c in colour)  # the colour, lightened
    _text(img, text, (x + 5, y), scale, light)


def _dashes(poly: np.ndarray, dash: float) -> list[np.ndarray]:
    """A closed polygon (N x 2 px) cut into dashes ``dash`` px long with equal gaps."""
    p = np.asarray(poly, np.float32).reshape(-1, 2)
    if len(p) < 2:
        return []
    p = np.vstack([p, p[:1]])
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return []
    n = max(2, int(s[-1] / 2) + 1)  # resample every ~2 px
    t = np.linspace(0.0, s[-1], n)
    pts = np.stack([np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])], axis=1)
    on = (t // dash).astype(int) % 2 == 0
    out, run = [], []
    for q, keep in zip(pts, on, strict=True):
        if keep:
            run.append(q)
        elif run:
            out.append(run)
            run = []
    if run:
        out.append(run)
    return [np.asarray(r, np.int32).reshape(-1, 1, 2) for r in out if len(r) >= 2]


def _stroke(img: np.ndarray, pts: list[np.ndarray], colour: tuple[int, int, int],
            thickness: int, closed: bool) -> None:
    """Lines in ``colour`` over a 1 px wider dark line: visible on light and dark tissue."""
    if not pts:
        return
    cv2.polylines(img, pts, closed, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.polylines(img, pts, closed, colour, thickness, cv2.LINE_AA)


def _layer(strokes: list[tuple], w: int, h: int, thick: int, dim: bool,
           place: tuple[float, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Outlines and their labels drawn once on a black layer: (flat pixel indices, their RGB)
    to copy onto each frame (a few ten thousand pixels: well under a millisecond)."""
    scale, top, bottom = place
    canvas = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    tags = []
    for colour, pts, dashed, name, org in strokes:
        col = tuple(int(v * (0.6 if dim else 1.0)) for v in colour)
        cv2.polylines(mask, pts, not dashed, 255, thick + 2, cv2.LINE_8)  # with its dark edge
        cv2.polylines(canvas, pts, not dashed, col, thick, cv2.LINE_AA)
        if name:
            tags.append((name, org, col))
    for name, org, col in tags:
        _tag(canvas, name, org, scale * 0.75, col, top, bottom, mask)
    idx = np.flatnonzero(mask)
    return idx, canvas.reshape(-1, 3)[idx].copy()


def _class_strokes(lm: Any, c: int, w: int, h: int, score: float | None,
                   opt: Any) -> tuple | None:
    """(colour, polylines in frame px, dashed, label, label origin) of class ``c``."""
    m = (lm.classes == c).astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    mh, mw = m.shape[:2]
    min_area = 0.0005 * mh * mw
    contours = [cv2.approxPolyDP(k, 0.7, True) for k in contours
                if cv2.contourArea(k) >= min_area]  # fewer points, within 0.7 model px
    if not contours:
        return None
    sx, sy = w / mw, h / mh
    polys = [np.round(k[:, 0, :].astype(np.float32) * (sx, sy)).astype(np.int32)
             for k in contours]
    dashed = score is not None and score < opt.certain_score
    if dashed:
        pts = [d for p in polys for d in _dashes(p, 10.0)]
    else:
        pts = [p.reshape(-1, 1, 2) for p in polys]
    areas = [cv2.contourArea(k) for k in contours]
    big = polys[int(np.argmax(areas))]
    top = big[int(np.argmin(big[:, 1]))]
    # a label only for a region of >= 1 % of the picture: small ones keep their outline
    name = lm.names[c] if c < len(lm.names) and max(areas) >= 0.01 * mh * mw else ""
    if name and score is not None:
        name = f"{name.replace('_', ' ')} {score:.2f}"
    colour = tuple(int(v) for v in lm.palette[c])
    return colour, pts, dashed, name.replace("_", " "), (int(top[0]), int(top[1]) - 6)


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


def draw_status(img: np.ndarray, frame: Any, st: Any, scale: float,
                cache: dict[str, Any] | None) -> dict[str, Any]:
    """Darken the bottom bar and lay the status text (frame, fps, latency, stage health) over
    it; returns the text layer cache to pass next time.

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
    c = cache
    if (c is None or c["shape"] != roi.shape or c["health"] != health or c["extra"] != st.extra
            or (c["numbers"] != numbers and not 0 <= t - c["t"] < STATUS_REFRESH_S)):
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
        c = {"shape": roi.shape, "health": health, "extra": st.extra, "numbers": numbers,
             "t": t, "idx": idx,
             "pixels": np.concatenate(pixels) if pixels else np.zeros((0, 3), np.uint8)}
    # a few thousand indexed pixels: ~40 us, where np.copyto(where=mask) took ~1 ms at 720p
    if roi.flags.c_contiguous:
        roi.reshape(-1, 3)[c["idx"]] = c["pixels"]
    else:  # a strided frame: reshape would copy, so index rows and columns
        rows, cols = np.divmod(c["idx"], roi.shape[1])
        roi[rows, cols] = c["pixels"]
    return c
