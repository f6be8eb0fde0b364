"""The perception timeline as the reasoner sees it: plain observations with times.

The copilot's perception timeline (built in ``copilot/``) adapts to this type. An
:class:`Observation` is one finding of one model on one frame:

- ``t_s``: media time of the frame in seconds (float, monotonic within a feed).
- ``frame_id``: the frame index the finding came from.
- ``kind``: one of ``structure`` (a segmented anatomy / finding class, e.g. "cystic_duct",
  "large_vessel", "blood"), ``instrument`` (e.g. "grasper", "clip_applier"), ``phase``
  (a Cholec80 phase name, e.g. "CalotTriangleDissection"), ``cvs`` (a CVS criterion:
  "two_structures", "hepatocystic_triangle_cleared", "cystic_plate_exposed"), ``region``
  (a region head class: "abdominal_cavity", a bowel segment such as "duodenum_d3", or
  "out_of_body"), ``event`` (e.g. "clip_applied", "bleeding_onset", "cautery").
- ``name``: the class name as in ``vision.labels`` (strings, not imported).
- ``score``: model probability / confidence in [0, 1].
- ``attrs``: optional cues: ``area`` (fraction of the frame, 0-1), ``centroid`` ([x, y]
  normalised 0-1, origin top left), ``colour`` (a colour word), ``pulsatile`` (bool),
  ``pulsatile_score`` (0-1), ``tubular`` (bool), ``location`` (for events); a compacted
  history observation (a run of frames) also has ``frames`` (how many frames it stands for,
  see :func:`weight`) and ``t_end`` (time of its last frame, s, see :func:`t_end_of`).

:class:`Timeline` keeps observations sorted by time and answers window queries with
binary search (microseconds for thousands of observations).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kg_reasoning.errors import KGError

KINDS = ("structure", "instrument", "phase", "cvs", "region", "event")


@dataclass(frozen=True, slots=True)
class Observation:
    """One finding on one frame (see module docstring for the fields and their units)."""

    t_s: float
    frame_id: int
    kind: str
    name: str
    score: float = 1.0
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the session-log line without ``type``)."""
        d: dict[str, Any] = {
            "t_s": round(self.t_s, 3),
            "frame_id": self.frame_id,
            "kind": self.kind,
            "name": self.name,
            "score": round(self.score, 4),
        }
        if self.attrs:
            d["attrs"] = dict(self.attrs)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Observation:
        """Build from a mapping with t_s, frame_id, kind, name, score, attrs; KGError if bad."""
        try:
            kind = str(d["kind"])
            if kind not in KINDS:
                raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
            attrs = d.get("attrs") or {}
            if not isinstance(attrs, dict):
                raise ValueError("attrs must be an object")
            return cls(
                float(d["t_s"]),
                int(d["frame_id"]),
                kind,
                str(d["name"]),
                float(d.get("score", 1.0)),
                dict(attrs),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise KGError(f"bad observation {d!r}: {exc}") from exc


def weight(o: Observation) -> int:
    """How many frames ``o`` stands for (1, or ``attrs["frames"]`` of a history run)."""
    n = o.attrs.get("frames", 1) if o.attrs else 1
    return n if isinstance(n, int) and n > 0 else 1


def t_end_of(o: Observation) -> float:
    """Time of the last frame ``o`` stands for (s): ``attrs["t_end"]`` or ``t_s``."""
    t = o.attrs.get("t_end") if o.attrs else None
    return float(t) if isinstance(t, int | float) and t >= o.t_s else o.t_s


class TimelineLike(Protocol):
    """What the reasoner needs from a timeline (the copilot's timeline can implement this)."""

    def window(self, t0_s: float, t1_s: float, kind: str | None = None) -> list[Observation]:
        """Observations with t0_s <= t_s <= t1_s (optionally of one kind), in time order."""
        ...

    def latest_t(self) -> float | None:
        """Time of the newest observation, or None when empty."""
        ...


class Timeline:
    """Observations kept sorted by time, indexed by kind."""

    def __init__(self, observations: Iterable[Observation] = ()) -> None:
        self._by_kind: dict[str, list[Observation]] = {}
        self._times: dict[str, list[float]] = {}
        self._all: list[Observation] = []
        self.extend(observations)

    def extend(self, observations: Iterable[Observation]) -> None:
        """Add observations (any order)."""
        new = list(observations)
        if not new:
            return
        self._all = sorted([*self._all, *new], key=lambda o: (o.t_s, o.frame_id))
        self._by_kind = {}
        for o in self._all:
            self._by_kind.setdefault(o.kind, []).append(o)
        self._times = {k: [o.t_s for o in v] for k, v in self._by_kind.items()}
        self._times[""] = [o.t_s for o in self._all]

    def add(self, o: Observation) -> None:
        """Add one observation."""
        self.extend([o])

    def __len__(self) -> int:
        return len(self._all)

    def __iter__(self) -> Iterator[Observation]:
        return iter(self._all)

    def window(self, t0_s: float, t1_s: float, kind: str | None = None) -> list[Observation]:
        """Observations with ``t0_s <= t_s <= t1_s`` (optionally of one ``kind``)."""
        seq = self._all if kind is None else self._by_kind.get(kind, [])
        times = self._times.get(kind or "", [])
        lo = bisect.bisect_left(times, t0_s)
        hi = bisect.bisect_right(times, t1_s)
        return seq[lo:hi]

    def latest_t(self) -> float | None:
        """Time of the newest observation (s), or None when empty."""
        return self._all[-1].t_s if self._all else None

    def earliest_t(self) -> float | None:
        """Time of the oldest observation (s), or None when empty."""
        return self._all[0].t_s if self._all else None

    @classmethod
    def from_jsonl(cls, path: str | Path) -> Timeline:
        """Read a session log: JSON lines typed ``observation`` (or the session's ``obs``).

        Each observation line has at least ``t_s``, ``frame_id``, ``kind``, ``name``,
        ``score`` and optionally ``attrs``; other line types are ignored.
        """
        p = Path(path)
        if not p.is_file():
            raise KGError(f"session file not found: {p}")
        obs = []
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as exc:
                raise KGError(f"{p}:{i}: not JSON ({exc.msg})") from exc
            if isinstance(d, dict) and d.get("type") in ("observation", "obs"):
                try:
                    obs.append(Observation.from_dict(d))
                except KGError as exc:
                    raise KGError(f"{p}:{i}: {exc}") from exc
        return cls(obs)
