"""Clocks: one monotonic time base (ns) for every stage, injectable for tests."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """A monotonic clock in nanoseconds that can also sleep."""

    def now_ns(self) -> int:
        """Current monotonic time in ns."""
        ...

    def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` (s) of this clock's time."""
        ...


class MonotonicClock:
    """The real clock: ``time.monotonic_ns`` and ``time.sleep``."""

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that only moves when told to: for tests of timing logic.

    ``sleep`` blocks the calling thread until another thread advances the clock past the
    wake-up time (or returns at once when ``autoadvance`` is set).
    """

    def __init__(self, start_ns: int = 0, autoadvance: bool = False) -> None:
        self._now = start_ns
        self._cond = threading.Condition()
        self.autoadvance = autoadvance

    def now_ns(self) -> int:
        with self._cond:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (s) and wake sleepers that are due."""
        with self._cond:
            self._now += int(seconds * 1e9)
            self._cond.notify_all()

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._cond:
            wake = self._now + int(seconds * 1e9)
            if self.autoadvance:
                self._now = max(self._now, wake)
                self._cond.notify_all()
                return
            while self._now < wake:
                self._cond.wait(timeout=0.05)


SYSTEM_CLOCK = MonotonicClock()
