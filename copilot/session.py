"""The session record: an append-only JSON-lines file, one object per line.

Every line is ``{"type": ..., "t_ns": ..., "media_t_s": ..., ...}``: ``t_ns`` is the runtime
clock (monotonic ns), ``media_t_s`` the feed position in seconds (or null). Types written by
the copilot: ``start``, ``obs`` (a perception observation,
``kg_reasoning.timeline.Observation.to_dict()``), ``alert``, ``transcript`` (addressed
commands only), ``speech`` (non-addressed speech: times only, never the words), ``answer``,
``control``, ``bookmark``, ``health``, ``fault``, ``end``.

Writing flushes every line (a crash loses at most the line being written) and fsyncs on
``alert``, ``bookmark``, ``fault`` and ``end`` lines and on close. Reading is tolerant: a line
cut by a crash (or any undecodable line) is skipped and counted.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from copilot.clock import SYSTEM_CLOCK, Clock
from copilot.errors import CopilotError

#: Line types after which the file is fsynced (they must survive a power cut / SIGKILL).
FSYNC_TYPES = frozenset({"alert", "bookmark", "fault", "end"})
#: Observation line types accepted when replaying (``observation`` is kg_reasoning's name).
OBS_TYPES = ("obs", "observation")


def jsonable(x: Any) -> Any:
    """Make ``x`` JSON-serialisable: numpy scalars / arrays, tuples, sets, paths, dataclasses."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "to_dict"):
        return jsonable(x.to_dict())
    return str(x)


class SessionLog:
    """Append-only JSONL writer; thread-safe; ``write`` never raises for odd values."""

    def __init__(self, path: str | Path, clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = Path(path)
        self.clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise CopilotError(f"cannot write the session log {self.path}: {exc}") from None
        self._lock = threading.Lock()
        self.lines = 0

    def write(self, type: str, media_t_s: float | None = None, **fields: Any) -> dict[str, Any]:
        """Append one record of ``type``; returns the record as written."""
        rec: dict[str, Any] = {"type": type, "t_ns": int(self.clock.now_ns())}
        rec["media_t_s"] = None if media_t_s is None else round(float(media_t_s), 4)
        rec.update(jsonable(fields))
        line = json.dumps(rec, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            if self._fh is None or self._fh.closed:
                return rec
            self._fh.write(line + "\n")
            self._fh.flush()
            if type in FSYNC_TYPES:
                try:
                    os.fsync(self._fh.fileno())
                except OSError:
                    pass
            self.lines += 1
        return rec

    def write_many(self, records: Iterable[tuple[str, float | None, dict[str, Any]]]) -> None:
        """Append several (type, media_t_s, fields) records with one flush."""
        out = []
        t = int(self.clock.now_ns())
        for typ, media, fields in records:
            rec: dict[str, Any] = {"type": typ, "t_ns": t}
            rec["media_t_s"] = None if media is None else round(float(media), 4)
            rec.update(jsonable(fields))
            out.append(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
        if not out:
            return
        with self._lock:
            if self._fh is None or self._fh.closed:
                return
            self._fh.write("\n".join(out) + "\n")
            self._fh.flush()
            self.lines += len(out)

    def close(self) -> None:
        """Flush, fsync and close (idempotent)."""
        with self._lock:
            if self._fh is None or self._fh.closed:
                return
            self._fh.flush()
            try:
                os.fsync(self._fh.fileno())
            except OSError:
                pass
            self._fh.close()

    def __enter__(self) -> SessionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Session:
    """A session file as read back: records in file order and how many lines were skipped."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0

    def of(self, *types: str) -> list[dict[str, Any]]:
        """Records of the given types, in file order."""
        return [r for r in self.records if r.get("type") in types]

    def first(self, type: str) -> dict[str, Any] | None:
        """The first record of ``type`` (None when absent)."""
        return next((r for r in self.records if r.get("type") == type), None)

    def observations(self) -> list[Any]:
        """The ``obs`` lines as ``kg_reasoning.timeline.Observation``s (bad ones skipped)."""
        from kg_reasoning.errors import KGError
        from kg_reasoning.timeline import Observation

        out = []
        for r in self.of(*OBS_TYPES):
            try:
                out.append(Observation.from_dict(r))
            except KGError:
                self.skipped += 1
        return out

    def timeline(self) -> Any:
        """A ``kg_reasoning.timeline.Timeline`` replayed from the ``obs`` lines."""
        from kg_reasoning.timeline import Timeline

        return Timeline(self.observations())


def iter_records(path: str | Path) -> Iterator[dict[str, Any] | None]:
    """Yield each line's record, or None for a line that does not parse (tolerant)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                yield None
                continue
            yield rec if isinstance(rec, dict) and "type" in rec else None


def read_session(path: str | Path) -> Session:
    """Read a session file; CopilotError when it is missing or holds no record at all."""
    p = Path(path)
    if p.is_dir():
        p = p / "session.jsonl"
    if not p.is_file():
        raise CopilotError(f"session file not found: {p}")
    s = Session(p)
    for rec in iter_records(p):
        if rec is None:
            s.skipped += 1
        else:
            s.records.append(rec)
    if not s.records:
        raise CopilotError(f"{p}: no session records (empty or not a session.jsonl)")
    return s


def timeline_from_session(path: str | Path) -> Any:
    """Replay a session's perception timeline (``kg_reasoning.timeline.Timeline``)."""
    return read_session(path).timeline()
