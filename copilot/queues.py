"""Bounded queues, one policy per edge.

- ``latest``: bounded, never blocks the producer; when full the oldest item is dropped and
  counted (video to analysis, live display).
- ``lossless``: bounded; when full the producer waits (backpressure) and an alarm is counted
  and logged (audio, offline video to the file writer).
- ``priority``: bounded priority lane (safety alerts before answers before information);
  when full the least urgent, oldest item is dropped and counted.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class Policy(StrEnum):
    """Queue policy of an edge."""

    LATEST = "latest"
    LOSSLESS = "lossless"
    PRIORITY = "priority"


class Closed(Exception):
    """Raised by ``get`` when the queue is closed and empty."""


@dataclass
class QueueStats:
    """Counters of one edge."""

    put: int = 0
    got: int = 0
    dropped: int = 0
    alarms: int = 0
    max_depth: int = 0


class EdgeQueue(Generic[T]):
    """A bounded queue with a policy; thread-safe; ``close()`` wakes every waiter."""

    def __init__(
        self, name: str, policy: Policy | str, maxsize: int, warn_when_full: bool = True
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"edge {name!r}: maxsize must be >= 1")
        self.name = name
        self.policy = Policy(policy)
        self.maxsize = maxsize
        self.warn_when_full = warn_when_full  # False: backpressure is by design (offline video)
        self.stats = QueueStats()
        self._cond = threading.Condition()
        self._items: deque[T] = deque()
        self._heap: list[tuple[int, int, T]] = []
        self._seq = itertools.count()
        self._closed = False
        self._alarm_active = False

    def __len__(self) -> int:
        with self._cond:
            return self._depth()

    def _depth(self) -> int:
        return len(self._heap) if self.policy is Policy.PRIORITY else len(self._items)

    @property
    def closed(self) -> bool:
        """True once ``close`` was called."""
        return self._closed

    def put(self, item: T, priority: int = 0, timeout: float | None = None) -> bool:
        """Add ``item``. Returns False if it was not queued (closed, or timed out)."""
        with self._cond:
            if self._closed:
                return False
            if self.policy is Policy.LATEST:
                if len(self._items) >= self.maxsize:
                    self._items.popleft()
                    self.stats.dropped += 1
                self._items.append(item)
            elif self.policy is Policy.LOSSLESS:
                if len(self._items) >= self.maxsize:
                    self.stats.alarms += 1
                    if not self._alarm_active:
                        self._alarm_active = True
                        say = log.warning if self.warn_when_full else log.debug
                        say("edge %s full (%d): producer waits", self.name, self.maxsize)
                    ok = self._cond.wait_for(
                        lambda: self._closed or len(self._items) < self.maxsize, timeout
                    )
                    if not ok or self._closed:
                        return False
                else:
                    self._alarm_active = False
                self._items.append(item)
            else:
                if len(self._heap) >= self.maxsize:
                    least = max(p for p, _, _ in self._heap)
                    if priority > least:
                        self.stats.dropped += 1  # the new item is the least urgent
                        return False
                    oldest = min(e for e in self._heap if e[0] == least)
                    self._heap.remove(oldest)
                    heapq.heapify(self._heap)
                    self.stats.dropped += 1
                heapq.heappush(self._heap, (priority, next(self._seq), item))
            self.stats.put += 1
            self.stats.max_depth = max(self.stats.max_depth, self._depth())
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T:
        """Take the next item; raises ``TimeoutError`` on timeout, ``Closed`` when drained."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._depth() > 0 or self._closed, timeout):
                raise TimeoutError(self.name)
            if self._depth() == 0:
                raise Closed(self.name)
            if self.policy is Policy.PRIORITY:
                item = heapq.heappop(self._heap)[2]
            else:
                item = self._items.popleft()
            self.stats.got += 1
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """No more puts; getters drain what is left, then get ``Closed``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def snapshot(self) -> dict[str, Any]:
        """Counters and depth, for status lines and session logs."""
        with self._cond:
            return {
                "edge": self.name,
                "policy": self.policy.value,
                "maxsize": self.maxsize,
                "depth": self._depth(),
                **self.stats.__dict__,
            }


class LatestSlot(Generic[T]):
    """A one-item slot: writers replace, readers wait for something newer than they saw."""

    def __init__(self, name: str = "slot") -> None:
        self.name = name
        self._cond = threading.Condition()
        self._item: T | None = None
        self._version = 0
        self._closed = False
        self.dropped = 0
        self._taken_version = 0

    def put(self, item: T) -> None:
        """Publish ``item``; an item nobody took is counted as dropped."""
        with self._cond:
            if self._version > self._taken_version:
                self.dropped += 1
            self._item = item
            self._version += 1
            self._cond.notify_all()

    def get_newer(self, seen_version: int, timeout: float | None = None) -> tuple[int, T]:
        """Wait for a version newer than ``seen_version``; returns (version, item)."""
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._version > seen_version or self._closed, timeout
            ):
                raise TimeoutError(self.name)
            if self._version <= seen_version:
                raise Closed(self.name)
            self._taken_version = self._version
            assert self._item is not None
            return self._version, self._item

    def peek(self) -> T | None:
        """The current item, without waiting."""
        with self._cond:
            return self._item

    def close(self) -> None:
        """Wake every waiter; later ``get_newer`` calls raise ``Closed``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
