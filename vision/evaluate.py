"""Accuracy metrics for the encoders on labelled frames or whole feeds.

- segmentation: per-class IoU from a dataset-level confusion matrix at model output
  resolution (truth masks resized with nearest neighbour); mIoU over ``ANATOMY_CLASSES``
  present in the truth.
- phase: accuracy of the causally filtered phase on frames with a phase label.
- bowel segment: region accuracy on frames whose true region is a bowel segment (after the
  causal region filter when one is given; ``_per_frame`` = single-frame output).
- CVS: F1 per criterion on CVS-labelled frames, and their mean (macro F1).
- tools: F1 per tool on tool-labelled frames, and their mean.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vision.labels import (
    CLASSES,
    CVS_CRITERIA,
    IGNORE_INDEX,
    INSTRUMENT_CLASSES,
    REGIONS,
    SEGMENTS,
    TOOLS,
)
from vision.temporal import PhaseFilter

#: Classes counted in the anatomy mIoU (not background, instruments, clips or blood).
ANATOMY_CLASSES: tuple[str, ...] = tuple(
    c for c in CLASSES if c not in {"background", "clip", "blood", *INSTRUMENT_CLASSES})


def confusion(pred: np.ndarray, truth: np.ndarray, n: int = len(CLASSES)) -> np.ndarray:
    """[n, n] counts (row = truth, column = prediction); ignore-index pixels skipped."""
    t = truth.reshape(-1).astype(np.int64)
    p = pred.reshape(-1).astype(np.int64)
    keep = (t != IGNORE_INDEX) & (t < n) & (p < n)
    return np.bincount(t[keep] * n + p[keep], minlength=n * n).reshape(n, n)


def iou_from_confusion(cm: np.ndarray) -> dict[str, float]:
    """IoU per class that occurs in the truth."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    return {CLASSES[i]: float(tp[i] / union[i]) for i in range(len(tp)) if cm[i].sum() > 0}


def f1_binary(pred: np.ndarray, truth: np.ndarray) -> float:
    """F1 of boolean arrays; 1.0 when both are empty."""
    tp = float((pred & truth).sum())
    fp = float((pred & ~truth).sum())
    fn = float((~pred & truth).sum())
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


class MetricAccumulator:
    """Collects per-frame predictions and truths; :meth:`summary` gives the metrics."""

    def __init__(self) -> None:
        self.cm = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
        self.phase: list[tuple[int, int, int]] = []  # (truth, filtered, frame-only)
        self.region: list[tuple[int, int, int]] = []  # (truth, filtered, frame-only)
        self.cvs_p: list[np.ndarray] = []
        self.cvs_t: list[np.ndarray] = []
        self.tools_p: list[np.ndarray] = []
        self.tools_t: list[np.ndarray] = []

    def add(self, labels: np.ndarray | None, mask: np.ndarray | None, phase_true: int,
            phase_filtered: int, phase_frame: int, region_true: int, region_pred: int,
            cvs_prob: np.ndarray | None, cvs_true: np.ndarray | None,
            tools_prob: np.ndarray | None, tools_true: np.ndarray | None,
            region_frame: int | None = None) -> None:
        """One frame; pass None / -1 for what it has no truth for."""
        if labels is not None and mask is not None:
            self.cm += confusion(labels, mask)
        if phase_true >= 0:
            self.phase.append((phase_true, phase_filtered, phase_frame))
        if region_true >= 0:
            self.region.append((region_true, region_pred,
                                region_pred if region_frame is None else region_frame))
        if cvs_true is not None and cvs_prob is not None:
            self.cvs_p.append(np.asarray(cvs_prob) >= 0.5)
            self.cvs_t.append(np.asarray(cvs_true) >= 0.5)
        if tools_true is not None and tools_prob is not None:
            self.tools_p.append(np.asarray(tools_prob) >= 0.5)
            self.tools_t.append(np.asarray(tools_true) >= 0.5)

    def summary(self) -> dict:
        """Metrics dict (see module docstring); counts say how many frames each used."""
        out: dict = {}
        ious = iou_from_confusion(self.cm)
        anat = {k: v for k, v in ious.items() if k in ANATOMY_CLASSES}
        out["seg_iou"] = {k: round(v, 4) for k, v in ious.items()}
        out["anatomy_miou"] = float(np.mean(list(anat.values()))) if anat else None
        out["all_miou"] = float(np.mean(list(ious.values()))) if ious else None
        if self.phase:
            a = np.array(self.phase)
            out["phase_acc"] = float((a[:, 0] == a[:, 1]).mean())
            out["phase_acc_per_frame"] = float((a[:, 0] == a[:, 2]).mean())
            out["phase_frames"] = len(a)
        seg_ids = {REGIONS.index(s) for s in SEGMENTS}
        if self.region:
            r = np.array(self.region)
            out["region_acc"] = float((r[:, 0] == r[:, 1]).mean())
            bowel = np.isin(r[:, 0], list(seg_ids))
            if bowel.any():
                out["bowel_segment_acc"] = float((r[bowel, 0] == r[bowel, 1]).mean())
                out["bowel_segment_acc_per_frame"] = float((r[bowel, 0] == r[bowel, 2]).mean())
                out["bowel_frames"] = int(bowel.sum())
        if self.cvs_t:
            p, t = np.array(self.cvs_p), np.array(self.cvs_t)
            f1 = {c: f1_binary(p[:, i], t[:, i]) for i, c in enumerate(CVS_CRITERIA)}
            out["cvs_f1"] = {k: round(v, 4) for k, v in f1.items()}
            out["cvs_macro_f1"] = float(np.mean(list(f1.values())))
            out["cvs_positive_rate"] = [round(float(x), 3) for x in t.mean(0)]
            out["cvs_frames"] = len(t)
        if self.tools_t:
            p, t = np.array(self.tools_p), np.array(self.tools_t)
            f1 = {c: f1_binary(p[:, i], t[:, i]) for i, c in enumerate(TOOLS) if t[:, i].any()}
            out["tools_f1"] = {k: round(v, 4) for k, v in f1.items()}
            out["tools_macro_f1"] = float(np.mean(list(f1.values()))) if f1 else None
        return out


def evaluate_frames(predict: Callable[[np.ndarray], dict[str, np.ndarray]], data,
                    phase_filter: PhaseFilter | None = None, batch: int = 16,
                    region_filter: PhaseFilter | None = None) -> dict:
    """Metrics of ``predict`` (float32 [B, 3, H, W] -> deploy outputs) on LabelledFrames.

    Frames of each source video are filtered in time order with ``phase_filter``.
    """
    acc = MetricAccumulator()
    pf = phase_filter or PhaseFilter.uniform(7)
    for v in np.unique(data.video):
        idx = np.flatnonzero(data.video == v)
        idx = idx[np.argsort(data.times[idx], kind="stable")]
        pf.reset()
        if region_filter is not None:
            region_filter.reset()
        for s in range(0, len(idx), batch):
            b = idx[s:s + batch]
            x = np.ascontiguousarray(data.images[b].transpose(0, 3, 1, 2), dtype=np.float32)
            out = predict(x)
            for j, k in enumerate(b):
                filt = pf.update(out["phase"][j], float(data.times[k]))
                reg = out["region"][j]
                if region_filter is not None:
                    reg = region_filter.update(reg, float(data.times[k]))
                acc.add(
                    out["seg_labels"][j], data.masks[k], int(data.phase[k]), int(filt.argmax()),
                    int(out["phase"][j].argmax()), int(data.region[k]),
                    int(reg.argmax()),
                    out["cvs"][j] if data.cvs_valid[k] else None,
                    data.cvs[k] if data.cvs_valid[k] else None,
                    out["tools"][j] if data.tools_valid[k] else None,
                    data.tools[k] if data.tools_valid[k] else None,
                    region_frame=int(out["region"][j].argmax()),
                )
    return acc.summary()
