"""vision.temporal_fit: the phase / region filters fitted on label sequences."""

from __future__ import annotations

import numpy as np
import pytest

from vision.datasets.common import LabelledFrames
from vision.labels import CVS_CRITERIA, PHASES, REGIONS, SEGMENTS, TOOLS
from vision.temporal_fit import REGION_FAST, fit_phase_filter, fit_state_filter


def _frames(seqs: list[list[int]], dt_s: float, key: str) -> LabelledFrames:
    """1x1 frames carrying per-video ``key`` labels at ``dt_s`` intervals (other key -1)."""
    lab = np.concatenate([np.asarray(s, np.int64) for s in seqs])
    n = len(lab)
    none = np.full(n, -1, np.int64)
    return LabelledFrames(
        images=np.zeros((n, 1, 1, 3), np.uint8), masks=np.zeros((n, 1, 1), np.uint8),
        phase=lab if key == "phase" else none, region=lab if key == "region" else none,
        cvs=np.zeros((n, len(CVS_CRITERIA)), np.float32), cvs_valid=np.zeros(n, bool),
        tools=np.zeros((n, len(TOOLS)), np.float32), tools_valid=np.zeros(n, bool),
        times=np.concatenate([np.arange(len(s)) * dt_s for s in seqs]),
        video=np.concatenate([np.full(len(s), i, np.int64) for i, s in enumerate(seqs)]),
        sources=[f"v/{i}" for i in range(len(seqs))], fps=[1.0 / dt_s] * len(seqs))


def test_region_filter_is_an_ordered_route_with_the_fast_step():
    route = [REGIONS.index(s) for s in SEGMENTS]
    seq = [route[0]] * 10 + [route[1]] * 10 + [route[2]] * 10
    pf = fit_state_filter(_frames([seq, seq], 0.5, "region"), "region")
    assert pf.n == len(REGIONS) and pf.order == route
    assert pf.evidence_dt_s == pytest.approx(0.5)  # emissions calibrated per frame interval
    assert (pf.fast_p, pf.fast_s, pf.fast_frames) == (
        REGION_FAST["fast_p"], REGION_FAST["fast_s"], REGION_FAST["fast_frames"])


def test_phase_filter_learns_the_observed_transition():
    seq = [0] * 20 + [1] * 20 + [2] * 20
    pf = fit_phase_filter(_frames([seq], 1.0, "phase"))
    assert pf.n == len(PHASES) and pf.order == [] and pf.fast_p == 0.0
    assert pf.rate[0, 1] > pf.rate[0, 2]  # 0 -> 1 was seen, 0 -> 2 was not


def test_no_usable_sequence_gives_the_uniform_filter():
    pf = fit_state_filter(_frames([[3], [-1, -1, -1]], 1.0, "phase"), "phase")
    assert pf.n == len(PHASES)
    off = pf.rate[~np.eye(pf.n, dtype=bool)]
    assert np.allclose(off, off[0])  # no learnt structure
