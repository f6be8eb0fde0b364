"""Streaming noise suppression for the recogniser's input (STFT Wiener filter).

The noise power spectrum is tracked per frequency bin by minimum statistics (the minimum of
the smoothed power over the last ``window_s`` seconds, times a bias), so it follows the
stationary part of OR noise (ventilation hum, pink room tone, beeps that repeat within the
window) while speech, which does not sit at a bin's minimum for long, passes. Gains use the
decision-directed a-priori SNR (Ephraim-Malah) with a floor so that no musical noise is
created. 16 kHz, 512-sample frames, hop 256 (16 ms); ``process`` takes any chunk size and
returns the same number of samples, delayed by ``n_fft`` samples (32 ms) whatever the chunk
size.
"""

from __future__ import annotations

import numpy as np


class Denoiser:
    """Stateful Wiener-filter denoiser; ``process(chunk) -> chunk`` (float32, 16 kHz)."""

    def __init__(self, n_fft: int = 512, window_s: float = 1.5, floor_db: float = -15.0,
                 alpha: float = 0.96, bias: float = 1.6) -> None:
        self.n = n_fft
        self.hop = n_fft // 2
        self.win = np.sqrt(np.hanning(n_fft + 1)[:-1]).astype(np.float64)
        self.frames_window = max(4, int(window_s * 16000 / self.hop))
        self.floor = 10 ** (floor_db / 20.0)
        self.alpha = alpha
        self.bias = bias
        self.reset()

    def reset(self) -> None:
        """Forget the noise estimate and buffers."""
        nb = self.n // 2 + 1
        self._in = np.zeros(0, np.float64)
        self._ola = np.zeros(self.n, np.float64)
        self._smooth = None
        self._hist: list[np.ndarray] = []
        self._noise = None
        self._prev_clean = np.zeros(nb)
        # a fixed delay of n_fft samples: enough for any chunk size (the overlap-add has
        # produced all but at most n_fft - 1 of the samples given so far)
        self._out = np.zeros(self.n, np.float64)

    def _frame(self, frame: np.ndarray) -> np.ndarray:
        spec = np.fft.rfft(frame * self.win)
        clean = self._gains(spec, np.abs(spec) ** 2) * spec
        return np.fft.irfft(clean, self.n) * self.win

    def _gains(self, spec: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Gain per bin (0-1) for one frame's spectrum ``spec`` with power ``p``."""
        self._smooth = p if self._smooth is None else 0.7 * self._smooth + 0.3 * p
        self._hist.append(self._smooth.copy())
        if len(self._hist) > self.frames_window:
            self._hist.pop(0)
        noise = np.min(np.stack(self._hist), axis=0) * self.bias
        self._noise = noise
        nz = np.maximum(self._noise, 1e-12)
        post = p / nz
        prio = self.alpha * self._prev_clean / nz + (1 - self.alpha) * np.maximum(post - 1, 0)
        gain = np.maximum(prio / (1 + prio), self.floor)
        self._prev_clean = gain * gain * p
        return gain

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Denoise ``chunk``; returns as many samples as given (delayed by ``n_fft``)."""
        self._in = np.concatenate([self._in, np.asarray(chunk, np.float64)])
        produced = []
        while len(self._in) >= self.n:
            y = self._frame(self._in[: self.n])
            self._ola += y
            produced.append(self._ola[: self.hop].copy())
            self._ola = np.concatenate([self._ola[self.hop :], np.zeros(self.hop)])
            self._in = self._in[self.hop :]
        if produced:
            self._out = np.concatenate([self._out, *produced])
        k = len(chunk)
        out, self._out = self._out[:k], self._out[k:]
        return out.astype(np.float32)


def denoise(x: np.ndarray) -> np.ndarray:
    """Denoise a whole signal (16 kHz float32) with a fresh ``Denoiser``."""
    d = Denoiser()
    out = [d.process(x[i : i + 512]) for i in range(0, len(x), 512)]
    return np.concatenate(out).astype(np.float32) if out else x.astype(np.float32)
