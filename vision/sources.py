"""Video sources behind one interface: files (decord, PyAV, OpenCV), cameras, stream URLs.

Every source yields ``(frame_index, media_time_s, rgb)`` with ``rgb`` an (H, W, 3) uint8
array. A recorded file that ends before its index says (cut or corrupt) stops cleanly after
its last decodable frame and sets ``truncated`` with the reason, so the caller keeps what
was decoded and can still report the problem.

Odd inputs are normalised here: any pixel format (grayscale, 4:4:4, 10-bit) becomes RGB24,
odd and tiny sizes pass through unchanged, frames whose size changes mid-stream are resized
to the size the source announced, and variable-frame-rate files keep each frame's own
presentation time. A live stream URL that drops mid-stream is reopened with exponential
backoff (:class:`ReconnectingSource`); indices and media times continue across reconnects.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision.errors import VisionError

log = logging.getLogger(__name__)

FILE_BACKENDS = ("pyav", "decord", "opencv")
#: Chosen by ``benchmarks/bench_decoders.py`` (see benchmarks/results/decoders.md): PyAV is
#: within a few per cent of the fastest here, and the only one that decodes every frame of a
#: cut file and also opens stream URLs.
DEFAULT_FILE_BACKEND = "pyav"
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass(frozen=True)
class SourceInfo:
    """What a source delivers: frame rate (Hz), size (px), frame count if known."""

    uri: str
    backend: str
    fps: float
    width: int
    height: int
    n_frames: int | None
    live: bool


class VideoSource(ABC):
    """A video source; iterate it for frames, ``close`` it when done."""

    info: SourceInfo
    truncated: str | None = None

    @abstractmethod
    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        """Yield (frame index, media time in s, RGB uint8 HxWx3)."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release the decoder / device."""

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VisionError(f"video file not found: {path}")
    if path.is_dir():
        raise VisionError(f"{path} is a folder, not a video file")
    if path.stat().st_size == 0:
        raise VisionError(f"video file is empty (0 bytes): {path}")


def _sane_fps(fps: float | None, uri: str) -> float:
    if fps is None or not np.isfinite(fps) or fps <= 0 or fps > 1000:
        log.warning("%s: no usable frame rate in the stream, assuming 30 fps", uri)
        return 30.0
    return float(fps)


class PyAVSource(VideoSource):
    """Files and stream URLs (RTSP / HTTP) through PyAV (FFmpeg)."""

    def __init__(self, uri: str, timeout_s: float = 5.0, threads: int = 0) -> None:
        import av

        self._av = av
        live = bool(_URL.match(uri)) and not uri.startswith("file://")
        options = {"rtsp_transport": "tcp"} if uri.startswith("rtsp") else {}
        try:
            self._container = av.open(uri, timeout=(timeout_s, timeout_s), options=options)
        except av.error.FFmpegError as exc:
            raise VisionError(f"cannot open video {uri}: {_av_reason(exc)}") from None
        except OSError as exc:
            raise VisionError(f"cannot open video {uri}: {exc.strerror or exc}") from None
        if not self._container.streams.video:
            self._container.close()
            raise VisionError(f"no video stream in {uri}")
        self._stream = self._container.streams.video[0]
        # Frame threading can deadlock FFmpeg when a network stream breaks mid-frame and the
        # decoder is freed (seen with a dropped HTTP stream): live streams use slice threads.
        self._stream.thread_type = "SLICE" if live else "AUTO"
        if threads:
            self._stream.thread_count = threads
        ctx = self._stream.codec_context
        if not ctx.width or not ctx.height:
            self._container.close()
            raise VisionError(f"cannot decode video {uri}: no frame size in the stream")
        n = self._stream.frames or None
        fps = float(self._stream.average_rate) if self._stream.average_rate else None
        self.info = SourceInfo(uri, "pyav", _sane_fps(fps, uri), ctx.width, ctx.height, n, live)

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        av = self._av
        i = 0
        fps = self.info.fps
        size = (self.info.width, self.info.height)
        try:
            for frame in self._container.decode(self._stream):
                t = float(frame.time) if frame.time is not None else i / fps
                yield i, t, _fit(frame.to_ndarray(format="rgb24"), size, self.info.uri)
                i += 1
        except (av.error.FFmpegError, EOFError) as exc:
            self.truncated = f"decoding stopped at frame {i}: {_av_reason(exc)}"
        expected = self.info.n_frames
        if self.truncated is None and expected and i < expected and not self.info.live:
            self.truncated = f"file ends at frame {i} of {expected} (cut or corrupt)"
        if i == 0 and self.truncated is None:
            self.truncated = "no decodable frame"

    def close(self) -> None:
        try:
            self._container.close()
        except Exception:  # closing a broken container must not raise
            pass


def _fit(rgb: np.ndarray, size: tuple[int, int], uri: str) -> np.ndarray:
    """``rgb`` resized to ``size`` (w, h) when a stream changed its frame size mid-way."""
    h, w = rgb.shape[:2]
    if (w, h) == size:
        return rgb
    import cv2

    log.warning("%s: frame size changed to %dx%d; scaled to %dx%d", uri, w, h, *size)
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _av_reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(";")[0].strip().rstrip(":") or type(exc).__name__


class DecordSource(VideoSource):
    """Files through decord (random access, fast seek; reads the whole index at open)."""

    def __init__(self, uri: str, threads: int = 0) -> None:
        import decord

        self._decord = decord
        try:
            self._vr = decord.VideoReader(uri, ctx=decord.cpu(0), num_threads=threads)
        except Exception as exc:  # decord raises DECORDError / RuntimeError
            raise VisionError(f"cannot decode video {uri}: {_decord_reason(exc)}") from None
        n = len(self._vr)
        if n == 0:
            raise VisionError(f"cannot decode video {uri}: no frames")
        h, w = self._vr[0].shape[:2]
        self._vr.seek(0)
        fps = _sane_fps(self._vr.get_avg_fps(), uri)
        self.info = SourceInfo(uri, "decord", fps, int(w), int(h), n, False)

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        fps = self.info.fps
        n = self.info.n_frames or 0
        for i in range(n):
            try:
                arr = self._vr.next().asnumpy()
            except StopIteration:
                self.truncated = f"file ends at frame {i} of {n} (cut or corrupt)"
                return
            except Exception as exc:
                self.truncated = f"decoding stopped at frame {i}: {_decord_reason(exc)}"
                return
            yield i, i / fps, arr

    def close(self) -> None:
        del self._vr


def _decord_reason(exc: BaseException) -> str:
    """decord's messages start with a time stamp and a source path: keep the reason."""
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    line = re.sub(r"^\[[0-9:]+\]\s*\S+:\d+:\s*", "", line)
    return line.removeprefix("Error: ").removeprefix("ERROR ") or type(exc).__name__


class OpenCVSource(VideoSource):
    """Files, camera indices and URLs through OpenCV's FFmpeg / V4L2 back ends."""

    def __init__(self, uri: str | int, timeout_s: float = 5.0) -> None:
        import cv2

        self._cv2 = cv2
        live = isinstance(uri, int) or bool(_URL.match(str(uri)))
        if isinstance(uri, int):
            cap = cv2.VideoCapture(uri)
            what = f"camera {uri}"
        else:
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(timeout_s * 1000),
            ]
            cap = cv2.VideoCapture(str(uri), cv2.CAP_FFMPEG, params)
            what = f"video {uri}"
        if not cap.isOpened():
            cap.release()
            raise VisionError(f"cannot open {what}")
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if w <= 0 or h <= 0:
            cap.release()
            raise VisionError(f"cannot decode {what}: no frame size")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if not live else 0
        fps = _sane_fps(cap.get(cv2.CAP_PROP_FPS), str(uri))
        self._cap = cap
        self.info = SourceInfo(str(uri), "opencv", fps, w, h, n or None, live)

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        cv2 = self._cv2
        i = 0
        fps = self.info.fps
        while True:
            ok, bgr = self._cap.read()
            if not ok:
                break
            t_ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
            t = t_ms / 1000.0 if t_ms > 0 or i == 0 else i / fps
            if bgr.ndim == 2:
                rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
            else:
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield i, t, rgb
            i += 1
        expected = self.info.n_frames
        if expected and i < expected:
            self.truncated = f"file ends at frame {i} of {expected} (cut or corrupt)"
        elif i == 0:
            self.truncated = "no decodable frame"

    def close(self) -> None:
        self._cap.release()


def _env_number(name: str, default: float, kind: type) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise VisionError(f"{name}={text!r} is not a number") from None
    if value < 0:
        raise VisionError(f"{name} must be >= 0, got {text}")
    return value


class ReconnectingSource(VideoSource):
    """A live stream that is reopened with exponential backoff when it drops mid-stream.

    ``opener()`` opens the stream (raises VisionError when it cannot). The first open happens
    here, so a URL that does not answer still fails at once with a one-line error. When the
    stream ends or breaks, it is reopened after ``base_s``, 2x, 4x ... (capped at ``cap_s``)
    seconds, at most ``retries`` times in a row; a reconnect that delivers frames resets the
    count. Frame indices and media times continue across reconnects (each new connection's
    times are shifted to follow the last frame). ``reconnects`` counts the successful
    reopenings, ``attempts`` every try; ``truncated`` says why the stream finally ended.
    ``close()`` (any thread) stops retrying. Defaults (5 tries, 0.5 s doubling to 8 s: about
    15 s without a picture before giving up) can be changed with the environment variables
    ``COPILOT_STREAM_RETRIES`` and ``COPILOT_STREAM_BACKOFF_S``.
    """

    def __init__(self, opener: Callable[[], VideoSource], retries: int | None = None,
                 base_s: float | None = None, cap_s: float = 8.0) -> None:
        self._opener = opener
        self.retries = retries if retries is not None else _env_number(
            "COPILOT_STREAM_RETRIES", 5, int)
        self.base_s = base_s if base_s is not None else _env_number(
            "COPILOT_STREAM_BACKOFF_S", 0.5, float)
        self.cap_s = cap_s
        self._src: VideoSource | None = opener()
        self.info = self._src.info
        self.reconnects = 0
        self.attempts = 0
        self.gaps_s: list[float] = []  # wall time without frames per reconnect (s)
        self._closed = threading.Event()
        self._iterating = False

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        self._iterating = True
        try:
            yield from self._frames()
        finally:
            self._iterating = False
            if self._src is not None:  # closed by the thread that decodes it
                self._src.close()
                self._src = None

    def _frames(self) -> Iterator[tuple[int, float, np.ndarray]]:
        i = 0
        offset = 0.0  # added to this connection's media times
        last_t: float | None = None
        dt = 1.0 / self.info.fps
        size = (self.info.width, self.info.height)
        while not self._closed.is_set():
            src = self._src
            first: float | None = None
            got = 0
            if src is not None:
                for _, t, rgb in src:
                    if first is None:
                        first = t
                        if last_t is not None:
                            offset = last_t + dt - t
                    last_t = t + offset
                    got += 1
                    yield i, last_t, _fit(rgb, size, self.info.uri)
                    i += 1
                    if self._closed.is_set():
                        return
                reason = src.truncated or "the stream ended"
                src.close()
                self._src = None
            else:
                reason = "the stream ended"
            if self._closed.is_set():
                return
            dropped_at = time.monotonic()
            log.warning("%s: %s after frame %d; reconnecting", self.info.uri, reason, i)
            if not self._reopen():
                self.truncated = (f"stream lost after frame {i}: {reason}; "
                                  f"{self.retries} reconnect attempts failed")
                return
            self.gaps_s.append(round(time.monotonic() - dropped_at, 3))

    def _reopen(self) -> bool:
        """Reopen with backoff; False after ``retries`` failed tries or on close."""
        for attempt in range(self.retries):
            delay = min(self.cap_s, self.base_s * 2 ** attempt)
            if self._closed.wait(delay):
                return False
            self.attempts += 1
            try:
                self._src = self._opener()
            except VisionError as exc:
                log.warning("%s: reconnect %d failed: %s", self.info.uri, attempt + 1, exc)
                continue
            self.reconnects += 1
            return True
        return False

    def close(self) -> None:
        """Stop (any thread). While a thread iterates, that thread closes the decoder after
        its current frame (freeing it under a running decoder can deadlock FFmpeg)."""
        self._closed.set()
        if not self._iterating and self._src is not None:
            self._src.close()
            self._src = None


def open_source(
    spec: str | int | os.PathLike[str], backend: str | None = None, timeout_s: float = 5.0,
    reconnect: bool = True,
) -> VideoSource:
    """Open a file path, camera index (int or digits) or URL with ``backend``.

    ``backend`` None picks: files -> DEFAULT_FILE_BACKEND, URLs -> pyav, cameras -> opencv.
    Stream URLs are wrapped in :class:`ReconnectingSource` unless ``reconnect`` is False.
    Raises VisionError with a one-line reason when the source cannot be opened.
    """
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        if backend not in (None, "opencv"):
            raise VisionError(f"camera sources need the opencv backend, not {backend!r}")
        return OpenCVSource(int(spec), timeout_s=timeout_s)
    text = os.fspath(spec)
    if _URL.match(text) and not text.startswith("file://"):
        backend = backend or "pyav"
        opener: Callable[[], VideoSource]
        if backend == "pyav":
            opener = lambda: PyAVSource(text, timeout_s=timeout_s)  # noqa: E731
        elif backend == "opencv":
            opener = lambda: OpenCVSource(text, timeout_s=timeout_s)  # noqa: E731
        else:
            raise VisionError(f"stream URLs need the pyav or opencv backend, not {backend!r}")
        return ReconnectingSource(opener) if reconnect else opener()
    path = Path(text.removeprefix("file://"))
    _check_file(path)
    backend = backend or DEFAULT_FILE_BACKEND
    if backend == "pyav":
        return PyAVSource(str(path))
    if backend == "decord":
        return DecordSource(str(path))
    if backend == "opencv":
        return OpenCVSource(str(path))
    raise VisionError(f"unknown video backend {backend!r}; choose one of {FILE_BACKENDS}")
