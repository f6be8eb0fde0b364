"""vision.synth.cholec_plan / cholec_anatomy: the scene's phase tables follow the one phase
list (vision.labels.PHASES) and the geometry helpers do what the renderer relies on."""

from __future__ import annotations

import numpy as np
import pytest

from vision.labels import PHASES
from vision.synth.cholec_anatomy import CAMERA_TARGETS, _noisy_ring, _polyline_at
from vision.synth.cholec_plan import PHASE_WEIGHTS, plan_cholecystectomy


def test_phase_tables_follow_the_cholec80_phase_list():
    assert list(PHASE_WEIGHTS) == list(PHASES)
    assert list(CAMERA_TARGETS) == list(PHASES)
    assert [p.name for p in plan_cholecystectomy(60.0, 1, []).phases] == list(PHASES)


def test_polyline_at_walks_by_arc_length():
    pts = np.array([(0.0, 0.0), (1.0, 0.0), (1.0, 3.0)])  # lengths 1 and 3
    assert _polyline_at(pts, 0.0) == pytest.approx([0.0, 0.0])
    assert _polyline_at(pts, 0.25) == pytest.approx([1.0, 0.0])
    assert _polyline_at(pts, 0.5) == pytest.approx([1.0, 1.0])
    assert _polyline_at(pts, 1.0) == pytest.approx([1.0, 3.0])


def test_noisy_ring_without_harmonics_is_a_circle():
    ring = _noisy_ring(np.array([0.1, -0.2]), 0.3, np.zeros((4, 2)), n=12)
    assert ring.shape == (12, 2)
    assert np.hypot(ring[:, 0] - 0.1, ring[:, 1] + 0.2) == pytest.approx(np.full(12, 0.3))
    bumpy = _noisy_ring(np.zeros(2), 0.3, np.array([[0.1, 0.0]]), n=40)
    r = np.hypot(bumpy[:, 0], bumpy[:, 1])
    assert r.max() == pytest.approx(0.33, abs=1e-3) and r.min() == pytest.approx(0.27, abs=1e-3)
