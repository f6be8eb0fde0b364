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
- ``domain``: ``in_domain`` with the model's in-domain score (0-1, higher = more like the
  validated domain) and attrs ``off_label`` (bool), when the model provides one.
- ``pixel_features``: the model's per-pixel features for teaching by example
  (``copilot.teaching``), when the model outputs them; attrs ``features`` ([C, h, w]),
  ``label_map`` (model resolution) and ``fov_box`` ((x0, y0, x1, y1) frame px, which both
  cover). The brain takes it out before the timeline and the alert rules.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from copilot.clock import SYSTEM_CLOCK, Clock
from copilot.messages import Finding
from kg_reasoning.timeline import Observation, t_end_of, weight

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
    in_domain = getattr(result, "in_domain", None)
    if in_domain is not None:  # the model's own in-domain score (off-label awareness)
        out.append(Finding(**base, kind="domain", name="in_domain", score=float(in_domain),
                           attrs={"off_label": bool(getattr(result, "off_label", False))}))
    feats = getattr(result, "features", None)
    if feats is not None:  # for teaching by example (copilot.teaching); never in the timeline
        b = result.fov_box
        out.append(Finding(**base, kind="pixel_features", name="features", score=1.0,
                           attrs={"features": feats, "label_map": result.label_map,
                                  "fov_box": (b.x0, b.y0, b.x1, b.y1)}))
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

    def add(self, o: Observation) -> bool:
        """Append (or insert in time order); True when it went to the end."""
        if self.times and o.t_s < self.times[-1]:  # out of order (rare): insert in place
            i = bisect.bisect_right(self.times, o.t_s)
            self.times.insert(i, o.t_s)
            self.obs.insert(i, o)
            return False
        self.times.append(o.t_s)
        self.obs.append(o)
        return True

    def window(self, t0: float, t1: float) -> list[Observation]:
        return self.obs[bisect.bisect_left(self.times, t0):bisect.bisect_right(self.times, t1)]

    def cut_before(self, t: float) -> list[Observation]:
        """Remove and return the observations older than ``t``."""
        i = bisect.bisect_left(self.times, t)
        old = self.obs[:i]
        del self.obs[:i]
        del self.times[:i]
        return old

    def replace(self, obs: list[Observation]) -> None:
        self.obs = obs
        self.times = [o.t_s for o in obs]

    def __len__(self) -> int:
        return len(self.obs)


class _Run:
    """The history run of one (kind, name) still open for merging."""

    __slots__ = ("idx", "obs", "cls", "t0", "t_end", "n", "ssum", "best")

    def __init__(self, idx: int, obs: Observation, cls: int, n: int, best: float) -> None:
        self.idx, self.obs, self.cls = idx, obs, cls
        self.t0, self.t_end = obs.t_s, t_end_of(obs)
        self.n, self.ssum, self.best = n, obs.score * n, best


#: Score bands a history run never mixes (the thresholds the reasoner's queries use): a
#: detection at 0.5 (``ReasonerConfig.detect_min_score``), for CVS criteria also the
#: borderline band 0.4-0.6.
DEFAULT_EDGES = (0.5,)
SCORE_EDGES = {"cvs": (0.4, 0.5, 0.6)}
#: Attributes left out of history runs (the recent window keeps them).
HISTORY_DROP = ("bbox", "frame", "frames", "t_end")


class PerceptionTimeline:
    """Bounded perception memory that the reasoner can query (``TimelineLike``).

    - recent detail: every observation of the last ``recent_s`` seconds (at most
      ``record_hz`` frames per second are recorded, so the memory does not depend on how
      fast the vision stage runs);
    - history: older observations merged into runs: consecutive observations of one
      (kind, name) whose scores fall in the same band (``score_edges`` per kind, default
      ``SCORE_EDGES``), at most ``gap_s``
      apart, become one observation for up to ``run_s`` seconds (``t_s`` = the first frame,
      ``score`` = the mean, ``attrs["frames"]`` = how many frames it stands for,
      ``attrs["t_end"]`` = the last frame's time, the other attrs those of its best frame
      without ``bbox``); see ``kg_reasoning.timeline.weight``.
    - at most ``max_history`` history observations: beyond that the older half is merged
      again into runs four times as long, bridging gaps four times as wide (coarser, still
      covering the whole procedure); only when that cannot shrink it do the oldest go.

    Window queries over the history return the runs that overlap the window, clipped to it
    (their ``frames`` scaled to the part inside), so counts over long windows stay right to
    a run's length. Memory: about ``recent_s * record_hz`` frames of detail plus
    ``max_history`` runs, whatever the length of the feed.

    Thread-safe: vision appends, speech queries.
    """

    def __init__(self, recent_s: float = 120.0, record_hz: float = 5.0, run_s: float = 10.0,
                 gap_s: float = 1.0, max_history: int = 20_000,
                 score_edges: dict[str, tuple[float, ...]] | None = None) -> None:
        self.recent_s = recent_s
        self.record_dt = 1.0 / record_hz if record_hz > 0 else 0.0
        self.run_s = run_s
        self.gap_s = gap_s
        self.max_history = max_history
        self.score_edges = dict(SCORE_EDGES if score_edges is None else score_edges)
        self._lock = threading.RLock()
        self._recent: dict[str, _Series] = {}
        self._history: dict[str, _Series] = {}
        self._open: dict[tuple[str, str], _Run] = {}
        self._max_run_s = 0.0  # longest history run (s): how far back windows look
        self._level = 0  # coarsening passes so far
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

    def _band(self, kind: str, score: float) -> int:
        return bisect.bisect_right(self.score_edges.get(kind, DEFAULT_EDGES), score)

    def _evict(self) -> None:
        if self._latest is None:
            return
        cut = self._latest - self.recent_s
        for kind, series in self._recent.items():
            if not series.times or series.times[0] >= cut:
                continue
            hist = self._history.setdefault(kind, _Series())
            for o in series.cut_before(cut):
                self._to_history(hist, o)
        total = sum(len(s) for s in self._history.values())
        if total > self.max_history:
            self._shrink()

    def _to_history(self, hist: _Series, o: Observation) -> None:
        key = (o.kind, o.name)
        band = self._band(o.kind, o.score)
        n = weight(o)
        run = self._open.get(key)
        if run is not None and run.cls == band and o.t_s - run.t_end <= self.gap_s \
                and o.t_s >= run.t0 and t_end_of(o) - run.t0 <= self.run_s \
                and run.idx < len(hist) and hist.obs[run.idx] is run.obs:
            run.n += n
            run.ssum += o.score * n
            run.t_end = max(run.t_end, t_end_of(o))
            attrs = run.obs.attrs
            if o.score > run.best:
                run.best = o.score
                attrs = _compact(o.attrs)
            merged = Observation(run.t0, run.obs.frame_id, o.kind, o.name,
                                 run.ssum / run.n, {**attrs, "frames": run.n,
                                                    "t_end": round(run.t_end, 3)})
            hist.obs[run.idx] = merged
            run.obs = merged
            self._max_run_s = max(self._max_run_s, run.t_end - run.t0)
            return
        h = Observation(o.t_s, o.frame_id, o.kind, o.name, o.score,
                        {**_compact(o.attrs), "frames": n, "t_end": round(t_end_of(o), 3)})
        if hist.add(h):
            self._open[key] = _Run(len(hist) - 1, h, band, n, o.score)
        else:  # inserted in the middle: indices moved, no run stays open in this kind
            for k in [k for k in self._open if k[0] == o.kind]:
                del self._open[k]

    def _shrink(self) -> None:
        """Coarsen the older half of the history; drop the oldest if that is not enough."""
        self._open.clear()
        self._level += 1
        cap = self.run_s * 4 ** self._level  # longest run, and widest gap bridged, this pass
        gap = self.gap_s * 4 ** self._level
        times = sorted(t for s in self._history.values() for t in s.times)
        t_mid = times[len(times) // 2]
        for s in self._history.values():
            i = bisect.bisect_left(s.times, t_mid)
            out: list[Observation] = []
            last: dict[str, int] = {}
            for o in s.obs[:i]:
                j = last.get(o.name)
                if j is not None:
                    p = out[j]
                    if self._band(o.kind, p.score) == self._band(o.kind, o.score) and \
                            o.t_s - t_end_of(p) <= gap and t_end_of(o) - p.t_s <= cap:
                        out[j] = _merge(p, o)
                        self._max_run_s = max(self._max_run_s, t_end_of(out[j]) - p.t_s)
                        continue
                last[o.name] = len(out)
                out.append(o)
            s.replace(out + s.obs[i:])
        total = sum(len(s) for s in self._history.values())
        if total > self.max_history * 0.9:  # could not coarsen enough: drop the oldest
            self._trim_history(total - self.max_history * 3 // 4)

    def _trim_history(self, n: int) -> None:
        times = sorted(t for s in self._history.values() for t in s.times)
        if n >= len(times):
            self._history.clear()
        else:
            t_cut = times[n]
            for s in self._history.values():
                s.cut_before(t_cut)
        self._open.clear()
        self._earliest = min((s.times[0] for s in self._history.values() if s.times),
                             default=self._earliest)

    # ---------------------------------------------------------------- reading
    def window(self, t0_s: float, t1_s: float, kind: str | None = None) -> list[Observation]:
        """Observations overlapping ``[t0_s, t1_s]`` (optionally one ``kind``), time order.

        Recent observations are single frames; history runs that straddle a window edge
        are clipped to it (``t_s`` and ``attrs["frames"]`` / ``attrs["t_end"]`` adjusted).
        """
        with self._lock:
            kinds = [kind] if kind is not None else sorted(set(self._recent) | set(self._history))
            out: list[Observation] = []
            for k in kinds:
                h = self._history.get(k)
                r = self._recent.get(k)
                if h is not None and h.times:
                    lo = bisect.bisect_left(h.times, t0_s - self._max_run_s)
                    hi = bisect.bisect_right(h.times, t1_s)
                    for o in h.obs[lo:hi]:
                        if o.t_s >= t0_s and t_end_of(o) <= t1_s:
                            out.append(o)
                        elif t_end_of(o) >= t0_s:
                            out.append(_clip(o, t0_s, t1_s))
                if r is not None:
                    out.extend(r.window(t0_s, t1_s))
            if kind is None or len(out) > 1 and any(
                    a.t_s > b.t_s for a, b in zip(out, out[1:], strict=False)):
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
        """Observation counts: recent, history, added, frames the history stands for."""
        with self._lock:
            return {"recent": sum(len(s) for s in self._recent.values()),
                    "history": sum(len(s) for s in self._history.values()),
                    "history_frames": sum(weight(o) for s in self._history.values()
                                          for o in s.obs),
                    "added": self._n_added, "coarsened": self._level}

    def rate_hz(self, kind: str, t0_s: float, t1_s: float) -> float:
        """Observed frames per second of ``kind`` in a window (0 when fewer than 2).

        Counts distinct frames (history runs by their ``frames``), one name per frame.
        """
        obs = self.window(t0_s, t1_s, kind)
        recent = {o.t_s for o in obs if "frames" not in o.attrs}
        hist = [o for o in obs if "frames" in o.attrs]
        n = len(recent) + sum(weight(o) for o in hist)
        if n < 2:
            return 0.0
        first = min([*recent, *(o.t_s for o in hist)])
        last = max([*recent, *(t_end_of(o) for o in hist)])
        return (n - 1) / max(1e-6, last - first)


def _compact(attrs: dict[str, Any]) -> dict[str, Any]:
    """History attrs: without the per-frame box; centroids as tuples."""
    out = {k: v for k, v in attrs.items() if k not in HISTORY_DROP}
    c = out.get("centroid")
    if isinstance(c, list):
        out["centroid"] = tuple(c)
    return out


def _merge(a: Observation, b: Observation) -> Observation:
    """Two history runs of one name (``a`` first) as one."""
    na, nb = weight(a), weight(b)
    attrs = a.attrs if a.score >= b.score else b.attrs
    return Observation(a.t_s, a.frame_id, a.kind, a.name, (a.score * na + b.score * nb) /
                       (na + nb), {**attrs, "frames": na + nb,
                                   "t_end": round(max(t_end_of(a), t_end_of(b)), 3)})


def _clip(o: Observation, t0: float, t1: float) -> Observation:
    """A history run cut to ``[t0, t1]``, its frame count scaled to the part inside."""
    a, b = o.t_s, t_end_of(o)
    lo, hi = max(a, t0), min(b, t1)
    share = (hi - lo) / (b - a) if b > a else 1.0
    n = max(1, round(weight(o) * share))
    return Observation(lo, o.frame_id, o.kind, o.name, o.score,
                       {**o.attrs, "frames": n, "t_end": round(hi, 3)})
