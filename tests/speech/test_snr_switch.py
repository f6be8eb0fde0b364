"""speech.snr_switch: the recogniser's raw / denoised front-end decision."""

from __future__ import annotations

import math

import numpy as np
import pytest

from speech.snr_switch import SNR_SWITCH_DB, _NoiseRise, estimate_snr_db


def test_snr_of_a_quiet_preroll_then_speech():
    rng = np.random.default_rng(0)
    floor = 0.01 * rng.standard_normal(8000)
    loud = 0.1 * rng.standard_normal(8000)  # 20 dB above the floor
    snr = estimate_snr_db(np.concatenate([floor, loud]).astype(np.float32))
    assert snr == pytest.approx(20.0, abs=1.0)
    assert snr > SNR_SWITCH_DB  # decoded raw
    flat = estimate_snr_db((0.1 * rng.standard_normal(16000)).astype(np.float32))
    assert flat < SNR_SWITCH_DB  # as loud throughout: noisy, denoised


def test_snr_needs_two_frames():
    assert estimate_snr_db(np.zeros(1023, np.float32)) == math.inf


def test_removed_share_in_db():
    assert _NoiseRise.share_db(1.0, 10.0) == pytest.approx(-10.0)
    assert _NoiseRise.share_db(0.0, 10.0) == -math.inf  # nothing removed
    assert _NoiseRise.share_db(1.0, 0.0) == -math.inf  # silence
