"""The bowel survey rule ``segment_missed`` and the coverage map (see the rule's description
in ``copilot.alerts``). Times are media seconds.

A mixin of ``copilot.alerts.AlertEngine``: the host provides ``cfg`` and the ``_may_fire`` /
``_fire`` / ``_event`` / ``_say`` helpers.
"""

from __future__ import annotations

import math
from collections import deque

from copilot.alert_rules import AlertConfig, FrameView, RaisedAlert
from kg_reasoning.graph import KnowledgeGraph
from kg_reasoning.reasoner import Step, fmt_time, join_words
from vision.labels import SEGMENTS


class SurveyRules:
    """Which bowel segments were seen, for how long, and which were passed unseen."""

    cfg: AlertConfig

    def _init_survey(self, kg: KnowledgeGraph) -> None:
        """Read the survey order from ``kg`` (default: ``vision.labels.SEGMENTS``); reset."""
        order = kg.surveys.get("bowel_survey", {}).get("order") or list(SEGMENTS)
        self.order = list(order)
        self.seg_seen_s: dict[str, float] = {}
        self.seg_first: dict[str, float] = {}
        self.seg_run: tuple[str, int] = ("", 0)
        self.seg_stable: deque[str] = deque(maxlen=64)  # stable segments, newest last
        self.seg_alerted: set[str] = set()
        self.seg_last_t: float | None = None
        self.seg_prev: str | None = None
        self.seg_start: str | None = None  # the segment in view when the analysis started
        self.seg_front = -1  # furthest segment (order index) the survey has reached
        # a big jump waiting for confirmation: (target, gap, frame, reason, t reached)
        self.seg_pending: tuple[str, list[str], FrameView, str, float] | None = None

    def _segment(self, fv: FrameView) -> list[RaisedAlert]:
        cfg = self.cfg
        if fv.region is None:
            return []
        name, score = fv.region
        dt = 0.0 if self.seg_last_t is None else min(cfg.segment_max_dt_s,
                                                     max(0.0, fv.t_s - self.seg_last_t))
        self.seg_last_t = fv.t_s
        if name not in self.order or score < cfg.min_score:
            self.seg_run = ("", 0)
            return []
        if self.seg_start is None:
            self.seg_start = name
        if self.seg_prev == name:
            self.seg_seen_s[name] = self.seg_seen_s.get(name, 0.0) + dt
        self.seg_prev = name
        self.seg_first.setdefault(name, fv.t_s)
        run_name, n = self.seg_run
        self.seg_run = (name, n + 1) if run_name == name else (name, 1)
        out = self._confirm_pending(fv, name)
        need = cfg.segment_sure_frames if score >= cfg.segment_sure else cfg.segment_frames
        if self.seg_run[1] < need:
            return out
        prev = self.seg_stable[-1] if self.seg_stable else None
        if prev == name:
            return out
        self.seg_stable.append(name)
        j = self.order.index(name)
        if prev is None:
            self.seg_front = j
            return out
        i = self.order.index(prev)
        if j <= (self.seg_front if cfg.segment_frontier else i):
            # back, or within what the survey already passed: the segments in between will
            # be passed again (the survey end names what never was)
            return out
        front = max(i, self.seg_front) if cfg.segment_frontier else i
        gap = [s for s in self.order[front + 1:j] if not self.seen(s)]
        # a brief view of the furthest segment just left (not the one in view when the
        # analysis began: how long it was seen before that is unknown)
        leaving_front = i == self.seg_front or not cfg.segment_frontier
        if leaving_front and not self.seen(prev) and prev not in self.seg_alerted \
                and prev != self.seg_start:
            gap.insert(0, prev)
        why = f"the camera reached the {self._say(name)}"
        if len([s for s in gap if s != prev]) >= cfg.segment_jump:
            self.seg_pending = (name, gap, fv, why, fv.t_s)
            return out
        self.seg_front = j
        return out + self._segment_alert(gap, fv, why)

    def _confirm_pending(self, fv: FrameView, name: str) -> list[RaisedAlert]:
        """Alert a waiting big jump once confirmed; drop it when the camera came back."""
        if self.seg_pending is None or self.seg_run[1] < self.cfg.segment_frames:
            return []
        target, gap, at, why, t0 = self.seg_pending
        k, j = self.order.index(target), self.order.index(name)
        if j < k:  # back before the jump's target: it was not a jump
            self.seg_pending = None
            return []
        if j > k or fv.t_s - t0 >= self.cfg.segment_confirm_s:
            self.seg_pending = None
            self.seg_front = max(self.seg_front, k)
            gap = [s for s in gap if not self.seen(s)]
            return self._segment_alert(gap, fv, f"{why} at {fmt_time(at.t_s)} and went on")
        return []

    def seen(self, segment: str) -> bool:
        """Was ``segment`` viewed for at least ``segment_seen_s`` seconds?"""
        return self.seg_seen_s.get(segment, 0.0) >= self.cfg.segment_seen_s

    def _segment_alert(self, gap: list[str], fv: FrameView, why: str) -> list[RaisedAlert]:
        gap = [s for s in gap if s not in self.seg_alerted]
        if not gap:
            return []
        self.seg_alerted.update(gap)
        say = self._say
        parts = []
        for s in gap:
            secs = self.seg_seen_s.get(s, 0.0)
            note = "" if s not in self.seg_first else " (glimpsed only)" if secs < 0.1 else \
                f" (seen only {math.floor(secs * 10 + 1e-6) / 10:.1f} s)"  # not "1.0" for 0.96
            parts.append(f"the {say(s)}{note}")
        steps = [
            Step(f"At {fmt_time(fv.t_s)} {why}.", True,
                 {"observations": [{"t_s": round(fv.t_s, 3), "frame_id": fv.frame_id,
                                    "kind": "region", "name": fv.region[0] if fv.region else "",
                                    "score": round(fv.region[1], 4) if fv.region else 0.0}]}),
            Step("Segments seen so far: " + join_words(
                [f"{say(s)} ({self.seg_seen_s.get(s, 0.0):.1f} s)" for s in self.order
                 if s in self.seg_first]) + ".", True,
                 {"scores": {s: round(v, 2) for s, v in self.seg_seen_s.items()}}),
            Step(f"In the survey order (lumen order) {join_words(parts)} "
                 f"{'lies' if len(gap) == 1 else 'lie'} in between and "
                 f"{'was' if len(gap) == 1 else 'were'} not viewed for "
                 f"{self.cfg.segment_seen_s:g} s.", True,
                 {"rule": "bowel survey order (lumen order)"}),
        ]
        text = f"Bowel segment not seen: {join_words(parts)}."
        for s in gap:
            self._event(fv.t_s, fv.frame_id, "segment_missed", segment=s)
        return [self._fire(RaisedAlert("segment_missed", text, fv.t_s, fv.frame_id, steps,
                                       key=",".join(gap), data={"segments": gap},
                                       banner="NOT SEEN: " + ", ".join(say(s) for s in gap)))]

    def finish(self, t_s: float, frame_id: int) -> list[RaisedAlert]:
        """End of the feed / survey: name every segment gap not alerted yet."""
        self.seg_pending = None  # a jump still waiting: the gaps below name what was missed
        seen = [s for s in self.order if self.seen(s)]
        if len(seen) < 2:
            return []
        i, j = self.order.index(seen[0]), self.order.index(seen[-1])
        gap = [s for s in self.order[i:j + 1] if not self.seen(s)]
        fv = FrameView(frame_id, t_s, {}, {}, None, None, {})
        return self._segment_alert(gap, fv, "the survey ended")

    def coverage(self) -> dict[str, str]:
        """Segment -> "seen" | "brief" | "missed" | "pending" (for the coverage map)."""
        out = {}
        seen = [s for s in self.order if self.seen(s)]
        lo = self.order.index(seen[0]) if seen else len(self.order)
        hi = self.order.index(seen[-1]) if seen else -1
        for k, s in enumerate(self.order):
            if self.seen(s):
                out[s] = "seen"
            elif s in self.seg_first:
                out[s] = "brief"
            elif lo <= k <= hi or s in self.seg_alerted:
                out[s] = "missed"
            else:
                out[s] = "pending"
        return out
