"""Ordered-route region filter: structure, evidence per second, and the shipped parameters."""

from __future__ import annotations

import numpy as np

from vision.labels import REGIONS, SEGMENTS
from vision.temporal import PhaseFilter

ORDER = [REGIONS.index(s) for s in SEGMENTS]
N = len(REGIONS)


def _survey(fps: float, dwell_s: float = 4.0) -> np.ndarray:
    """Per-frame region labels of a survey through every segment in order."""
    return np.repeat(np.array(ORDER), int(dwell_s * fps))


def _probs(label: int, p: float = 0.8, second: int | None = None, q: float = 0.0
           ) -> np.ndarray:
    """Frame probabilities: ``p`` on ``label``, ``q`` on ``second``, the rest spread."""
    v = np.full(N, (1.0 - p - q) / (N - 2))
    v[label] = p
    if second is not None:
        v[second] = q
    return v


def test_route_fit_is_left_to_right() -> None:
    pf = PhaseFilter.fit([_survey(8.0), _survey(8.0, 5.0)], [8.0, 8.0], N, order=ORDER,
                         skip_frac=0.1, off_route_rate=1e-7)
    d3, d4, jej = (REGIONS.index(s) for s in ("duodenum_d3", "duodenum_d4", "jejunum"))
    r = pf.rate
    assert r[d3, d4] > 0.15  # fitted exit rate, ~1 / 4.5 s
    assert np.isclose(r[d3, jej], 0.1 * r[d3, d4])  # one skipped segment allowed
    assert r[d4, d3] == 1e-7  # never backwards
    assert r[ORDER[0], ORDER[-1]] == 1e-7  # no long jumps
    assert np.allclose(r.sum(axis=1), 0.0)
    back = PhaseFilter.from_dict(pf.to_dict())
    assert back.belief_floor == pf.belief_floor and np.allclose(back.rate, r)


def test_route_filter_does_not_jump_back_or_far() -> None:
    """A burst of a segment that is out of order (earlier, or three ahead) is not taken
    while the true segment keeps some probability (the encoder's typical confusion)."""
    pf = PhaseFilter.fit([_survey(8.0)], [8.0], N, order=ORDER)
    pf.evidence_dt_s = 1 / 8
    pf.emission_power = 0.5
    caecum, ileum, desc = (REGIONS.index(s) for s in ("caecum", "ileum", "descending_colon"))
    t = 0.0
    for _ in range(40):  # settle in the caecum
        pf.update(_probs(caecum), t)
        t += 1 / 25
    for wrong in (ileum, desc):
        for _ in range(25):  # one second of a confident wrong segment at 25 fps
            b = pf.update(_probs(wrong, 0.7, caecum, 0.2), t)
            t += 1 / 25
        assert int(np.argmax(b)) == caecum, REGIONS[int(np.argmax(b))]


def test_evidence_per_second_independent_of_frame_rate() -> None:
    """With evidence_dt_s set, 1 s of frames moves the belief the same at 8 and 25 fps."""
    d1, d2 = REGIONS.index("duodenum_d1"), REGIONS.index("duodenum_d2")
    beliefs = []
    for fps in (8.0, 25.0):
        pf = PhaseFilter.fit([_survey(8.0)], [8.0], N, order=ORDER)
        pf.evidence_dt_s = 1 / 8
        pf.update(_probs(d1, 0.99), 0.0)
        n = int(fps * 0.5)
        for k in range(1, n + 1):
            b = pf.update(_probs(d2, 0.6), k / fps)
        beliefs.append(float(b[d2]))
    assert abs(beliefs[0] - beliefs[1]) < 0.15, beliefs


def test_shipped_region_filter_is_ordered() -> None:
    from vision import modelio

    pf = PhaseFilter.load(modelio.resolve_model_dir(None) / modelio.REGION_TEMPORAL)
    assert pf.evidence_dt_s > 0
    for a, i in enumerate(ORDER[:-1]):
        assert pf.rate[i, ORDER[a + 1]] > 0.05
        for j in ORDER[:a]:
            assert pf.rate[i, j] < 1e-5  # no way back to an earlier segment
