"""Post-processing: runtime outputs -> per-structure findings, and an overlay drawer.

Costs a few bincounts over the label map plus one ``cv2.findContours`` per present
structure at model resolution (128x128 by default), so it stays well under a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from vision.labels import CLASS_COLOURS, CLASSES
from vision.preprocess import CropBox

#: Classes never reported as findings.
SKIP_CLASSES: frozenset[str] = frozenset({"background"})


class StructureFinding:
    """One segmented structure in one frame.

    ``mask`` is boolean at model output resolution; ``to_frame`` maps its pixel (u, v) to
    frame pixels: x = x0 + u * sx, y = y0 + v * sy. Polygons are int32 [N, 2] (x, y) in frame
    pixels. ``area_fraction`` is of the field of view; ``centroid`` is (x, y) normalised to
    the frame (0..1); ``confidence`` is the mean softmax probability over the mask (0..1);
    ``bbox`` is (x0, y0, x1, y1) in frame pixels. ``mask`` and ``polygons`` are computed on
    first access (most frames never draw most structures), then cached.
    """

    __slots__ = ("name", "class_id", "to_frame", "area_fraction", "centroid", "confidence",
                 "bbox", "pixels", "_labels", "_epsilon", "_mask", "_polygons")

    def __init__(self, name: str, class_id: int, labels: np.ndarray,
                 to_frame: tuple[float, float, float, float], area_fraction: float,
                 centroid: tuple[float, float], confidence: float,
                 bbox: tuple[int, int, int, int], pixels: int, epsilon: float = 0.75) -> None:
        self.name = name
        self.class_id = class_id
        self.to_frame = to_frame
        self.area_fraction = area_fraction
        self.centroid = centroid
        self.confidence = confidence
        self.bbox = bbox
        self.pixels = pixels
        self._labels = labels
        self._epsilon = epsilon
        self._mask: np.ndarray | None = None
        self._polygons: list[np.ndarray] | None = None

    def __repr__(self) -> str:
        return (f"StructureFinding({self.name!r}, area={self.area_fraction:.3f}, "
                f"centroid=({self.centroid[0]:.2f}, {self.centroid[1]:.2f}), "
                f"confidence={self.confidence:.2f})")

    @property
    def area(self) -> float:
        """Alias of ``area_fraction``."""
        return self.area_fraction

    @property
    def mask(self) -> np.ndarray:
        """Boolean [Ho, Wo] mask at model output resolution."""
        if self._mask is None:
            self._mask = self._labels == self.class_id
        return self._mask

    @property
    def polygons(self) -> list[np.ndarray]:
        """Outer contours as int32 [N, 2] (x, y) arrays in frame pixels."""
        if self._polygons is None:
            x0, y0, sx, sy = self.to_frame
            contours, _ = cv2.findContours(self.mask.view(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_SIMPLE)
            polys = []
            for cnt in contours:
                if self._epsilon > 0 and len(cnt) > 8:
                    cnt = cv2.approxPolyDP(cnt, self._epsilon, True)
                p = cnt.reshape(-1, 2).astype(np.float32)
                p[:, 0] = x0 + (p[:, 0] + 0.5) * sx
                p[:, 1] = y0 + (p[:, 1] + 0.5) * sy
                polys.append(np.round(p).astype(np.int32))
            self._polygons = polys
        return self._polygons

    def full_mask(self, frame_hw: tuple[int, int]) -> np.ndarray:
        """Boolean mask at frame size (nearest-neighbour upscaling into the FOV box)."""
        h, w = frame_hw
        x0, y0, sx, sy = self.to_frame
        out = np.zeros((h, w), dtype=bool)
        mh, mw = self.mask.shape
        bw, bh = int(round(mw * sx)), int(round(mh * sy))
        up = cv2.resize(self.mask.astype(np.uint8), (bw, bh), interpolation=cv2.INTER_NEAREST)
        x0i, y0i = int(round(x0)), int(round(y0))
        out[y0i:y0i + bh, x0i:x0i + bw] = up[: h - y0i, : w - x0i].astype(bool)
        return out


@dataclass
class FindingsConfig:
    """Thresholds for reporting a structure."""

    min_pixels: int = 12  # at model resolution
    min_confidence: float = 0.0
    polygon_epsilon: float = 0.75  # Douglas-Peucker tolerance, model pixels
    skip: frozenset[str] = field(default_factory=lambda: SKIP_CLASSES)


_GRID: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Flattened row and column index arrays for an [h, w] map (cached)."""
    g = _GRID.get((h, w))
    if g is None:
        g = (np.repeat(np.arange(h, dtype=np.intp), w), np.tile(np.arange(w, dtype=np.intp), h))
        _GRID[(h, w)] = g
    return g


def structure_findings(labels: np.ndarray, conf: np.ndarray, box: CropBox,
                       frame_hw: tuple[int, int], classes: tuple[str, ...] = CLASSES,
                       cfg: FindingsConfig | None = None) -> list[StructureFinding]:
    """Findings for every class present in ``labels`` ([Ho, Wo] class ids)."""
    cfg = cfg or FindingsConfig()
    mh, mw = labels.shape
    n = len(classes)
    flat = labels.reshape(-1).astype(np.intp)
    rows, cols = _grid(mh, mw)
    # per-class column and row histograms: counts and centroid sums from two bincounts
    col_hist = np.bincount(flat * mw + cols, minlength=n * mw)[: n * mw].reshape(n, mw)
    row_hist = np.bincount(flat * mh + rows, minlength=n * mh)[: n * mh].reshape(n, mh)
    counts = col_hist.sum(axis=1)
    x_sum = col_hist @ np.arange(mw, dtype=np.float64)
    y_sum = row_hist @ np.arange(mh, dtype=np.float64)
    conf_sum = np.bincount(flat, weights=conf.reshape(-1), minlength=n)
    sx, sy = box.width / mw, box.height / mh
    fh, fw = frame_hw
    total = float(mh * mw)
    out = []
    present = np.flatnonzero(counts >= cfg.min_pixels)
    for cid in present:
        name = classes[cid]
        if name in cfg.skip:
            continue
        c = float(conf_sum[cid] / counts[cid])
        if c < cfg.min_confidence:
            continue
        cols_on = np.flatnonzero(col_hist[cid])
        rows_on = np.flatnonzero(row_hist[cid])
        cx = box.x0 + (x_sum[cid] / counts[cid] + 0.5) * sx
        cy = box.y0 + (y_sum[cid] / counts[cid] + 0.5) * sy
        out.append(StructureFinding(
            name=name,
            class_id=int(cid),
            labels=labels,
            to_frame=(float(box.x0), float(box.y0), sx, sy),
            area_fraction=float(counts[cid] / total),
            centroid=(float(cx / fw), float(cy / fh)),
            confidence=c,
            bbox=(int(box.x0 + cols_on[0] * sx), int(box.y0 + rows_on[0] * sy),
                  int(round(box.x0 + (cols_on[-1] + 1) * sx)),
                  int(round(box.y0 + (rows_on[-1] + 1) * sy))),
            pixels=int(counts[cid]),
            epsilon=cfg.polygon_epsilon,
        ))
    return out


def colour_label_map(labels: np.ndarray, classes: tuple[str, ...] = CLASSES) -> np.ndarray:
    """[H, W] class ids -> [H, W, 3] uint8 RGB using ``CLASS_COLOURS``."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    for i, name in enumerate(classes):
        lut[i] = CLASS_COLOURS.get(name, (255, 255, 255))
    return lut[labels]


def draw_overlay(frame_rgb: np.ndarray, findings: list[StructureFinding],
                 text_lines: list[str] | None = None, alpha: float = 0.35,
                 only: set[str] | None = None, outline_px: int = 2) -> np.ndarray:
    """Return a copy of the frame with filled, outlined structures and text lines (RGB)."""
    out = frame_rgb.copy()
    fill = out.copy()
    for f in findings:
        if only is not None and f.name not in only:
            continue
        colour = CLASS_COLOURS.get(f.name, (255, 255, 255))
        cv2.fillPoly(fill, f.polygons, colour)
        cv2.polylines(out, f.polygons, True, colour, outline_px, cv2.LINE_AA)
    out = cv2.addWeighted(fill, alpha, out, 1 - alpha, 0)
    for f in findings:
        if only is not None and f.name not in only:
            continue
        colour = CLASS_COLOURS.get(f.name, (255, 255, 255))
        cv2.polylines(out, f.polygons, True, colour, outline_px, cv2.LINE_AA)
    y = 18
    for line in text_lines or []:
        cv2.putText(out, line, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, line, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                    cv2.LINE_AA)
        y += 20
    return out
