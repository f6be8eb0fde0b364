"""copilot.pulse: a beating vessel's outline is called pulsatile, a still or drifting one is
not, and too short a sighting gives no verdict."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from copilot.pulse import PulseTracker


def _finding(name: str, area: float, kind: str = "structure") -> SimpleNamespace:
    return SimpleNamespace(name=name, kind=kind, attrs={"area": area})


def _scores(areas: list[float], hz: float = 5.0, name: str = "large_vessel") -> list:
    pt = PulseTracker()
    out = []
    for k, a in enumerate(areas):
        f = _finding(name, a)
        pt.update(k / hz, [f])
        out.append(f.attrs.get("pulsatile_score"))
    return out


def _series(n: int, beat: float, drift: float, noise: float, seed: int = 0) -> list[float]:
    """Mask areas (image fraction) sampled at 5 Hz: a 1.2 Hz beat of relative size ``beat``,
    a linear drift (relative per second) and multiplicative noise."""
    rng = np.random.default_rng(seed)
    return [0.03 * (1 + drift * k / 5) * (1 + beat * math.sin(2 * math.pi * 1.2 * k / 5))
            * (1 + noise * rng.standard_normal()) for k in range(n)]


def test_a_beating_vessel_is_pulsatile() -> None:
    s = _scores(_series(40, beat=0.08, drift=0.05, noise=0.01))
    known = [v for v in s if v is not None]
    assert np.mean(np.array(known) >= 0.5) > 0.8


@pytest.mark.parametrize("drift", [0.0, 0.15])
def test_a_still_or_drifting_outline_is_not(drift: float) -> None:
    s = _scores(_series(40, beat=0.0, drift=drift, noise=0.02))
    known = [v for v in s if v is not None]
    assert known and np.mean(np.array(known) >= 0.5) < 0.1


def test_too_short_a_sighting_gives_no_verdict() -> None:
    assert all(v is None for v in _scores(_series(6, beat=0.1, drift=0.0, noise=0.0)))


def test_other_classes_and_instruments_are_not_scored() -> None:
    pt = PulseTracker()
    fs = [_finding("gallbladder", 0.2), _finding("large_vessel", 0.03, kind="instrument")]
    for k in range(30):
        pt.update(k / 5, fs)
    assert all("pulsatile_score" not in f.attrs for f in fs)


def test_a_replay_or_a_new_sighting_starts_again() -> None:
    pt = PulseTracker()
    areas = _series(30, beat=0.08, drift=0.0, noise=0.0)
    for k, a in enumerate(areas):
        pt.update(k / 5, [_finding("large_vessel", a)])
    back = _finding("large_vessel", areas[0])
    pt.update(0.0, [back])  # the media clock went back: one sample only
    assert "pulsatile_score" not in back.attrs
    pt.update(0.2, [])  # out of view
    again = _finding("large_vessel", areas[1])
    pt.update(0.4, [again])
    assert "pulsatile_score" not in again.attrs
