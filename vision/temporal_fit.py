"""Fitting and tuning the causal phase / region filters (``vision.temporal.PhaseFilter``).

Rates are fitted on per-video label sequences (decoded frames or the feeds' full-rate
truth.json); emission sharpness and prior correction are tuned on validation frames, given
a ``predict`` function (float32 [B, 3, H, W] -> per-head probabilities).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vision.datasets.common import LabelledFrames
from vision.labels import PHASES, REGIONS, SEGMENTS
from vision.temporal import PhaseFilter

log = logging.getLogger(__name__)

#: Region-filter emission powers tried on the validation feeds, and the accuracy a smoother
#: (lower) power may give up there (see :func:`tune_state_filter`). A smoother filter also
#: switches later (a skipped bowel segment is alerted later), so the tolerance is small; it
#: was 0.03 while the validation feeds were all 4:3 and under-stated the per-frame errors on
#: wide frames (the shipped model now trains and validates on 4:3 and 16:9 feeds).
REGION_POWERS = (0.25, 0.35, 0.5, 0.75, 1.0)
REGION_TOL = 0.005
#: The region filter's confident route step (vision.temporal): chosen on fresh 640x360 25 fps
#: and 426x240 15 fps bowel feeds (seeds 8001-8008, 8201-8206; never in training or a
#: benchmark): skipped-segment alert 0.57 -> 0.37 s median after the event at 25 fps with no
#: unscripted alert; fast_p 0.7 already raised false "not seen" alerts there.
REGION_FAST = {"fast_p": 0.85, "fast_s": 0.04, "fast_frames": 2}


def _n_states(key: str) -> int:
    return len(PHASES) if key == "phase" else len(REGIONS)


def fit_state_filter(data: LabelledFrames, key: str = "phase") -> PhaseFilter:
    """Fit a causal filter's rates on the per-video ``key`` ("phase" or "region") sequences."""
    seqs, fps = [], []
    labels = getattr(data, key)
    for v in np.unique(data.video):
        idx = np.flatnonzero(data.video == v)
        idx = idx[np.argsort(data.times[idx], kind="stable")]
        ph = labels[idx]
        if (ph >= 0).sum() < 2:
            continue
        dt = np.median(np.diff(data.times[idx])) if len(idx) > 1 else 1.0
        seqs.append(ph)
        fps.append(1.0 / max(dt, 1e-3))
    if not seqs:
        return PhaseFilter.uniform(_n_states(key))
    if key != "region":
        return PhaseFilter.fit(seqs, fps, _n_states(key))
    pf = PhaseFilter.fit(seqs, fps, _n_states(key), order=[REGIONS.index(s) for s in SEGMENTS])
    pf.evidence_dt_s = float(np.median([1.0 / f for f in fps]))
    _set_fast(pf)
    return pf


def _set_fast(pf: PhaseFilter) -> None:
    pf.fast_p = REGION_FAST["fast_p"]
    pf.fast_s = REGION_FAST["fast_s"]
    pf.fast_frames = int(REGION_FAST["fast_frames"])


def fit_phase_filter(data: LabelledFrames) -> PhaseFilter:
    """Fit the phase filter on the per-video phase sequences of ``data``."""
    return fit_state_filter(data, "phase")


def fit_filters_from_truth(feeds: list[Path]) -> dict[str, PhaseFilter]:
    """Phase and region filters fitted on the full-rate truth.json label sequences."""
    from vision.datasets.feeds import read_truth

    seqs: dict[str, list] = {"phase": [], "region": []}
    fps = []
    for f in feeds:
        t = read_truth(f)
        fps.append(float(t["fps"]))
        for key in seqs:
            seqs[key].append(np.asarray(t["frame_labels"][key], np.int64))
    filters = {"phase": PhaseFilter.fit(seqs["phase"], fps, _n_states("phase"))}
    # the bowel survey visits the segments in order (DATASETS / vision.synth.bowel routes):
    # left to right, a segment may be skipped, never revisited
    region = PhaseFilter.fit(seqs["region"], fps, _n_states("region"),
                             order=[REGIONS.index(s) for s in SEGMENTS])
    # emissions are calibrated at the training frame interval: evidence per second, not frame
    region.evidence_dt_s = float(np.median([1.0 / f for f in fps])) if fps else 0.0
    _set_fast(region)
    filters["region"] = region
    return filters


def tune_state_filter(pf: PhaseFilter, predict, val: LabelledFrames, key: str = "phase",
                      powers: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0),
                      prior_powers: tuple[float, ...] = (0.0, 0.5, 1.0),
                      probs: np.ndarray | None = None, tol: float = 0.0) -> PhaseFilter:
    """Choose emission sharpness and prior correction maximising filtered accuracy on ``val``.

    ``tol`` > 0 prefers robustness: the smallest emission power whose accuracy is within
    ``tol`` of the best (smoother output; the validation feeds share the training frame size
    and rate, so they under-state how much the per-frame output errs elsewhere).
    """
    labels = getattr(val, key)
    if not (labels >= 0).any():
        return pf
    if probs is None:
        probs = np.zeros((len(val), _n_states(key)), np.float32)
        for s in range(0, len(val), 32):
            x = np.ascontiguousarray(val.images[s:s + 32].transpose(0, 3, 1, 2),
                                     dtype=np.float32)
            probs[s:s + 32] = predict(x)[key]
    best, best_acc = (pf.emission_power, pf.prior_power), -1.0
    scores: list[tuple[float, float, float]] = []
    for p, q in [(p, q) for p in powers for q in prior_powers]:
        pf.emission_power, pf.prior_power = p, q
        correct = total = 0
        for v in np.unique(val.video):
            idx = np.flatnonzero(val.video == v)
            idx = idx[np.argsort(val.times[idx], kind="stable")]
            pf.reset()
            for k in idx:
                b = pf.update(probs[k], float(val.times[k]))
                if labels[k] >= 0:
                    correct += int(b.argmax() == labels[k])
                    total += 1
        acc = correct / max(total, 1)
        scores.append((p, q, acc))
        if acc > best_acc:
            best, best_acc = (p, q), acc
    if tol > 0:
        ok = [(p, -acc, q) for p, q, acc in scores if acc >= best_acc - tol]
        p, neg_acc, q = min(ok)
        best, best_acc = (p, q), -neg_acc
    pf.emission_power, pf.prior_power = best
    pf.reset()
    log.info("%s filter emission/prior power %s (val acc %.3f)", key, best, best_acc)
    return pf


def tune_phase_filter(pf: PhaseFilter, predict, val: LabelledFrames) -> PhaseFilter:
    """Tune the phase filter on ``val`` (see :func:`tune_state_filter`)."""
    return tune_state_filter(pf, predict, val, "phase")
