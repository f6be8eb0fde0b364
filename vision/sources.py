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

The interface is ``vision.source_base``, the reconnecting stream ``vision.reconnect`` (both
re-exported here).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from vision.errors import VisionError
from vision.reconnect import ReconnectingSource
from vision.reconnect import _env_number as _env_number
from vision.source_base import SourceInfo, VideoSource, _fit

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_FILE_BACKEND", "FILE_BACKENDS", "DecordSource", "OpenCVSource", "PyAVSource",
           "ReconnectingSource", "SourceInfo", "VideoSource", "open_source"]

FILE_BACKENDS = ("pyav", "decord", "opencv")
#: Chosen by ``benchmarks/bench_decoders.py`` (see benchmarks/results/decoders.md): PyAV is
#: within a few per cent of the fastest here, and the only one that decodes every frame of a
#: cut file and also opens stream URLs.
DEFAULT_FILE_BACKEND = "pyav"
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


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
