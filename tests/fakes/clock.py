"""A fake clock for timing logic, and a poll helper for waits on other threads.

``FakeClock`` is ``copilot.clock.ManualClock`` (the ``copilot.clock.Clock`` protocol: ``now_ns``
and ``sleep``) plus what tests of code that reads the ``time`` module need:

- float views in seconds (``monotonic``, ``perf_counter``, ``time``) and in ns
  (``monotonic_ns``, ``perf_counter_ns``), all the same fake time line;
- ``sleepers``: how many threads are blocked in ``sleep`` now, and ``sleeps``: how many
  ``sleep`` calls began, so a test can wait until a worker waits on the clock (again, after
  an ``advance``) instead of sleeping a fixed time; ``slept``: each call's seconds, so a
  test can read a schedule of waits (e.g. a backoff) off an ``autoadvance`` clock;
- ``install(monkeypatch, module, names)``: replaces ``module.time`` (a module that does
  ``import time``) by a stand-in whose ``names`` read this clock; every other attribute is
  the real ``time`` module's, and no other module is affected.

``wait_until(cond, timeout_s)`` polls a condition on the real clock with a generous deadline:
the replacement for a fixed ``time.sleep`` before an assertion.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from copilot.clock import ManualClock

#: the ``time`` functions a FakeClock can stand in for
TIME_NAMES: tuple[str, ...] = ("monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
                               "time", "sleep")


class FakeClock(ManualClock):
    """A ManualClock (moves only on ``advance``, or on ``sleep`` when ``autoadvance``) that
    counts its sleepers and can stand in for the ``time`` module of one module under test.

    ``start_s`` is the fake time at creation in seconds (also the ``time()`` epoch value).
    """

    def __init__(self, start_s: float = 0.0, autoadvance: bool = False) -> None:
        super().__init__(start_ns=int(round(start_s * 1e9)), autoadvance=autoadvance)
        self._sleepers = 0
        self.sleeps = 0  # sleep() calls begun
        self.slept_s = 0.0  # total seconds requested from sleep()
        self.slept: list[float] = []  # each sleep() call's seconds, in call order

    # -- Clock protocol ------------------------------------------------------------------
    def sleep(self, seconds: float) -> None:
        """Block until the clock has moved ``seconds`` (s) on (see ManualClock.sleep).

        Counted under the clock's own (reentrant) lock, the one ``advance`` takes: once a
        test sees ``sleeps`` / ``sleepers`` go up, the sleeper's wake-up time is already
        fixed, so the test's next ``advance`` is never lost to a race."""
        with self._cond:
            self._sleepers += 1
            self.sleeps += 1
            self.slept_s += max(0.0, seconds)
            self.slept.append(seconds)
            try:
                super().sleep(seconds)
            finally:
                self._sleepers -= 1

    @property
    def sleepers(self) -> int:
        """Threads blocked in ``sleep`` right now."""
        with self._cond:
            return self._sleepers

    # -- the time module's views ---------------------------------------------------------
    def monotonic(self) -> float:
        """Fake time in seconds (float)."""
        return self.now_ns() / 1e9

    def monotonic_ns(self) -> int:
        """Fake time in ns."""
        return self.now_ns()

    perf_counter = monotonic
    perf_counter_ns = monotonic_ns
    time = monotonic

    def time_module(self, names: Iterable[str] = TIME_NAMES) -> Any:
        """A stand-in for the ``time`` module: ``names`` from this clock, the rest real."""
        names = tuple(names)
        unknown = set(names) - set(TIME_NAMES)
        if unknown:
            raise ValueError(f"FakeClock cannot stand in for time.{sorted(unknown)}")
        return _TimeShim({n: getattr(self, n) for n in names})

    def install(self, monkeypatch: Any, module: ModuleType,
                names: Iterable[str] = TIME_NAMES) -> FakeClock:
        """Make ``module``'s ``time.<name>`` calls read this clock for the test's duration
        (``monkeypatch`` undoes it); returns self."""
        monkeypatch.setattr(module, "time", self.time_module(names))
        return self


class _TimeShim:
    """The real ``time`` module with some functions replaced."""

    def __init__(self, fakes: dict[str, Callable[..., Any]]) -> None:
        self.__dict__.update(fakes)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def wait_until(cond: Callable[[], object], timeout_s: float = 20.0, poll_s: float = 0.01,
               what: str = "condition") -> None:
    """Poll ``cond`` on the real clock every ``poll_s`` (s) until it is true; AssertionError
    naming ``what`` after ``timeout_s`` (s). The deadline is generous on purpose: a loaded
    machine only makes the wait longer, never the test wrong."""
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(poll_s)
