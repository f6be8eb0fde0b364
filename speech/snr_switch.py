"""Front-end switch of the grammar recogniser: raw or denoised audio per utterance.

``estimate_snr_db`` of the utterance's first ``SNR_WINDOW_S`` seconds picks the front end
(below ``SNR_SWITCH_DB``: denoised, with the gain floors below); ``_NoiseRise`` measures, per
1 s window, the share of the input the suppressor removes, so that a shadow denoised decode
can take over when noise rises after a clean start (``NOISE_RISE_DB``, ``NOISE_SHARE_MIN_DB``).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from speech.audio import SAMPLE_RATE

#: Shadow front end: the denoised result is taken when some 1 s window after the start loses
#: at least this share of its energy to the suppressor (dB; clean speech: -16 to -21 dB).
NOISE_SHARE_MIN_DB = -8.0
#: ... and that share is this much (dB) above the start's (``PocketsphinxASR.noise_rise_db``).
NOISE_RISE_DB = 5.0

#: Gain floor of the recogniser's Wiener filter (dB): -15 dB (``Denoiser``'s default) cost
#: accuracy on the dev set at 5 dB, -8 dB gained (74/103 vs 65/103 raw).
DENOISE_FLOOR_DB = -8.0
#: Gain floor of the learned denoiser (dB).
NEURAL_FLOOR_DB = -20.0
#: ``denoise="auto"`` filters an utterance whose ``estimate_snr_db`` is below this (dB).
SNR_SWITCH_DB = 14.0
#: Audio looked at for that estimate (the listener's 0.5 s pre-roll + the start of speech).
SNR_WINDOW_S = 0.8


def estimate_snr_db(x: np.ndarray) -> float:
    """Crude SNR of an utterance's start (dB): 90th minus 10th percentile of the 32 ms frame
    energies (the pre-roll gives the noise floor, the first words the speech level)."""
    n = len(x) // 512
    if n < 2:
        return float("inf")
    f = np.asarray(x[: n * 512], np.float64).reshape(n, 512)
    db = 10.0 * np.log10(np.mean(f * f, axis=1) + 1e-12)
    return float(np.percentile(db, 90) - np.percentile(db, 10))


class _NoiseRise:
    """How much of the input the suppressor removes, per window (for the shadow front end).

    The input is delayed by the denoiser's ``delay`` samples to line up with its output;
    per ``WINDOW`` of samples the removed share (dB) is ``10 log10(sum max(in^2 - out^2, 0) /
    sum in^2)``. Clean speech loses -16 to -21 dB of its energy (the real two-speaker
    sample.wav, 1 s windows), speech under suction or diathermy -2 to -11 dB.
    """

    WINDOW = SAMPLE_RATE  # samples per window (1 s)
    STEP = 512  # the window slides by this many samples (32 ms)

    def __init__(self, delay: int) -> None:
        self._tail = np.zeros(delay, np.float32)
        self._win: deque[tuple[float, float, int]] = deque()  # (energy in, removed, samples)
        self._n = 0
        self._e = self._r = 0.0
        self.max_db = -math.inf

    @staticmethod
    def share_db(removed: float, energy: float) -> float:
        """Removed share of ``energy`` in dB (-inf for silence)."""
        return 10.0 * math.log10(removed / energy) if energy > 0 and removed > 0 else -math.inf

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        """Account input ``x`` and the suppressor's output ``y`` (same length), in steps of
        ``STEP`` samples."""
        xd = np.concatenate([self._tail, x])
        self._tail = xd[len(x):]
        e_in = xd[: len(x)].astype(np.float64) ** 2
        rem = np.maximum(e_in - y.astype(np.float64) ** 2, 0.0)
        for i in range(0, len(x), self.STEP):
            e, r = float(e_in[i:i + self.STEP].sum()), float(rem[i:i + self.STEP].sum())
            self._win.append((e, r, min(self.STEP, len(x) - i)))
            self._e += e
            self._r += r
            self._n += self._win[-1][2]
            while self._n - self._win[0][2] >= self.WINDOW:
                e0, r0, n0 = self._win.popleft()
                self._e -= e0
                self._r -= r0
                self._n -= n0
            if self._n >= self.WINDOW:
                self.max_db = max(self.max_db, self.share_db(self._r, self._e))

    def current_db(self) -> float:
        """Removed share over what the window holds now (dB)."""
        return self.share_db(self._r, self._e)
