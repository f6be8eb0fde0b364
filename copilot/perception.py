"""Perception for the copilot: vision results -> findings -> a bounded, queryable timeline.

``findings_from_result`` maps one ``vision.pipeline.VisionResult`` to ``Finding`` messages
(the vision stage calls it); ``observations_from_findings`` turns them into
``kg_reasoning.timeline.Observation``s; :class:`PerceptionTimeline` keeps them with bounded
memory and answers the reasoner's window queries (it implements ``TimelineLike``).

Finding kinds and names (``vision.labels``):

- ``structure``: each segmented class except instruments; attrs ``area`` (fraction of the
  field of view, 0-1), ``centroid`` ([x, y] normalised 0-1), ``bbox`` ([x0, y0, x1, y1] frame
  px), ``polygons`` (list of N x 2 int32 arrays in frame px; left out of the timeline).
- ``instrument``: segmented instrument classes (grasper, l_hook, clip_applier, scissors; same
  attrs) and the tool-presence head (Cholec80 names, e.g. ``Clipper``; attrs ``head:
  "tools"``) when its probability is >= ``TOOL_MIN``.
- ``region``: the most probable region after the model's temporal filter; attrs ``frame``
  (the unfiltered top region), ``frame_w`` / ``frame_h`` (px).
- ``phase`` and ``cvs`` (one finding per criterion, score = probability): only when the
  region head says abdominal cavity (``VisionResult.laparoscopic``).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from copilot.clock import SYSTEM_CLOCK, Clock
from copilot.messages import Finding
from kg_reasoning.timeline import Observation

SOURCE = "vision"
#: Tool-presence probability at which a Cholec80 tool is reported.
TOOL_MIN = 0.5
#: Segmentation classes reported as instruments.
INSTRUMENTS = frozenset({"grasper", "l_hook", "clip_applier", "scissors"})
#: Attributes kept in the timeline / session (polygons stay in the live finding only).
OBS_ATTRS = ("area", "centroid", "bbox", "head", "frame", "pulsatile", "pulsatile_score",
             "colour", "location")


def findings_from_result(result: Any, frame_id: int, media_t_s: float, trace_id: str = "",
                         clock: Clock = SYSTEM_CLOCK, polygons: bool = True) -> list[Finding]:
    """One ``VisionResult`` -> findings (see the module docstring for kinds and attrs).

    ``polygons``: include ``attrs["polygons"]`` for structures and instruments (a contour
    search at model resolution per class, ~0.05 ms each).
    """
    now = clock.now_ns()
    tid = trace_id or f"f{frame_id}"
    base = {"t_ns": now, "trace_id": tid, "media_t_s": float(media_t_s), "frame_id": frame_id,
            "source": SOURCE}
    out: list[Finding] = []
    for f in result.findings:
        if f.name == "background":
            continue
        attrs: dict[str, Any] = {
            "area": round(float(f.area_fraction), 5),
            "centroid": [round(float(f.centroid[0]), 4), round(float(f.centroid[1]), 4)],
            "bbox": [int(v) for v in f.bbox],
        }
        if polygons:
            attrs["polygons"] = [np.asarray(p, np.int32) for p in f.polygons]
        kind = "instrument" if f.name in INSTRUMENTS else "structure"
        out.append(Finding(**base, kind=kind, name=f.name, score=float(f.confidence),
                           attrs=attrs))
    for name, p in result.tools.items():
        if p >= TOOL_MIN:
            out.append(Finding(**base, kind="instrument", name=name, score=float(p),
                               attrs={"head": "tools"}))
    region = result.region_name
    frame_region = max(result.region_frame, key=result.region_frame.get) \
        if result.region_frame else region
    w, h = result.frame_size
    out.append(Finding(**base, kind="region", name=region, score=float(result.region[region]),
                       attrs={"frame": frame_region, "frame_w": int(w), "frame_h": int(h)}))
    if result.laparoscopic:
        phase = result.phase_name
        out.append(Finding(**base, kind="phase", name=phase, score=float(result.phase[phase])))
        for name, p in result.cvs.items():
            out.append(Finding(**base, kind="cvs", name=name, score=float(p)))
    return out


def observation_of(f: Finding, media_t_s: float | None = None) -> Observation:
    """A finding as a timeline observation (attrs limited to ``OBS_ATTRS``)."""
    t = media_t_s if media_t_s is not None else (f.media_t_s or 0.0)
    attrs = {k: f.attrs[k] for k in OBS_ATTRS if k in f.attrs}
    return Observation(float(t), int(f.frame_id), f.kind, f.name, float(f.score), attrs)


def observations_from_findings(findings: Iterable[Finding], media_t_s: float | None = None
                               ) -> list[Observation]:
    """Findings -> observations (the kg_reasoning timeline's type)."""
    return [observation_of(f, media_t_s) for f in findings]


class _Series:
    """Observations of one kind in time order, with their times for bisection."""

    __slots__ = ("obs", "times")

    def __init__(self) -> None:
        self.obs: list[Observation] = []
        self.times: list[float] = []

    def add(self, o: Observation) -> None:
        if self.times and o.t_s < self.times[-1]:  # out of order (rare): insert in place
            i = bisect.bisect_right(self.times, o.t_s)
            self.times.insert(i, o.t_s)
            self.obs.insert(i, o)
        else:
            self.times.append(o.t_s)
            self.obs.append(o)

    def window(self, t0: float, t1: float) -> list[Observation]:
        return self.obs[bisect.bisect_left(self.times, t0):bisect.bisect_right(self.times, t1)]

    def cut_before(self, t: float) -> list[Observation]:
        """Remove and return the observations older than ``t``."""
        i = bisect.bisect_left(self.times, t)
        old = self.obs[:i]
        del self.obs[:i]
        del self.times[:i]
        return old

    def drop_first(self, n: int) -> None:
        del self.obs[:n]
        del self.times[:n]

    def __len__(self) -> int:
        return len(self.obs)


class PerceptionTimeline:
    """Bounded perception memory that the reasoner can query (``TimelineLike``).

    - recent detail: every observation of the last ``recent_s`` seconds (at most
      ``record_hz`` frames per second are recorded, so the memory does not depend on how
      fast the vision stage runs);
    - history: older observations downsampled to one per (kind, name) per ``history_step_s``
      for structures / instruments and per ``fine_step_s`` for region / phase / cvs / event
      (the best score of the bucket is kept), capped at ``max_history`` observations (the
      oldest go first).

    Thread-safe: vision appends, speech queries.
    """

    COARSE = ("structure", "instrument")

    def __init__(self, recent_s: float = 120.0, record_hz: float = 5.0,
                 history_step_s: float = 1.0, fine_step_s: float = 0.2,
                 max_history: int = 200_000) -> None:
        self.recent_s = recent_s
        self.record_dt = 1.0 / record_hz if record_hz > 0 else 0.0
        self.history_step_s = history_step_s
        self.fine_step_s = fine_step_s
        self.max_history = max_history
        self._lock = threading.RLock()
        self._recent: dict[str, _Series] = {}
        self._history: dict[str, _Series] = {}
        self._bucket: dict[tuple[str, str], tuple[int, int]] = {}  # -> (bucket, index in hist)
        self._last_frame_t: float | None = None
        self._latest: float | None = None
        self._earliest: float | None = None
        self._n_added = 0
        self.frames = 0

    # ---------------------------------------------------------------- writing
    def wants(self, t_s: float) -> bool:
        """Would a frame at ``t_s`` be recorded (``record_hz`` throttle)?"""
        with self._lock:
            return self._last_frame_t is None or t_s - self._last_frame_t >= \
                self.record_dt * 0.999 or t_s < self._last_frame_t

    def add_frame(self, t_s: float, observations: Iterable[Observation], force: bool = False
                  ) -> bool:
        """Record one analysed frame's observations; False when throttled away."""
        with self._lock:
            if not force and not self.wants(t_s):
                return False
            self._last_frame_t = t_s
            self.frames += 1
            for o in observations:
                self._add(o)
            self._evict()
            return True

    def add(self, o: Observation) -> None:
        """Record one observation (events, replay)."""
        with self._lock:
            self._add(o)
            self._evict()

    def extend(self, observations: Iterable[Observation]) -> None:
        """Record many observations (replay); no throttling."""
        with self._lock:
            for o in observations:
                self._add(o)
            self._evict()

    def _add(self, o: Observation) -> None:
        self._recent.setdefault(o.kind, _Series()).add(o)
        self._latest = o.t_s if self._latest is None else max(self._latest, o.t_s)
        self._earliest = o.t_s if self._earliest is None else min(self._earliest, o.t_s)
        self._n_added += 1

    def _evict(self) -> None:
        if self._latest is None:
            return
        cut = self._latest - self.recent_s
        for kind, series in self._recent.items():
            if not series.times or series.times[0] >= cut:
                continue
            step = self.history_step_s if kind in self.COARSE else self.fine_step_s
            hist = self._history.setdefault(kind, _Series())
            for o in series.cut_before(cut):
                b = int(o.t_s // step) if step > 0 else o.frame_id
                key = (kind, o.name)
                prev = self._bucket.get(key)
                if prev is not None and prev[0] == b and prev[1] < len(hist) \
                        and hist.obs[prev[1]].name == o.name:
                    if o.score > hist.obs[prev[1]].score:
                        hist.obs[prev[1]] = o
                    continue
                hist.add(o)
                self._bucket[key] = (b, len(hist) - 1)
        total = sum(len(s) for s in self._history.values())
        if total > self.max_history:  # drop 10 % more than needed: amortised trimming
            self._trim_history(total - self.max_history + self.max_history // 10)

    def _trim_history(self, n: int) -> None:
        # drop the oldest ~n observations across kinds, then re-index the buckets
        times = sorted(t for s in self._history.values() for t in s.times)
        if n >= len(times):
            self._history.clear()
        else:
            t_cut = times[n]
            for s in self._history.values():
                s.cut_before(t_cut)
        self._bucket.clear()
        if self._history:
            self._earliest = min((s.times[0] for s in self._history.values() if s.times),
                                 default=self._earliest)

    # ---------------------------------------------------------------- reading
    def window(self, t0_s: float, t1_s: float, kind: str | None = None) -> list[Observation]:
        """Observations with ``t0_s <= t_s <= t1_s`` (optionally one ``kind``), time order."""
        with self._lock:
            kinds = [kind] if kind is not None else sorted(set(self._recent) | set(self._history))
            out: list[Observation] = []
            for k in kinds:
                h = self._history.get(k)
                r = self._recent.get(k)
                if h is not None:
                    out.extend(h.window(t0_s, t1_s))
                if r is not None:
                    out.extend(r.window(t0_s, t1_s))
            if kind is None:
                out.sort(key=lambda o: (o.t_s, o.frame_id))
            return out

    def latest_t(self) -> float | None:
        """Time (s) of the newest observation, or None when empty."""
        with self._lock:
            return self._latest

    def earliest_t(self) -> float | None:
        """Time (s) of the oldest observation kept, or None when empty."""
        with self._lock:
            return self._earliest

    def __len__(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._recent.values()) + \
                sum(len(s) for s in self._history.values())

    def sizes(self) -> dict[str, int]:
        """Observation counts: recent, history, added (for memory checks)."""
        with self._lock:
            return {"recent": sum(len(s) for s in self._recent.values()),
                    "history": sum(len(s) for s in self._history.values()),
                    "added": self._n_added}

    def rate_hz(self, kind: str, t0_s: float, t1_s: float) -> float:
        """Observed frames per second of ``kind`` in a window (0 when fewer than 2)."""
        obs = self.window(t0_s, t1_s, kind)
        frames = sorted({o.t_s for o in obs})
        if len(frames) < 2:
            return 0.0
        return (len(frames) - 1) / max(1e-6, frames[-1] - frames[0])
