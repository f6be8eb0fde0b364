"""The alert engine: rules over the per-frame findings, the knowledge graph and the timeline.

Rules (``rule`` names as written to the session):

- ``clip_before_cvs``: the clip applier (segmentation class or the tool head's ``Clipper``) is
  in view for ``clip_frames`` analysed frames while the critical view of safety has not been
  reached (CVS = all criteria >= the KG threshold for ``cvs_frames`` frames, latched).
- ``phase_skipped``: a phase is entered (stable for ``phase_frames`` frames) and a required
  phase between the previous phase and it was never entered (procedure model of the KG).
- ``bleeding``: the ``blood`` class covers >= ``bleed_area`` of the view for ``bleed_frames``
  frames.
- ``large_vessel``: the ``large_vessel`` class for ``vessel_frames`` frames; the text carries
  the reasoner's ranked hypothesis (``identify_structure``).
- ``segment_missed``: in a bowel survey, the camera moves beyond the furthest segment reached
  so far while a segment in between was never seen (or the segment it leaves was seen less
  than ``segment_seen_s``); at the end of the survey (``finish``) every remaining gap is named.
  Moving back, or within the part already passed, raises nothing (those segments are passed
  again); the segment in view when the analysis started is never called brief (its earlier
  viewing is unknown); a jump over ``segment_jump`` or more unseen segments at once (more
  often two similar-looking segments confused than a survey miss) waits until the camera goes
  on forward or stays ``segment_confirm_s``, and is dropped if it comes back before it.

Each rule has hysteresis (``*_frames`` to raise, absence for ``*_clear_s`` to re-arm), a
cooldown per (rule, key) and acknowledgement (an acknowledged alert stays quiet for
``ack_quiet_s``). Every alert carries its reasoning steps (``kg_reasoning.reasoner.Step``
dicts) for "copilot, why?".
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kg_reasoning.graph import KnowledgeGraph
from kg_reasoning.reasoner import Step, fmt_time, join_words, position_words
from kg_reasoning.timeline import Observation
from vision.labels import SEGMENTS

#: Alert levels: "alert" (red banner) for safety rules, "warning" (amber) for the others.
LEVELS = {"clip_before_cvs": "alert", "bleeding": "alert", "large_vessel": "alert",
          "phase_skipped": "warning", "segment_missed": "warning",
          "cvs_confirm_prompt": "warning"}
#: Truth event kinds (feed truth.json) that each rule answers.
RULE_EVENTS = {"clip_before_cvs": ("clip_applied",), "bleeding": ("bleeding_onset",),
               "large_vessel": ("large_vessel",), "phase_skipped": ("phase_skipped",),
               "segment_missed": ("segment_missed", "segment_brief")}


#: Alerts kept in ``AlertEngine.history`` (the session log has them all).
HISTORY_MAX = 256


class _FrameRun(list):
    """Frames of a rule's current run: ``n`` counts them all, the list keeps the first one
    and the newest ``keep - 1`` (a condition that lasts an hour must not grow memory)."""

    keep = 24

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def append(self, fv: Any) -> None:
        """Add a frame; trim the middle beyond ``keep``."""
        super().append(fv)
        self.n += 1
        if len(self) > self.keep:
            del self[1:len(self) - self.keep + 1]


@dataclass
class AlertConfig:
    """Thresholds: scores are probabilities, areas fractions of the view, times seconds."""

    min_score: float = 0.5
    clip_frames: int = 2
    clip_clear_s: float = 30.0
    cvs_frames: int = 3
    bleed_area: float = 0.002
    bleed_frames: int = 2
    bleed_clear_s: float = 5.0
    vessel_area: float = 0.003
    vessel_frames: int = 3
    vessel_clear_s: float = 10.0
    phase_min_score: float = 0.6
    phase_frames: int = 5
    segment_frames: int = 3
    # a segment the region filter is sure of (score >= segment_sure) is stable after
    # segment_sure_frames frames: the filter has already confirmed it (its confident route
    # step needs a run of confident frames), and 3 more frames delay a skipped-segment alert
    segment_sure: float = 0.9
    segment_sure_frames: int = 1
    segment_seen_s: float = 1.0
    segment_max_dt_s: float = 0.5
    # a jump over >= segment_jump unseen segments at once is more often a confusion between
    # similar-looking segments than a survey miss: it is alerted once the camera moves on
    # forward from there or stays segment_confirm_s, and dropped if it comes back before it
    segment_jump: int = 2
    segment_confirm_s: float = 4.0
    # gaps are counted from the furthest segment reached (moving within the surveyed part
    # raises nothing); False: from the segment just left
    segment_frontier: bool = True
    cooldown_s: dict[str, float] = field(default_factory=lambda: {
        "clip_before_cvs": 120.0, "bleeding": 60.0, "large_vessel": 120.0,
        "phase_skipped": 0.0, "segment_missed": 0.0})
    ack_quiet_s: float = 300.0


@dataclass
class RaisedAlert:
    """An alert as the engine raised it (the brain turns it into a message)."""

    rule: str
    text: str
    t_s: float
    frame_id: int
    steps: list[Step]
    level: str = "alert"
    key: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    banner: str = ""  # short text for the overlay banner (default: ``text``)
    spoken: str = ""  # what the voice says (default: the first sentence of ``text``)

    def steps_dicts(self) -> list[dict[str, Any]]:
        """The steps as JSON-friendly dicts."""
        return [s.to_dict() for s in self.steps]


@dataclass
class FrameView:
    """One analysed frame's findings, summarised for the rules."""

    frame_id: int
    t_s: float
    structures: dict[str, dict[str, Any]]  # name -> {score, area, centroid, bbox}
    instruments: dict[str, float]  # name -> score (segmentation classes and tool head)
    region: tuple[str, float] | None
    phase: tuple[str, float] | None
    cvs: dict[str, float]

    @classmethod
    def of(cls, frame_id: int, t_s: float, findings: list[Any], min_score: float) -> FrameView:
        """Summarise ``copilot.messages.Finding``s (or Observations) of one frame."""
        st: dict[str, dict[str, Any]] = {}
        inst: dict[str, float] = {}
        region = phase = None
        cvs: dict[str, float] = {}
        for f in findings:
            if f.kind == "structure" and f.score >= min_score:
                st[f.name] = {"score": f.score, **{k: v for k, v in f.attrs.items()
                                                   if k != "polygons"}}
            elif f.kind == "instrument" and f.score >= min_score:
                inst[f.name] = max(inst.get(f.name, 0.0), f.score)
            elif f.kind == "region":
                region = (f.name, f.score)
            elif f.kind == "phase":
                phase = (f.name, f.score)
            elif f.kind == "cvs":
                cvs[f.name] = f.score
        return cls(frame_id, t_s, st, inst, region, phase, cvs)

    def obs(self, kind: str, name: str) -> dict[str, Any]:
        """Evidence dict of one finding (kg_reasoning observation form)."""
        src = self.structures.get(name, {}) if kind == "structure" else {}
        score = src.get("score", self.instruments.get(name, 0.0))
        d = {"t_s": round(self.t_s, 3), "frame_id": self.frame_id, "kind": kind, "name": name,
             "score": round(float(score), 4)}
        if "area" in src:
            d["attrs"] = {"area": src["area"], "centroid": src.get("centroid")}
        return d


class AlertEngine:
    """Evaluates the rules frame by frame; not thread-safe (the brain holds its lock)."""

    def __init__(self, kg: KnowledgeGraph, config: AlertConfig | None = None,
                 hypothesis: Callable[[float], Any] | None = None,
                 say: Callable[[str], str] | None = None,
                 rules: frozenset[str] | None = None, cvs_policy: Any | None = None) -> None:
        self.kg = kg
        self.rules = rules  # rule names that run (None: all; copilot.validity.PROCEDURE_RULES)
        self.cvs_policy = cvs_policy  # copilot.validity.CvsPolicy (None: the vision decides)
        self.say_fn = say
        self.cfg = config or AlertConfig()
        self.hypothesis = hypothesis  # t_s -> reasoner Answer for "what is this large vessel"
        proc = kg.procedures.get("laparoscopic_cholecystectomy", {})
        self.phases = [p["name"] for p in proc.get("phases", [])]
        self.optional = {p["name"] for p in proc.get("phases", []) if p.get("optional")}
        self.rule_text = (proc.get("rules") or [{}])[0].get(
            "text", "no clipping or cutting before the critical view of safety is reached")
        self.rule_src = (proc.get("rules") or [{}])[0].get("src", "")
        cvs = kg.cvs
        self.cvs_names = [c["name"] for c in cvs.get("criteria", [])]
        self.cvs_spoken = {c["name"]: c.get("spoken", c["name"]) for c in cvs.get("criteria", [])}
        self.cvs_thr = float(cvs.get("threshold", 0.5))
        order = kg.surveys.get("bowel_survey", {}).get("order") or list(SEGMENTS)
        self.order = list(order)
        self.events: list[Observation] = []  # event observations for the timeline
        self.history: deque[RaisedAlert] = deque(maxlen=HISTORY_MAX)  # newest alerts
        self._last: dict[tuple[str, str], float] = {}
        self._acked: dict[tuple[str, str], float] = {}
        # rule state
        self.cvs_run = 0
        self.cvs_reached_t: float | None = None
        self.cvs_latest: dict[str, float] = {}
        self.clip_run = _FrameRun()
        self.clip_armed = True
        self.clip_last_t = -1e9
        self.clip_seen = False
        self.clip_struct_run = 0
        self.bleed_run = _FrameRun()
        self.bleed_armed = True
        self.bleed_last_t = -1e9
        self.vessel_run = _FrameRun()
        self.vessel_armed = True
        self.vessel_last_t = -1e9
        self.phase_run: tuple[str, int, float] = ("", 0, 0.0)
        self.entered: dict[str, float] = {}
        self.max_phase_idx = -1
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

    # ------------------------------------------------------------------ bookkeeping
    def _may_fire(self, rule: str, key: str, t: float) -> bool:
        last = self._last.get((rule, key))
        if last is not None and t - last < self.cfg.cooldown_s.get(rule, 0.0):
            return False
        ack = self._acked.get((rule, key))
        return not (ack is not None and t - ack < self.cfg.ack_quiet_s)

    def _fire(self, a: RaisedAlert) -> RaisedAlert:
        a.level = LEVELS.get(a.rule, "alert")
        self._last[(a.rule, a.key)] = a.t_s
        self.history.append(a)
        return a

    def acknowledge(self, alert: RaisedAlert, t_s: float) -> None:
        """The surgeon acknowledged ``alert``: that rule + key stays quiet for a while."""
        self._acked[(alert.rule, alert.key)] = t_s

    def _event(self, t: float, frame_id: int, name: str, **attrs: Any) -> None:
        self.events.append(Observation(t, frame_id, "event", name, 1.0, attrs))

    def take_events(self) -> list[Observation]:
        """Event observations produced since the last call."""
        ev, self.events = self.events, []
        return ev

    @property
    def cvs_by_surgeon(self) -> bool:
        """True when only the surgeon's confirmation counts as CVS (``CvsPolicy``)."""
        return self.cvs_policy is not None and self.cvs_policy.surgeon

    @property
    def cvs_reached(self) -> bool:
        """Has the critical view of safety been reached (latched; or, when the surgeon
        decides, is the surgeon's latest statement "confirmed")?"""
        if self.cvs_by_surgeon:
            return self.cvs_policy.state is True
        return self.cvs_reached_t is not None

    # ------------------------------------------------------------------ per frame
    def update(self, fv: FrameView) -> list[RaisedAlert]:
        """Evaluate every rule on one analysed frame; returns the alerts raised."""
        out: list[RaisedAlert] = []
        self._cvs(fv)
        for name, rule in (("clip_before_cvs", self._clip), ("bleeding", self._bleeding),
                           ("large_vessel", self._vessel), ("phase_skipped", self._phase),
                           ("segment_missed", self._segment)):
            if self.rules is None or name in self.rules:
                out.extend(rule(fv))
        return out

    def _cvs(self, fv: FrameView) -> None:
        if not fv.cvs:
            return
        self.cvs_latest = dict(fv.cvs)
        met = all(fv.cvs.get(n, 0.0) >= self.cvs_thr for n in self.cvs_names)
        self.cvs_run = self.cvs_run + 1 if met else 0
        if self.cvs_by_surgeon:  # the vision's estimate is advisory only
            return
        if self.cvs_run >= self.cfg.cvs_frames and self.cvs_reached_t is None:
            self.cvs_reached_t = fv.t_s
            self._event(fv.t_s, fv.frame_id, "cvs_reached")

    def _clip(self, fv: FrameView) -> list[RaisedAlert]:
        cfg = self.cfg
        # a clip on a structure: the "clip_applied" event for the reasoner
        if "clip" in fv.structures:
            self.clip_struct_run += 1
            if self.clip_struct_run == 2 and not self.clip_seen:
                self.clip_seen = True
                self._event(fv.t_s, fv.frame_id, "clip_applied")
        else:
            self.clip_struct_run = 0
        present = "clip_applier" in fv.instruments or "Clipper" in fv.instruments
        if not present:
            self.clip_run = _FrameRun()
            if fv.t_s - self.clip_last_t >= cfg.clip_clear_s:
                self.clip_armed = True
            return []
        self.clip_last_t = fv.t_s
        self.clip_run.append(fv)
        if self.clip_run.n < cfg.clip_frames or not self.clip_armed or self.cvs_reached:
            return []
        if self.cvs_by_surgeon:
            return self._clip_unconfirmed(fv)
        if not fv.cvs and not self.cvs_latest:  # no CVS assessment at all (not laparoscopic)
            return []
        if not self._may_fire("clip_before_cvs", "", fv.t_s):
            return []
        self.clip_armed = False
        unmet = [n for n in self.cvs_names if self.cvs_latest.get(n, 0.0) < self.cvs_thr]
        spoken = join_words([self.cvs_spoken[n] for n in unmet])
        first = self.clip_run[0]
        what = "clip applier" if "clip_applier" in fv.instruments else "clipper"
        steps = [
            Step(f"The {what} is in view in {self.clip_run.n} frames from "
                 f"{fmt_time(first.t_s)}.", True,
                 {"observations": [f.obs("instrument", n) for f in self.clip_run
                                   for n in ("clip_applier", "Clipper") if n in f.instruments]}),
            Step(f"The critical view of safety has not been reached: {spoken} not met.", True,
                 {"scores": {n: round(self.cvs_latest.get(n, 0.0), 3) for n in self.cvs_names},
                  "rule": f"CVS = all criteria >= {self.cvs_thr} for {cfg.cvs_frames} frames"}),
            Step(f"Rule: {self.rule_text}.", True,
                 {"rule": self.rule_text, "source": self.kg.sources.get(self.rule_src,
                                                                        self.rule_src)}),
        ]
        text = (f"Caution: clipping before the critical view of safety. {spoken.capitalize()} "
                f"not met.")
        return [self._fire(RaisedAlert("clip_before_cvs", text, fv.t_s, fv.frame_id, steps,
                                       data={"unmet": unmet}, banner="CLIP BEFORE CVS"))]

    def _clip_unconfirmed(self, fv: FrameView) -> list[RaisedAlert]:
        """The clip applier is in view and the surgeon has not confirmed the CVS: ask for
        the confirmation ("cvs_confirm_prompt"), or alert when they said "not confirmed"."""
        pol = self.cvs_policy
        rule = "cvs_confirm_prompt" if pol.state is None else "clip_before_cvs"
        if (self.rules is not None and rule not in self.rules) or \
                not self._may_fire(rule, "", fv.t_s):
            return []
        self.clip_armed = False
        first = self.clip_run[0]
        what = "clip applier" if "clip_applier" in fv.instruments else "clipper"
        est = {n: round(self.cvs_latest.get(n, 0.0), 3) for n in self.cvs_names}
        steps = [
            Step(f"The {what} is in view in {self.clip_run.n} frames from "
                 f"{fmt_time(first.t_s)}.", True,
                 {"observations": [f.obs("instrument", n) for f in self.clip_run
                                   for n in ("clip_applier", "Clipper") if n in f.instruments]}),
            Step("The critical view of safety is the surgeon's call here: " + pol.why + ".",
                 True, {"rule": "CVS from the surgeon's confirmation"}),
            Step("My visual estimate is advisory only (" + pol.advisory() + ").", True,
                 {"scores": est}),
        ]
        if pol.state is None:
            text = "Before clipping: confirm the critical view of safety."
            banner = "CONFIRM CVS BEFORE CLIPPING"
        else:
            steps.insert(1, Step(f"You said the critical view is not confirmed at "
                                 f"{fmt_time(pol.stated_at or 0.0)}.", True,
                                 {"observations": [{"kind": "cvs_confirmation",
                                                    "confirmed": False,
                                                    "t_s": pol.stated_at}]}))
            text = "Caution: clipping while the critical view of safety is not confirmed."
            banner = "CLIP BEFORE CVS"
        return [self._fire(RaisedAlert(rule, text, fv.t_s, fv.frame_id, steps,
                                       data={"cvs_source": "surgeon", "estimate": est},
                                       banner=banner))]

    def _bleeding(self, fv: FrameView) -> list[RaisedAlert]:
        cfg = self.cfg
        b = fv.structures.get("blood")
        area = float(b["area"]) if b else 0.0
        if area < cfg.bleed_area:
            self.bleed_run = _FrameRun()
            if area < cfg.bleed_area / 2 and fv.t_s - self.bleed_last_t >= cfg.bleed_clear_s:
                self.bleed_armed = True
            return []
        self.bleed_last_t = fv.t_s
        self.bleed_run.append(fv)
        if self.bleed_run.n < cfg.bleed_frames or not self.bleed_armed:
            return []
        if not self._may_fire("bleeding", "", fv.t_s):
            return []
        self.bleed_armed = False
        where = position_words(b.get("centroid")) if b else "in view"
        areas = [round(float(f.structures["blood"]["area"]), 4) for f in self.bleed_run]
        region = fv.region[0] if fv.region else ""
        seg = f" in the {self._say(region)}" if region in self.order else ""
        steps = [
            Step(f"Blood detected {where}{seg} in {self.bleed_run.n} frames from "
                 f"{fmt_time(self.bleed_run[0].t_s)} (area {areas[0] * 100:.1f}% to "
                 f"{areas[-1] * 100:.1f}% of the view).", True,
                 {"observations": [f.obs("structure", "blood") for f in self.bleed_run],
                  "scores": {"area": areas[-1]}}),
            Step(f"Rule: blood over {cfg.bleed_area * 100:.1f}% of the view for "
                 f"{cfg.bleed_frames} frames is a bleeding onset.", True,
                 {"rule": "bleeding onset"}),
        ]
        self._event(fv.t_s, fv.frame_id, "bleeding_onset", location=where)
        return [self._fire(RaisedAlert("bleeding", f"Bleeding {where}{seg}.", fv.t_s,
                                       fv.frame_id, steps, data={"structure": "blood"},
                                       banner="BLEEDING",
                                       spoken=f"Bleeding {where.replace(' of the image', '')}."
                                       ))]

    def _vessel(self, fv: FrameView) -> list[RaisedAlert]:
        cfg = self.cfg
        v = fv.structures.get("large_vessel")
        area = float(v["area"]) if v else 0.0
        if area < cfg.vessel_area:
            self.vessel_run = _FrameRun()
            if fv.t_s - self.vessel_last_t >= cfg.vessel_clear_s:
                self.vessel_armed = True
            return []
        self.vessel_last_t = fv.t_s
        self.vessel_run.append(fv)
        if self.vessel_run.n < cfg.vessel_frames or not self.vessel_armed:
            return []
        if not self._may_fire("large_vessel", "", fv.t_s):
            return []
        self.vessel_armed = False
        where = position_words(v.get("centroid")) if v else "in view"
        steps = [Step(f"A large vessel is detected {where} in {self.vessel_run.n} frames "
                      f"from {fmt_time(self.vessel_run[0].t_s)}.", True,
                      {"observations": [f.obs("structure", "large_vessel")
                                        for f in self.vessel_run]})]
        text = f"Caution: unexpected large vessel {where}."
        data: dict[str, Any] = {"structure": "large_vessel"}
        ans = None
        if self.hypothesis is not None:
            try:
                ans = self.hypothesis(fv.t_s)
            except Exception as exc:  # noqa: BLE001 - the alert goes out without it
                steps.append(Step(f"The reasoner failed: {exc}", False, {}))
        if ans is not None:
            steps.extend(ans.steps)
            data["hypotheses"] = ans.data.get("hypotheses", [])
            if not ans.abstained and ans.data.get("hypotheses"):
                top = ans.data["hypotheses"][0]
                text += f" Most likely {top.get('article', '')}{top['label']}."
            else:
                text += " I am not sure what it is."
        self._event(fv.t_s, fv.frame_id, "large_vessel")
        top = (data.get("hypotheses") or [{}])[0].get("label", "") \
            if "Most likely" in text else ""
        # spoken short: an answer asked right after it must not wait long behind it
        spoken = f"Caution: large vessel {where.replace(' of the image', '')}."
        return [self._fire(RaisedAlert("large_vessel", text, fv.t_s, fv.frame_id, steps,
                                       data=data, banner="LARGE VESSEL" + (
                                           f": {top}" if top else ""), spoken=spoken))]

    def _phase(self, fv: FrameView) -> list[RaisedAlert]:
        cfg = self.cfg
        if fv.phase is None or fv.phase[1] < cfg.phase_min_score:
            self.phase_run = ("", 0, 0.0)
            return []
        name, _ = fv.phase
        run_name, n, t0 = self.phase_run
        self.phase_run = (name, n + 1, t0) if run_name == name else (name, 1, fv.t_s)
        if self.phase_run[1] != cfg.phase_frames or name in self.entered:
            return []
        self.entered[name] = self.phase_run[2]
        if name not in self.phases:
            return []
        idx = self.phases.index(name)
        prev = self.max_phase_idx
        self.max_phase_idx = max(prev, idx)
        if prev < 0 or idx <= prev + 1:
            return []
        skipped = [p for p in self.phases[prev + 1:idx]
                   if p not in self.entered and p not in self.optional]
        if not skipped or not self._may_fire("phase_skipped", ",".join(skipped), fv.t_s):
            return []
        spoken = [self.kg.phase_spoken(p) for p in skipped]
        steps = [
            Step(f"The {self.kg.phase_spoken(name)} phase started at "
                 f"{fmt_time(self.entered[name])} ({cfg.phase_frames} frames with score >= "
                 f"{cfg.phase_min_score}).", True,
                 {"observations": [{"t_s": round(fv.t_s, 3), "frame_id": fv.frame_id,
                                    "kind": "phase", "name": name,
                                    "score": round(fv.phase[1], 4)}]}),
            Step("Phases entered before: " + join_words(
                [f"{self.kg.phase_spoken(p)} from {fmt_time(t)}" for p, t in self.entered.items()
                 if p != name]) + ".", True, {}),
            Step(f"In the procedure model, {join_words(spoken)} comes before the "
                 f"{self.kg.phase_spoken(name)} phase.", True,
                 {"rule": "laparoscopic cholecystectomy phase order",
                  "triples": [{"s": a, "p": "precedes", "o": b}
                              for a, b in zip(self.phases, self.phases[1:], strict=False)]}),
        ]
        text = f"Expected step skipped: the {join_words(spoken)} phase."
        return [self._fire(RaisedAlert("phase_skipped", text, fv.t_s, fv.frame_id, steps,
                                       key=",".join(skipped), data={"skipped": skipped},
                                       banner="SKIPPED: " + ", ".join(spoken)))]

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

    def _say(self, key: str) -> str:
        if self.say_fn is not None:
            return self.say_fn(key)
        e = self.kg.entities.get(key)
        return e.label if e is not None else key.replace("_", " ")

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
