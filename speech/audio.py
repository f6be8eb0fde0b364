"""Audio loading and sources: files (any rate / channels / container), microphone, pushed chunks.

Everything inside ``speech`` works on float32 mono PCM at 16 kHz in [-1, 1] (``SAMPLE_RATE``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speech.errors import SpeechError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
#: Samples in one 32 ms chunk at 16 kHz (silero-vad's window).
CHUNK = 512


@dataclass(frozen=True)
class AudioInfo:
    """What a file held before conversion: rate in Hz, channels, duration in seconds."""

    source_rate: int
    source_channels: int
    duration_s: float
    clipped_fraction: float
    peak: float


def resample(x: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono float audio from ``rate`` to ``target`` Hz (polyphase, anti-aliased).

    The result is kept in [-1, 1]: the filter rings past full scale on clipped input."""
    if rate == target or x.size == 0:
        return x.astype(np.float32, copy=False)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    y = resample_poly(x, target // g, int(rate) // g).astype(np.float32)
    return np.clip(y, -1.0, 1.0, out=y)


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average channels: (n,) or (n, ch) -> (n,) float32."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    return x


def pcm16_to_float(b: bytes) -> np.ndarray:
    """Little-endian PCM16 bytes -> float32 in [-1, 1]."""
    if len(b) % 2:
        b = b[:-1]
    return np.frombuffer(b, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(x: np.ndarray) -> bytes:
    """Float audio in [-1, 1] -> little-endian PCM16 bytes (clipped)."""
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


@contextlib.contextmanager
def _quiet_c_stderr() -> Iterator[None]:
    """Silence C libraries (libsndfile / mpg123 / ffmpeg) writing to fd 2 on corrupt input."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _decode_with_av(path: Path) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(str(path)) as container:
            streams = [s for s in container.streams if s.type == "audio"]
            if not streams:
                raise SpeechError(f"{path}: no audio track")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            parts: list[np.ndarray] = []
            for frame in container.decode(streams[0]):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
    except SpeechError:
        raise
    except Exception as exc:  # av raises many types for corrupt input
        raise SpeechError(f"{path}: cannot decode audio ({type(exc).__name__})") from None
    x = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return x.astype(np.float32), SAMPLE_RATE


def load_audio_with_info(path: str | Path) -> tuple[np.ndarray, AudioInfo]:
    """Read a WAV/FLAC/OGG file or the audio track of a video; return 16 kHz mono float32.

    Raises SpeechError (one line) for a missing, empty or undecodable file.
    """
    p = Path(path)
    if p.is_dir():
        feed_audio = p / "audio.wav"
        if not feed_audio.exists():
            raise SpeechError(f"{p}: a directory without audio.wav")
        p = feed_audio
    if not p.exists():
        raise SpeechError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise SpeechError(f"{p}: empty file (zero length)")
    import soundfile as sf

    try:
        with _quiet_c_stderr():
            data, rate = sf.read(str(p), dtype="float32", always_2d=True)
        channels = data.shape[1]
    except Exception:
        # Not a soundfile format (e.g. MP4): try the container decoder.
        with _quiet_c_stderr():
            data, rate = _decode_with_av(p)
        channels = 1
        data = data[:, None]
    if data.shape[0] == 0:
        raise SpeechError(f"{p}: audio has zero samples")
    mono = to_mono(data)
    peak = float(np.max(np.abs(mono))) if mono.size else 0.0
    clipped = float(np.mean(np.abs(data) >= 0.999)) if data.size else 0.0
    x = resample(mono, int(rate))
    if not np.all(np.isfinite(x)):
        raise SpeechError(f"{p}: audio contains NaN or infinite samples")
    info = AudioInfo(int(rate), int(channels), data.shape[0] / float(rate), clipped, peak)
    return x, info


def load_audio(path: str | Path) -> np.ndarray:
    """Read any audio file (or a feed folder's audio.wav) as 16 kHz mono float32."""
    return load_audio_with_info(path)[0]


def audio_from_bytes(blob: bytes) -> np.ndarray:
    """Decode an in-memory audio file (WAV/FLAC/OGG) to 16 kHz mono float32."""
    import soundfile as sf

    if not blob:
        raise SpeechError("empty audio buffer (zero length)")
    try:
        data, rate = sf.read(io.BytesIO(blob), dtype="float32", always_2d=True)
    except Exception:
        raise SpeechError("audio buffer is not a readable WAV/FLAC/OGG file") from None
    return resample(to_mono(data), int(rate))


def write_wav(path: str | Path, x: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """Write float audio as PCM16 WAV. Callers must hold consent for recorded speech."""
    import soundfile as sf

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(p), np.clip(x, -1, 1), rate, subtype="PCM_16")
    return p


def chunks(x: np.ndarray, size: int = CHUNK, pad: bool = True) -> Iterator[np.ndarray]:
    """Split audio into consecutive chunks of ``size`` samples (last one zero-padded)."""
    n = len(x)
    for i in range(0, n, size):
        c = x[i : i + size]
        if len(c) < size:
            if not pad:
                return
            c = np.pad(c, (0, size - len(c)))
        yield c


class AudioSource:
    """Interface: iterate 16 kHz mono float32 chunks of ``CHUNK`` samples; ``close()`` stops."""

    def __iter__(self) -> Iterator[np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Stop producing chunks."""


class FileSource(AudioSource):
    """Chunks from a file; ``realtime=True`` paces them at the audio's own rate."""

    def __init__(self, path: str | Path, realtime: bool = False, chunk: int = CHUNK) -> None:
        self.audio = load_audio(path)
        self.realtime = realtime
        self.chunk = chunk
        self._stop = threading.Event()

    def __iter__(self) -> Iterator[np.ndarray]:
        t0 = time.monotonic()
        for i, c in enumerate(chunks(self.audio, self.chunk)):
            if self._stop.is_set():
                return
            if self.realtime:
                due = t0 + i * self.chunk / SAMPLE_RATE
                time.sleep(max(0.0, due - time.monotonic()))
            yield c

    def close(self) -> None:
        self._stop.set()


class PushSource(AudioSource):
    """Chunks pushed by another thread (e.g. the web UI); bounded and lossless.

    ``push`` blocks up to ``timeout_s`` when full, then raises SpeechError (the alarm), so audio
    is never dropped silently. Any rate / channel count is accepted and converted.
    """

    def __init__(self, maxsize: int = 256, chunk: int = CHUNK, timeout_s: float = 2.0) -> None:
        self._q: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=maxsize)
        self._buf = np.zeros(0, np.float32)
        self.chunk = chunk
        self.timeout_s = timeout_s
        self._lock = threading.Lock()

    def push(self, samples: np.ndarray, rate: int = SAMPLE_RATE, channels: int = 1) -> None:
        """Add interleaved samples (int16 or float) at ``rate`` Hz with ``channels`` channels."""
        x = np.asarray(samples)
        if x.dtype == np.int16:
            x = x.astype(np.float32) / 32768.0
        x = x.astype(np.float32).reshape(-1)
        if channels > 1:
            x = x[: len(x) // channels * channels].reshape(-1, channels).mean(axis=1)
        x = resample(x, rate)
        with self._lock:
            self._buf = np.concatenate([self._buf, x])
            while len(self._buf) >= self.chunk:
                c, self._buf = self._buf[: self.chunk], self._buf[self.chunk :]
                try:
                    self._q.put(c, timeout=self.timeout_s)
                except queue.Full:
                    raise SpeechError("audio input queue full: the consumer is stalled") from None

    def close(self) -> None:
        try:
            self._q.put(None, timeout=self.timeout_s)
        except queue.Full:
            pass

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            c = self._q.get()
            if c is None:
                return
            yield c


class MicrophoneSource(AudioSource):
    """Microphone through sounddevice (pip extra ``mic``); 16 kHz mono, bounded queue."""

    def __init__(self, device: int | str | None = None, maxsize: int = 512) -> None:
        try:
            import sounddevice as sd
        except (ImportError, OSError) as exc:
            raise SpeechError(
                f"microphone needs sounddevice + PortAudio: pip install '.[mic]' and "
                f"apt-get install libportaudio2 ({exc})"
            ) from None
        self._sd = sd
        self._q: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=maxsize)
        self.overflows = 0

        def cb(indata, frames, t, status):  # noqa: ANN001 - sounddevice callback signature
            try:
                self._q.put_nowait(indata[:, 0].copy())
            except queue.Full:
                self.overflows += 1
                log.error("microphone queue full: %d chunks lost", self.overflows)

        try:
            self._stream = sd.InputStream(
                samplerate=SAMPLE_RATE, channels=1, dtype="float32", blocksize=CHUNK,
                device=device, callback=cb,
            )
            self._stream.start()
        except Exception as exc:
            raise SpeechError(f"cannot open microphone: {exc}") from None

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            c = self._q.get()
            if c is None:
                return
            yield c

    def close(self) -> None:
        try:
            self._stream.stop()
            self._stream.close()
        finally:
            try:
                self._q.put_nowait(None)
            except queue.Full:
                pass


def check_audio(x: np.ndarray) -> str | None:
    """Describe a problem with 16 kHz audio that makes recognition pointless, or None."""
    if x.size == 0:
        return "zero-length audio"
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    if rms < 1e-4:
        return "silence (no signal)"
    return None
