"""The brain's overlay state: highlighted outlines, alert banners, the mute line and the
bowel coverage map, drawn as one cached ``AnnotationSet`` per state version.

A mixin of ``copilot.brain.Brain``.
"""

from __future__ import annotations

import math
from typing import Any

from copilot.brain_types import SOURCE
from copilot.overlay import AnnotationSet, Banner, Box, Outline, Text
from kg_reasoning.reasoner import fmt_time

SEGMENT_ABBR = {"duodenum_d1": "D1", "duodenum_d2": "D2", "duodenum_d3": "D3",
                "duodenum_d4": "D4", "jejunum": "Jej", "ileum": "Ile", "caecum": "Cae",
                "ascending_colon": "Asc", "transverse_colon": "Tra", "descending_colon": "Des",
                "sigmoid_colon": "Sig", "rectum": "Rec"}
COVERAGE_COLOURS = {"seen": (40, 220, 60), "brief": (255, 150, 0), "missed": (255, 40, 40),
                    "pending": (160, 160, 160)}


class OverlayState:
    """What the brain draws over the video."""

    def visible_overlays(self) -> dict[str, bool]:
        """What is shown: segmentation (vision label map), outlines, coverage map."""
        with self._lock:
            return {"segmentation": not self.hidden, "outlines": not self.hidden,
                    "coverage": self.coverage_on}

    def unmute(self) -> None:
        """Alerts speak again at once (the UI's unmute button)."""
        with self._lock:
            self.mute_until = -math.inf
            self._version += 1

    def is_muted(self, media_t_s: float | None = None) -> bool:
        """Are alerts muted at ``media_t_s`` (default: now)?"""
        with self._lock:
            return (self.media_t if media_t_s is None else media_t_s) < self.mute_until

    def overlay(self, frame_id: int) -> AnnotationSet | None:
        """The brain's drawings: highlighted outlines, alert banners, coverage map."""
        with self._lock:
            t = self.media_t
            # an off-label banner lasts only while the span is open
            self.banners = [(a, u) for a, u in self.banners if u > t and
                            (a.rule != "off_label" or self.offlabel.off_label)]
            for k in [k for k, h in self.highlights.items()
                      if h["until"] is not None and h["until"] <= t]:
                del self.highlights[k]
                self._version += 1
            muted = t < self.mute_until
            key = (self._version, len(self.banners), muted, self.pending is not None,
                   self.offlabel.off_label)
            if self._ann is not None and self._ann_key == key:
                self._ann.frame_id = frame_id
                return self._ann
            items: list[Any] = []
            if not self.hidden:
                for name, h in self.highlights.items():
                    polys = self._shapes.get(name)
                    if polys:
                        items.append(Outline(list(polys), tuple(h["rgb"]),
                                             label=name.replace("_", " "), track=True,
                                             score=self._shape_score.get(name)))
            for a, _ in self.banners:
                struct = a.data.get("structure")
                if struct and self._shapes.get(struct):
                    items.append(Outline(list(self._shapes[struct]), (255, 40, 40),
                                         label=a.rule.replace("_", " ")))
                items.append(Banner(a.banner or a.text, a.level))
            items.extend(self.teaching.overlay_items(self.hidden))
            if self.pending is not None:
                items.append(Banner(f"Confirm? {self.pending.text}", "info"))
            if muted:
                items.append(Text(f"alerts muted until {fmt_time(self.mute_until)}", (8, 40),
                                  (255, 200, 0)))
            if self.offlabel.off_label:
                items.append(Text("OFF-LABEL: outside the validated domain, no alerts",
                                  (8, 64), (255, 200, 0)))
            if self.coverage_on and self.frame_size is not None:
                items.extend(self._coverage_items())
            if not items:
                self._ann, self._ann_key = None, key
                return None
            self._ann = AnnotationSet(source=SOURCE, frame_id=frame_id,
                                      t_ns=self.clock.now_ns(), items=items)
            self._ann_key = key
            return self._ann

    def _coverage_items(self) -> list[Any]:
        assert self.frame_size is not None
        w, h = self.frame_size
        cov = self.engine.coverage()
        if not any(v != "pending" for v in cov.values()):
            return []
        n = len(cov)
        cell = max(8, min(40, int(w * 0.9 / n)))
        x0 = max(4, (w - cell * n) // 2)
        scale = max(0.35, min(w, h) / 900)  # the compositor's text scale
        y1 = h - int(34 * scale) - 8 - int(30 * scale) - 6  # above the caption line
        y0 = y1 - cell
        items: list[Any] = [Text("coverage", (x0, y0 - int(30 * scale) - 4))]
        for i, (seg, state) in enumerate(cov.items()):
            xa = x0 + i * cell
            items.append(Box((xa + 1, y0, xa + cell - 2, y1), COVERAGE_COLOURS[state],
                             SEGMENT_ABBR.get(seg, seg[:3]) if cell >= 24 else ""))
        return items
