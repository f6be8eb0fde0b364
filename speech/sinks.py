"""Where spoken output goes: the ``Sink`` interface, ``NullSink`` (discards audio in real
time, for tests and headless runs) and ``SoundDeviceSink`` (a loudspeaker)."""

from __future__ import annotations

import time

import numpy as np

from speech.errors import SpeechError


class Sink:
    """Where audio goes. ``write(block, rate)`` blocks for about the block's duration."""

    def write(self, block: np.ndarray, rate: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Release the device."""


class NullSink(Sink):
    """Discards audio but takes real time (``speed`` x faster), for tests and headless runs."""

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed
        self.samples = 0

    def write(self, block: np.ndarray, rate: int) -> None:
        self.samples += len(block)
        time.sleep(len(block) / rate / self.speed)


class SoundDeviceSink(Sink):
    """Loudspeaker through sounddevice (pip extra ``mic``)."""

    def __init__(self, device: int | str | None = None) -> None:
        try:
            import sounddevice as sd
        except (ImportError, OSError) as exc:
            raise SpeechError(f"audio output needs sounddevice: pip install '.[mic]' ({exc})"
                              ) from None
        self._sd = sd
        self.device = device
        self._stream = None
        self._rate = 0

    def write(self, block: np.ndarray, rate: int) -> None:
        if self._stream is None or rate != self._rate:
            self.close()
            self._stream = self._sd.OutputStream(samplerate=rate, channels=1, dtype="float32",
                                                 device=self.device)
            self._stream.start()
            self._rate = rate
        self._stream.write(np.asarray(block, np.float32).reshape(-1, 1))

    def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None
