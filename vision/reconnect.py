"""A live stream reopened with exponential backoff when it drops (``ReconnectingSource``)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from vision.errors import VisionError
from vision.source_base import VideoSource, _fit

log = logging.getLogger(__name__)


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

    ``clock()`` (s) measures ``gaps_s``; ``sleep(s)``, when given, is the backoff's wait
    (then ``close()`` is seen when it returns). The defaults are the real clock and a wait
    on the close event that ``close()`` cuts short; a test passes a fake clock's.
    """

    def __init__(self, opener: Callable[[], VideoSource], retries: int | None = None,
                 base_s: float | None = None, cap_s: float = 8.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] | None = None) -> None:
        self._opener = opener
        self._clock = clock
        self._sleep = sleep
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
            dropped_at = self._clock()
            log.warning("%s: %s after frame %d; reconnecting", self.info.uri, reason, i)
            if not self._reopen():
                self.truncated = (f"stream lost after frame {i}: {reason}; "
                                  f"{self.retries} reconnect attempts failed")
                return
            self.gaps_s.append(round(self._clock() - dropped_at, 3))

    def _reopen(self) -> bool:
        """Reopen with backoff; False after ``retries`` failed tries or on close."""
        for attempt in range(self.retries):
            delay = min(self.cap_s, self.base_s * 2 ** attempt)
            if self._wait(delay):
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

    def _wait(self, delay_s: float) -> bool:
        """Wait ``delay_s`` (s) before the next try; True when closed meanwhile."""
        if self._sleep is None:
            return self._closed.wait(delay_s)
        self._sleep(delay_s)
        return self._closed.is_set()

    def close(self) -> None:
        """Stop (any thread). While a thread iterates, that thread closes the decoder after
        its current frame (freeing it under a running decoder can deadlock FFmpeg)."""
        self._closed.set()
        if not self._iterating and self._src is not None:
            self._src.close()
            self._src = None
