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


def _fast_filter() -> PhaseFilter:
    pf = PhaseFilter.fit([_survey(8.0)], [8.0], N, order=ORDER)
    pf.evidence_dt_s, pf.emission_power = 1 / 8, 0.5
    pf.fast_p, pf.fast_s, pf.fast_frames = 0.85, 0.04, 2
    return pf


def _settle(pf: PhaseFilter, label: int, frames: int = 50, fps: float = 25.0) -> float:
    t = 0.0
    for _ in range(frames):
        pf.update(_probs(label, 0.95), t)
        t += 1 / fps
    return t


def test_confident_route_step_is_taken_at_once() -> None:
    """Two confident frames (>= fast_p, 40 ms) of the next segment or the one after it move
    the belief there; the plain filter takes several more frames."""
    d4, jej, ileum = (REGIONS.index(s) for s in ("duodenum_d4", "jejunum", "ileum"))
    for target in (jej, ileum):
        steps = []
        for fast in (True, False):
            pf = _fast_filter()
            if not fast:
                pf.fast_p = 0.0
            t = _settle(pf, d4)
            for k in range(1, 30):
                b = pf.update(_probs(target, 0.95), t)
                t += 1 / 25
                if int(np.argmax(b)) == target:
                    steps.append(k)
                    break
        assert steps[0] == 2, steps  # fast: on the second confident frame
        assert steps[1] > 3, steps  # plain filter: later
        assert float(b.max()) > 0.5


def test_confident_step_not_taken_backward_far_or_unsure() -> None:
    caecum, ileum, desc, asc = (REGIONS.index(s) for s in
                                ("caecum", "ileum", "descending_colon", "ascending_colon"))
    for wrong, p in ((ileum, 0.95), (desc, 0.95), (asc, 0.8)):  # back, 3 ahead, unsure
        pf = _fast_filter()
        t = _settle(pf, caecum)
        for _ in range(3):
            b = pf.update(_probs(wrong, p, caecum, 0.03), t)
            t += 1 / 25
        assert int(np.argmax(b)) == caecum, (REGIONS[wrong], REGIONS[int(np.argmax(b))])
    # a confident run broken by an unsure frame starts again
    pf = _fast_filter()
    t = _settle(pf, caecum)
    for p in (0.95, 0.6, 0.95):
        b = pf.update(_probs(asc, p, caecum, 0.03), t)
        t += 1 / 25
    assert int(np.argmax(b)) == caecum
    back = PhaseFilter.from_dict(pf.to_dict())
    assert (back.order, back.fast_p, back.fast_s, back.fast_frames) == (ORDER, 0.85, 0.04, 2)


def test_shipped_region_filter_takes_confident_steps() -> None:
    from vision import modelio

    pf = PhaseFilter.load(modelio.resolve_model_dir(None) / modelio.REGION_TEMPORAL)
    assert pf.order == ORDER and 0.5 < pf.fast_p < 1.0 and pf.fast_frames >= 2
