"""Trace spans on one clock, written as JSONL, plus in-memory latency statistics.

One line per span: ``{"stage", "name", "trace_id", "frame_id", "t0_ns", "t1_ns", "dur_ms",
...attrs}``; events have ``t0_ns == t1_ns``. All times come from the runtime clock.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from copilot import stats
from copilot.clock import SYSTEM_CLOCK, Clock


class Tracer:
    """Collects spans; writes JSONL when ``path`` is given; thread-safe."""

    def __init__(self, path: Path | None = None, clock: Clock = SYSTEM_CLOCK, keep: int = 4096):
        self.clock = clock
        self.path = Path(path) if path else None
        self._fh: TextIO | None = None
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "w", encoding="utf-8", buffering=1 << 16)
        self._lock = threading.Lock()
        self._durations: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=keep))
        self._last_flush_ns = clock.now_ns()
        #: called with (stage, name, attrs) for every point event (faults, restarts, ...)
        self.listeners: list[Callable[[str, str, dict[str, Any]], None]] = []

    def span(
        self,
        stage: str,
        name: str,
        trace_id: str,
        t0_ns: int,
        t1_ns: int,
        frame_id: int | None = None,
        **attrs: Any,
    ) -> None:
        """Record that ``stage`` did ``name`` for ``trace_id`` from t0 to t1 (ns)."""
        dur_ms = (t1_ns - t0_ns) / 1e6
        rec = {
            "stage": stage,
            "name": name,
            "trace_id": trace_id,
            "frame_id": frame_id,
            "t0_ns": t0_ns,
            "t1_ns": t1_ns,
            "dur_ms": round(dur_ms, 4),
        }
        if attrs:
            rec.update(attrs)
        with self._lock:
            self._durations[f"{stage}.{name}"].append(dur_ms)
            if self._fh is not None:
                self._fh.write(json.dumps(rec, default=str) + "\n")
                if t1_ns - self._last_flush_ns > 500_000_000:
                    self._fh.flush()
                    self._last_flush_ns = t1_ns

    def event(self, stage: str, name: str, trace_id: str = "-", **attrs: Any) -> None:
        """Record a point event (fault, restart, drop alarm) now."""
        t = self.clock.now_ns()
        self.span(stage, name, trace_id, t, t, **attrs)
        for fn in self.listeners:
            try:
                fn(stage, name, attrs)
            except Exception:  # noqa: BLE001 - a listener must never break the caller
                pass

    def percentiles(self, key: str, qs: tuple[float, ...] = (50, 95, 99)) -> dict[str, float]:
        """Percentiles (ms) of the recent durations of ``stage.name``."""
        with self._lock:
            data = np.array(self._durations.get(key, ()), dtype=np.float64)
        if data.size == 0:
            return {}
        return stats.percentiles(data, qs) | {"n": int(data.size)}

    def keys(self) -> list[str]:
        """Every ``stage.name`` seen so far."""
        with self._lock:
            return sorted(self._durations)

    def close(self) -> None:
        """Flush and close the JSONL file."""
        with self._lock:
            if self._fh is not None:
                self._fh.flush()
                self._fh.close()
                self._fh = None


def read_trace(path: Path) -> list[dict[str, Any]]:
    """Read a trace JSONL file (a line cut by a crash is skipped)."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out
