"""Teaching by example in the running copilot (issue 23).

"Copilot, this is the accessory duct" teaches a concept from the region the instrument tip
points at; "that is not the <name>" adds a negative example there; "forget <name>" removes it;
"what have you learned" lists them; once taught, "where is the <name>", "outline the <name> in
<colour>" and "hide the <name>" work (commands: ``kg_reasoning.teaching``; the learner:
``vision.teach``). In the web UI a click on the live frame teaches the same way.

Instrument tip: in the newest analysed frame's label map, the largest connected region of the
instrument classes; where it enters the view = the mean of its pixels on the image border
(when it touches none: its pixel nearest the border); the tip = its pixel farthest from that
entry. The example point is ``TIP_AHEAD`` of the label map's width beyond the tip along the
instrument's axis (entry -> tip): what the instrument points at, not the instrument.

Honesty: taught concepts are never findings (the alert engine never sees them, so no alert
fires on them); they are drawn dashed and labelled "taught: <name>"; every answer about one
says "taught by you at mm:ss (N examples), not part of my validated knowledge". The session
log gets a ``taught`` record per command and a ``taught_summary`` at the end (how often each
concept was shown); only prototypes are saved (``vision.teach.ConceptBook.save``).
"""

from __future__ import annotations

import html
from collections import deque
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kg_reasoning.reasoner import COLOUR_RGB, Step, fmt_time
from kg_reasoning.reasoner import Answer as KGAnswer
from kg_reasoning.teaching import TeachCommand, load_teaching
from vision.labels import CLASSES, INSTRUMENT_CLASSES
from vision.teach import ConceptBook, TeachError

RECENT_S, RECENT_MAX = 4.0, 24  # analysed frames kept to find the tip during an utterance
TIP_AHEAD = 0.04  # of the label map's width, beyond the tip along the instrument axis
MIN_TOOL_PX = 30  # label-map pixels an instrument region needs to have a tip
TAUGHT_RGB = (255, 0, 255)  # default colour of taught outlines (magenta)
NOT_VALIDATED = "not part of my validated knowledge"
INSTRUMENT_IDS = [CLASSES.index(c) for c in INSTRUMENT_CLASSES]


def instrument_tip(label_map: np.ndarray, ids: list[int] | None = None
                   ) -> dict[str, tuple[float, float]] | None:
    """Tip, entry and pointed-at point of the largest instrument region, in label-map pixels
    (x, y); None when no instrument region of ``MIN_TOOL_PX`` is seen."""
    mask = np.isin(label_map, INSTRUMENT_IDS if ids is None else ids).astype(np.uint8)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n < 2:
        return None
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if stats[k, cv2.CC_STAT_AREA] < MIN_TOOL_PX:
        return None
    h, w = label_map.shape
    ys, xs = np.nonzero(lab == k)
    edge = (xs == 0) | (ys == 0) | (xs == w - 1) | (ys == h - 1)
    if edge.any():
        entry = np.array([xs[edge].mean(), ys[edge].mean()])
    else:
        d = np.minimum.reduce([xs, ys, w - 1 - xs, h - 1 - ys])
        i = int(np.argmin(d))
        entry = np.array([xs[i], ys[i]], float)
    far = np.hypot(xs - entry[0], ys - entry[1])
    i = int(np.argmax(far))
    tip = np.array([xs[i], ys[i]], float)
    axis = (tip - entry) / max(float(far[i]), 1e-6)
    ahead = np.clip(tip + axis * TIP_AHEAD * w, [0, 0], [w - 1, h - 1])
    return {"tip": (float(tip[0]), float(tip[1])), "entry": (float(entry[0]), float(entry[1])),
            "point": (float(ahead[0]), float(ahead[1]))}


def where_in_frame(x: float, y: float) -> str:
    """'upper left' ... 'centre' for a point in 0..1 frame coordinates."""
    v = "upper" if y < 1 / 3 else "lower" if y > 2 / 3 else ""
    h = "left" if x < 1 / 3 else "right" if x > 2 / 3 else ""
    return " ".join(p for p in (v, h) if p) or "centre"


class TaughtConcepts:
    """The session's taught concepts: commands, per-frame outlines, overlay, log records."""

    def __init__(self, book: ConceptBook | None = None) -> None:
        self.book = book or ConceptBook()
        self.cmds = load_teaching()
        self.latest: dict[str, Any] | None = None  # newest analysed frame's features
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_MAX)  # for the tip search
        self.shapes: dict[str, list[np.ndarray]] = {}  # name -> polygons (frame px), newest
        self.centre: dict[str, tuple[float, float]] = {}  # name -> (x, y) 0..1 of the frame
        self.shown: dict[str, dict[str, Any]] = {}  # name -> frames, first_s, last_s
        self.style: dict[str, dict[str, Any]] = {}  # name -> colour, rgb, visible
        self.version = 0

    # ------------------------------------------------------------------ per frame
    def on_features(self, attrs: dict[str, Any], frame_id: int, t: float,
                    frame_size: tuple[int, int]) -> None:
        """One analysed frame (``attrs`` of the ``pixel_features`` finding): keep it for
        teaching, and outline every taught concept in it."""
        self.latest = {**attrs, "frame_id": frame_id, "t": t, "frame_size": frame_size}
        self.recent.append(self.latest)
        while self.recent and t - self.recent[0]["t"] > RECENT_S:
            self.recent.popleft()
        names = self.book.names()
        if not names:
            return
        lm = attrs["label_map"]
        x0, y0, x1, y1 = attrs["fov_box"]
        sx, sy = (x1 - x0) / lm.shape[1], (y1 - y0) / lm.shape[0]
        fw, fh = frame_size
        masks = self.book.masks(attrs["features"], (lm.shape[1], lm.shape[0]), names)
        before = {n: bool(p) for n, p in self.shapes.items()}
        self.shapes, self.centre = {}, {}
        for name, m in masks.items():
            cnts, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
            cnts = [c for c in cnts if cv2.contourArea(c) >= 4]
            if not cnts:
                continue
            polys = []
            for c in cnts:
                p = c.reshape(-1, 2).astype(np.float32)
                polys.append(np.round(np.c_[x0 + (p[:, 0] + 0.5) * sx,
                                            y0 + (p[:, 1] + 0.5) * sy]).astype(np.int32))
            self.shapes[name] = polys
            ys, xs = np.nonzero(m)
            self.centre[name] = ((x0 + (xs.mean() + 0.5) * sx) / fw,
                                 (y0 + (ys.mean() + 0.5) * sy) / fh)
            s = self.shown.setdefault(name, {"frames": 0, "first_s": t, "last_s": t})
            s["frames"] += 1
            s["last_s"] = t
        if before != {n: True for n in self.shapes}:
            self.version += 1

    def overlay_items(self, hidden: bool = False) -> list[Any]:
        """Dashed outlines labelled "taught: <name>" (drawn unless hidden)."""
        from copilot.overlay import Outline

        if hidden:
            return []
        return [Outline(list(p), tuple(self.style.get(n, {}).get("rgb", TAUGHT_RGB)),
                        label=f"taught: {n}", dashed=True)
                for n, p in self.shapes.items() if self.style.get(n, {}).get("visible", True)]

    # ------------------------------------------------------------------ commands
    def parse(self, text: str) -> TeachCommand | None:
        """A teaching command in ``text`` (None: not one)."""
        return self.cmds.parse(text, self.book.names())

    def validated(self, name: str) -> bool:
        """Is ``name`` a class of the validated vision model (never taught over)?"""
        key = self.cmds.cat.value_of("structure", name)
        return key in CLASSES and key not in INSTRUMENT_CLASSES and key != "background"

    def command_of(self, q: Any) -> TeachCommand | None:
        """The teaching command a (possibly held and confirmed) question carries, or None."""
        if q.intent not in self.cmds.templates:
            return None
        return TeachCommand(q.intent, q.slots.get("name"), q.slots.get("colour"), q.text)

    def click(self, name: str, x: float, y: float, t: float, positive: bool = True
              ) -> tuple[KGAnswer, dict[str, Any]]:
        """Teach from a click at frame pixel (x, y) of the newest analysed frame."""
        key = self.cmds.canonical(name) or " ".join(name.lower().split())
        if not key:
            return self._unsure("Say or type a name to teach.", "no name"), {}
        if self.validated(key):
            return self._unsure(f"I already recognise the {key} with my validated model; "
                                "teaching is for what I do not know.", "a validated class"), {}
        if self.latest is None:
            return self._unsure("I have no analysed frame to learn from yet.", "no frame"), {}
        x0, y0, x1, y1 = self.latest["fov_box"]
        px, py = (x - x0) / max(x1 - x0, 1), (y - y0) / max(y1 - y0, 1)
        if not (0 <= px <= 1 and 0 <= py <= 1):
            return self._unsure("That click is outside the field of view.", "outside"), {}
        if not positive and key not in self.book:
            return self._unsure(f"I was not taught the {key}.", "not taught"), {}
        return self.teach_at(key, (px, py), t, positive, "click")

    def provenance(self, name: str) -> str:
        """'taught by you at 00:12 (2 examples), not part of my validated knowledge'."""
        d = self.book.describe(name)
        n = d["examples"]
        return (f"taught by you at {fmt_time(d['taught_at_s'])} ({n} example"
                f"{'' if n == 1 else 's'}), {NOT_VALIDATED}")

    def teach_at(self, name: str, point: tuple[float, float], t: float, positive: bool = True,
                 source: str = "click", frame: dict[str, Any] | None = None
                 ) -> tuple[KGAnswer, dict[str, Any]]:
        """Teach ``name`` from ``point`` (0..1 of the field of view) of ``frame`` (default:
        the newest analysed frame)."""
        frame = frame or self.latest
        if frame is None or frame.get("features") is None:
            return self._unsure("I have no analysed frame with features to learn from yet.",
                                "no features"), {}
        try:
            region = self.book.teach(name, frame["features"], point=point,
                                     positive=positive, time_s=t)
        except TeachError as exc:
            return self._unsure(f"I could not learn that: {exc}.", str(exc)), {}
        name = name.strip().lower()
        d = self.book.describe(name)
        self.style.setdefault(name, {"colour": "magenta", "rgb": TAUGHT_RGB, "visible": True})
        self.version += 1
        what = "an example of" if positive else "a counter-example of"
        text = (f"Learned {what} the {name}: {self.provenance(name)}." if positive else
                f"Noted: that is not the {name} ({d['negatives']} counter-example"
                f"{'' if d['negatives'] == 1 else 's'}).")
        steps = [Step(f"Example point ({point[0]:.2f}, {point[1]:.2f}) of the field of view "
                      f"({source}), frame {frame['frame_id']}.", True,
                      {"frame_id": frame["frame_id"]}),
                 Step(f"Region grown over similar features: {int(region.sum())} feature "
                      "cells; kept as prototypes only (no pixels).", True, {}),
                 Step(f"The {name} is a session-local concept without an ontology id; "
                      "alerts never use it.", True, {})]
        rec = {"event": "teach" if positive else "negative", "name": name, "source": source,
               "point": [round(point[0], 4), round(point[1], 4)],
               "frame_id": frame["frame_id"], "examples": d["examples"],
               "negatives": d["negatives"], "cells": int(region.sum())}
        return KGAnswer(text, steps, 1.0, intent="teach_concept" if positive
                        else "teach_negative"), rec

    def execute(self, cmd: TeachCommand, t: float, since: float | None = None
                ) -> tuple[KGAnswer, dict[str, Any]]:
        """Run a spoken teaching command at media time ``t``; (answer, log record or {}).

        The example is where the instrument tip points in the newest frame analysed since
        ``since`` (the utterance's start, media s) that shows an instrument."""
        name = cmd.name
        if cmd.intent in ("teach_concept", "teach_negative"):
            if self.validated(name or ""):
                return self._unsure(f"I already recognise the {name} with my validated "
                                    "model; teaching is for what I do not know.",
                                    "a validated class"), {}
            if cmd.intent == "teach_negative" and name not in self.book:
                return self._unsure(f"I was not taught the {name}.", "not taught"), {}
            if not self.recent:
                return self._unsure("I have no analysed frame with features to learn from "
                                    "(a model exported before the features output: re-export "
                                    "it with copilot export).", "no features"), {}
            frame, tip = None, None
            for f in reversed(self.recent):
                if since is not None and f["t"] < since - 0.5:
                    break
                tip = instrument_tip(f["label_map"])
                if tip is not None:
                    frame = f
                    break
            if frame is None or tip is None:
                return self._unsure(f"I see no instrument tip to show me the {name}: point at "
                                    "it with an instrument, or click it in the view.",
                                    "no instrument tip"), {}
            h, w = frame["label_map"].shape
            px, py = tip["point"]
            ans, rec = self.teach_at(name, ((px + 0.5) / w, (py + 0.5) / h), t,
                                     cmd.intent == "teach_concept", "instrument tip", frame)
            if rec:
                rec["tip"] = [round(v, 1) for v in tip["tip"]]
                ans.steps.insert(0, Step(
                    f"Instrument tip at label-map pixel ({tip['tip'][0]:.0f}, "
                    f"{tip['tip'][1]:.0f}): the end of the instrument farthest from where it "
                    f"enters the view ({tip['entry'][0]:.0f}, {tip['entry'][1]:.0f}).", True,
                    {}))
            return ans, rec
        if cmd.intent == "forget_concept":
            if not self.book.forget(name or ""):
                return self._unsure(f"I was not taught the {name}.", "not taught"), {}
            self.shapes.pop(name, None)
            self.style.pop(name, None)
            self.version += 1
            return KGAnswer(f"Forgot the {name}.", [Step(f"Removed the taught {name}.", True,
                                                         {})], 1.0, intent=cmd.intent), \
                {"event": "forget", "name": name}
        if cmd.intent == "list_taught":
            names = self.book.names()
            if not names:
                return KGAnswer("I have not been taught anything in this session.",
                                [Step("No taught concepts.", True, {})], 1.0,
                                intent=cmd.intent), {}
            parts = []
            for n in names:
                d = self.book.describe(n)
                parts.append(f"the {n} (taught by you at {fmt_time(d['taught_at_s'])}, "
                             f"{d['examples']} example{'' if d['examples'] == 1 else 's'})")
            return KGAnswer(f"I have learned {', '.join(parts)}. None of it is part of my "
                            "validated knowledge.",
                            [Step(f"{len(names)} taught concept(s).", True, {})], 1.0,
                            intent=cmd.intent), {}
        assert name is not None
        style = self.style.setdefault(name, {"colour": "magenta", "rgb": TAUGHT_RGB,
                                             "visible": True})
        self.version += 1
        if cmd.intent == "hide_taught":
            style["visible"] = False
            return KGAnswer(f"Hiding the taught {name}.", [Step("Outline hidden.", True, {})],
                            1.0, intent=cmd.intent), {"event": "hide", "name": name}
        style["visible"] = True
        if cmd.intent == "outline_taught" and cmd.colour:
            style["colour"], style["rgb"] = cmd.colour, tuple(COLOUR_RGB.get(cmd.colour,
                                                                             TAUGHT_RGB))
        seen = name in self.shapes
        where = where_in_frame(*self.centre[name]) if seen else ""
        if cmd.intent == "outline_taught":
            text = (f"Outlined the {name} in {style['colour']}" if seen else
                    f"I do not see the {name} now; I will outline it when I do") + \
                f": {self.provenance(name)}."
        else:
            text = (f"The {name} is at the {where} of the view" if seen else
                    f"I do not see the {name} now") + f": {self.provenance(name)}."
        steps = [Step(f"Similarity to the taught {name} in the newest analysed frame: "
                      + ("outlined." if seen else "below the threshold everywhere."), seen, {}),
                 Step(f"The {name} is {self.provenance(name)}.", True, {})]
        return KGAnswer(text, steps, 1.0 if seen else 0.5, not seen,
                        "" if seen else "not seen now", cmd.intent), {}

    @staticmethod
    def _unsure(text: str, reason: str) -> KGAnswer:
        return KGAnswer(text, [Step(text, False, {})], 0.0, True, reason, "teach_concept")

    # ------------------------------------------------------------------ persistence
    def summary(self) -> list[dict[str, Any]]:
        """Per taught concept: when, examples, how often shown (analysed frames, first /
        last time)."""
        out = []
        for n in self.book.names():
            d = self.book.describe(n)
            s = self.shown.get(n, {"frames": 0, "first_s": None, "last_s": None})
            out.append({**d, "shown_frames": s["frames"], "shown_first_s": s["first_s"],
                        "shown_last_s": s["last_s"]})
        return out

    def save(self, path: Path | str) -> Path:
        """Prototypes only (``vision.teach``)."""
        return self.book.save(path)

    def load(self, path: Path | str) -> list[str]:
        """Load a saved file (TeachError when it is not one)."""
        names = self.book.load(path)
        self.version += 1
        return names


def taught_html(records: list[dict[str, Any]], summary: list[dict[str, Any]]) -> str:
    """The report's "Taught by the surgeon" section (empty when nothing was taught)."""
    if not records and not summary:
        return ""
    esc = html.escape
    rows = "".join(
        f"<li>{fmt_time(r.get('media_t_s') or 0)} {esc(str(r.get('event')))} the "
        f"{esc(str(r.get('name')))}" + (f" ({esc(str(r.get('source')))})" if r.get('source')
                                        else "") + "</li>" for r in records)
    shown = "".join(
        f"<li>the {esc(str(s['name']))}: taught at {fmt_time(s['taught_at_s'])}, "
        f"{s['examples']} example(s), {s['negatives']} counter-example(s); shown afterwards in "
        f"{s['shown_frames']} analysed frame(s)"
        + (f" ({fmt_time(s['shown_first_s'])}-{fmt_time(s['shown_last_s'])})"
           if s.get("shown_frames") else "") + "</li>" for s in summary)
    return (f"<h2>Taught by the surgeon ({len(summary)})</h2><p>Session-local concepts, "
            f"{NOT_VALIDATED}; never used for alerts.</p><ul id='taught'>{shown}</ul>"
            f"<ul id='taught_events'>{rows}</ul>")
