"""The copilot's own speech on a feed's time line, written as a WAV for offline runs."""

from __future__ import annotations

import bisect
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from speech.audio import SAMPLE_RATE
from speech.errors import SpeechError


class TimelineWavWriter:
    """The copilot's own speech placed on the feed's time line, for offline runs.

    ``add(t_s, pcm, rate)`` puts audio at ``t_s`` seconds; if it would overlap the previous
    utterance it starts when that one ends (a loudspeaker plays one thing at a time); the
    actual start is returned. The samples are spooled to an unnamed temporary file (PCM16),
    so an hours-long run keeps only a small index in memory. ``save(path, duration_s)``
    streams 16 kHz mono PCM16 to ``path`` (atomically), optionally mixed over the feed's own
    audio (``under``) so a run can be listened to.
    """

    def __init__(self, max_duration_s: float = 4 * 3600.0, spool_dir: str | Path | None = None,
                 block_s: float = 10.0) -> None:
        import tempfile

        self.max_samples = int(max_duration_s * SAMPLE_RATE)
        self.block = max(1, int(block_s * SAMPLE_RATE))
        # (start sample on the time line, offset in the spool in samples, length in samples)
        self.items: list[tuple[int, int, int]] = []
        self._spool = tempfile.TemporaryFile(dir=spool_dir)
        self._spooled = 0
        self._end = 0
        # the message being placed: start sample, input rate, samples in / out, resampler
        self._open = False
        self._msg_start = 0
        self._rate = SAMPLE_RATE
        self._n_in = 0
        self._n_out = 0
        self._stream: Any = None
        self._lock = threading.Lock()

    @property
    def end_s(self) -> float:
        """Where the last placed utterance ends on the time line (s)."""
        return self._end / SAMPLE_RATE

    def add(self, t_s: float, pcm: np.ndarray, rate: int = SAMPLE_RATE) -> float:
        """Place ``pcm`` (float or int16) at ``t_s``; returns the start actually used (s).

        Blocks that continue the previous one at the same rate go through one streaming
        resampler (soxr), so block edges leave no clicks and nothing is buffered."""
        if t_s < 0:
            raise SpeechError(f"negative time {t_s}")
        x = np.asarray(pcm).reshape(-1)
        x = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)
        with self._lock:
            start = max(int(round(t_s * SAMPLE_RATE)), self._end)
            if not (self._open and start == self._end and rate == self._rate):
                self._finish_message()
                self._msg_start, self._rate, self._n_in, self._n_out = start, rate, 0, 0
                self._stream = None
                if rate != SAMPLE_RATE:
                    import soxr

                    self._stream = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
                self._open = True
            n_exp = -(-(self._n_in + len(x)) * SAMPLE_RATE // rate)  # ceil: samples at 16 kHz
            if self._msg_start + n_exp > self.max_samples:
                raise SpeechError("timeline WAV longer than its limit")
            if len(x):
                self._append(self._stream.resample_chunk(x) if self._stream is not None else x)
                self._n_in += len(x)
            self._end = self._msg_start + n_exp
        return start / SAMPLE_RATE

    def _append(self, y: np.ndarray) -> None:
        """Spool 16 kHz samples at the current message's output position (lock held)."""
        if not len(y):
            return
        pcm = np.round(np.clip(y, -1.0, 1.0) * 32767.0).astype("<i2")
        at = self._msg_start + self._n_out
        self._spool.seek(2 * self._spooled)
        self._spool.write(pcm.tobytes())
        last = self.items[-1] if self.items else None
        if last is not None and last[0] + last[2] == at and last[1] + last[2] == self._spooled:
            self.items[-1] = (last[0], last[1], last[2] + len(pcm))  # contiguous: extend
        else:
            self.items.append((at, self._spooled, len(pcm)))
        self._spooled += len(pcm)
        self._n_out += len(pcm)

    def _finish_message(self) -> None:
        """Flush the resampler's tail of the current message (lock held)."""
        if self._open and self._stream is not None:
            self._append(self._stream.resample_chunk(np.zeros(0, np.float32), last=True))
        self._stream = None
        self._open = False

    def _speech(self, a: int, b: int) -> np.ndarray:
        """The spooled speech for time-line samples [a, b) as float32 (zeros in the gaps)."""
        out = np.zeros(b - a, np.float32)
        with self._lock:
            self._finish_message()
            i = max(0, bisect.bisect_right(self.items, (a, 1 << 62, 0)) - 1)
            for start, off, n in self.items[i:]:
                if start >= b:
                    break
                lo, hi = max(a, start), min(b, start + n)
                if lo >= hi:
                    continue
                self._spool.seek(2 * (off + lo - start))
                raw = self._spool.read(2 * (hi - lo))
                out[lo - a : hi - a] = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
        return out

    def _length(self, duration_s: float | None, under: np.ndarray | None) -> int:
        n = self._end if duration_s is None else int(round(duration_s * SAMPLE_RATE))
        if under is not None and duration_s is None:
            n = max(n, len(under))
        return n

    def render(self, duration_s: float | None = None, under: np.ndarray | None = None,
               under_gain: float = 0.5) -> np.ndarray:
        """The mixed timeline as float32 16 kHz (in memory: for short runs and tests)."""
        n = self._length(duration_s, under)
        out = self._speech(0, n)
        if under is not None:
            m = min(n, len(under))
            out[:m] += under_gain * under[:m]
        return np.clip(out, -1, 1)

    def save(self, path: str | Path, duration_s: float | None = None,
             under: np.ndarray | None = None, under_gain: float = 0.5) -> Path:
        """Write the timeline WAV block by block (the copilot's own speech: no consent
        needed); the file appears at ``path`` only when complete."""
        import soundfile as sf

        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        part = p.with_name(p.name + ".part")
        n = self._length(duration_s, under)
        with sf.SoundFile(str(part), "w", samplerate=SAMPLE_RATE, channels=1,
                          subtype="PCM_16", format="WAV") as f:
            for a in range(0, n, self.block):
                b = min(n, a + self.block)
                x = self._speech(a, b)
                if under is not None and a < len(under):
                    u = under[a : min(b, len(under))]
                    x[: len(u)] += under_gain * u
                f.write(np.clip(x, -1, 1))
        os.replace(part, p)
        return p

    def close(self) -> None:
        """Drop the spool file."""
        self._spool.close()
