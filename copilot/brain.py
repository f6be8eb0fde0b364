"""The copilot's brain: perception timeline + alert engine + dialogue + overlay state.

The app calls, from its threads::

    brain = Brain(scenario="cholecystectomy", session=SessionLog(path))
    findings = brain.findings_from_result(vision_result, frame_id, media_t_s)  # vision thread
    msgs = brain.on_findings(frame_id, media_t_s, findings)  # -> [Alert] (+ Control)
    msgs = brain.on_transcript(transcript, addressed)        # speech thread -> [Answer, Control]
    ann = brain.overlay(frame_id)                            # compositor -> AnnotationSet | None
    brain.on_frame(frame_id, media_t_s, rgb)                 # optional: evidence thumbnails
    msgs = brain.finish(media_t_s)                           # end of the feed -> [Alert]
    brain.visible_overlays()                                 # {"segmentation": bool, ...}

All public methods are thread-safe (one re-entrant lock). Times are media seconds of the feed
(``media_t_s`` of frames, ``end_s`` of utterances).

Messages returned: :class:`BrainAlert` (``copilot.messages.Alert`` with ``silent`` = muted,
``level`` = alert / warning), :class:`BrainAnswer` (``copilot.messages.Answer`` with ``intent``
and ``slots``), and ``Control`` with ``command`` in ``stop`` (stop speaking), ``repeat`` (say
the last utterance again), ``mute`` (``args={"minutes": N}``), ``hide`` / ``show``
(``args={"source": "vision"}``: the segmentation overlay), ``acknowledge``.

Dialogue: the transcript's text goes through ``kg_reasoning.nlu.understand``; commands with
ASR confidence below ``confirm_below`` are read back ("Did you say ...?") and run only after a
"yes" / "confirm" or the same command again; state-changing commands (catalogue
``state_changing``) from a voice whose ``speaker_score`` is below ``speaker_threshold`` (or
unscored when ``require_enrolled``) need the same confirmation. Non-addressed speech is logged
as ``{"type": "speech", "addressed": false}`` with its times only, never its words.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from copilot.alerts import AlertConfig, AlertEngine, FrameView, RaisedAlert
from copilot.clock import SYSTEM_CLOCK, Clock
from copilot.messages import Alert, Answer, Control, Finding, Message, Transcript, new_trace_id
from copilot.overlay import AnnotationSet, Banner, Box, Outline, Text
from copilot.perception import PerceptionTimeline, observation_of
from copilot.perception import findings_from_result as _findings
from copilot.pulse import PulseTracker
from copilot.teaching import TaughtConcepts
from copilot.validity import (
    OFF_LABEL_SPEECH,
    CvsPolicy,
    OffLabelMonitor,
    cvs_confirmation_answer,
    cvs_statement,
    cvs_surgeon_answer,
    off_label_answer,
    procedure_rules,
)
from kg_reasoning.nlu import understand, unsure_answer
from kg_reasoning.reasoner import (
    COLOUR_RGB,
    Question,
    Reasoner,
    ReasonerConfig,
    Step,
    fmt_time,
)
from kg_reasoning.reasoner import Answer as KGAnswer
from kg_reasoning.teaching import STATE_CHANGING as TEACH_STATE_CHANGING
from kg_reasoning.teaching import TeachCommand

__all__ = ["Brain", "BrainAlert", "BrainAnswer", "BrainConfig", "findings_from_result"]

SOURCE = "brain"
#: an outline is reported (and drawn, copilot.overlay.DrawOptions.min_score) at or above this
OUTLINE_MIN_SCORE = 0.5
YES_WORDS = frozenset({"yes", "yeah", "yep", "confirm", "confirmed", "correct", "affirmative"})
NO_WORDS = frozenset({"no", "nope", "cancel", "negative", "wrong"})
#: Intents never read back (cheap to undo, or needed at once).
NO_READBACK = frozenset({"stop", "repeat", "acknowledge", "explain"})
SEGMENT_ABBR = {"duodenum_d1": "D1", "duodenum_d2": "D2", "duodenum_d3": "D3",
                "duodenum_d4": "D4", "jejunum": "Jej", "ileum": "Ile", "caecum": "Cae",
                "ascending_colon": "Asc", "transverse_colon": "Tra", "descending_colon": "Des",
                "sigmoid_colon": "Sig", "rectum": "Rec"}
COVERAGE_COLOURS = {"seen": (40, 220, 60), "brief": (255, 150, 0), "missed": (255, 40, 40),
                    "pending": (160, 160, 160)}


def findings_from_result(result: Any, frame_id: int, media_t_s: float) -> list[Finding]:
    """``vision.pipeline.VisionResult`` -> findings (``copilot.perception`` has the mapping)."""
    return _findings(result, frame_id, media_t_s)


@dataclass(kw_only=True, slots=True)
class BrainAlert(Alert):
    """An alert with ``silent`` (alerts muted: draw, do not speak) and ``level``."""

    silent: bool = False
    level: str = "alert"


@dataclass(kw_only=True, slots=True)
class BrainAnswer(Answer):
    """An answer with the understood ``intent`` and ``slots``."""

    intent: str = ""
    slots: dict[str, Any] = field(default_factory=dict)
    #: an outline command's detection confidence now (0-1; None: not seen / not a detection):
    #: ``confidence`` stays the command's parse confidence
    detection: float | None = None


@dataclass
class BrainConfig:
    """Dialogue and overlay settings (confidences 0-1, times in media seconds)."""

    confirm_below: float = 0.3  # ASR confidence under which a command is read back
    speaker_threshold: float = 0.75  # enrolled-voice score needed for state-changing commands
    require_enrolled: bool = False  # True: unscored voices must confirm state changes
    pending_timeout_s: float = 15.0
    banner_s: float = 8.0
    min_seen_s: float = 1.0  # a bowel segment counts as seen after this long in view
    persist_hz: float = 2.0  # obs lines per second written to the session
    record_hz: float = 5.0  # frames per second kept in the perception timeline
    recent_s: float = 120.0  # full-detail memory
    reasoner_recent_s: float = 6.0  # "now" for the reasoner
    default_outline_s: float | None = None  # None: highlight until told otherwise
    thumb_hz: float = 2.0  # evidence thumbnails kept per second (on_frame)
    thumb_keep_s: float = 20.0  # and for how long
    thumb_width: int = 192  # px
    keep_items: int = 256  # alerts / bookmarks kept in memory (the session log has all)
    max_banners: int = 8  # alert banners shown at once (the newest)


@dataclass
class _Pending:
    question: Question
    t_s: float
    why: str
    text: str


class Brain:
    """Perception timeline, alerts, dialogue and overlay state of one copilot session."""

    def __init__(self, scenario: str | None = None, session: Any | None = None,
                 reasoner: Reasoner | None = None, clock: Clock = SYSTEM_CLOCK,
                 tracer: Any | None = None, config: BrainConfig | None = None,
                 alert_config: AlertConfig | None = None, matcher: Any | None = None,
                 cvs_policy: CvsPolicy | None = None, use_in_domain: bool = True,
                 real_video: bool = False) -> None:
        self.scenario = scenario  # the stated procedure (copilot.validity.PROCEDURES)
        self.cvs_policy = cvs_policy or CvsPolicy()
        self.offlabel = OffLabelMonitor(scenario or "cholecystectomy")
        self.pulse = PulseTracker()  # pulsatile_score on vessel findings (copilot.pulse)
        self.use_in_domain = use_in_domain  # False: only the procedure mismatch counts
        self.real_video = real_video  # not one of our synthetic feeds (validity.py)
        self._off_label_said = False
        self.session = session
        self.clock = clock
        self.tracer = tracer
        self.cfg = config or BrainConfig()
        self.reasoner = reasoner or Reasoner(
            config=ReasonerConfig(recent_s=self.cfg.reasoner_recent_s))
        self.kg = self.reasoner.kg
        self.cat = self.reasoner.cat
        self.matcher = matcher
        self.timeline = PerceptionTimeline(recent_s=self.cfg.recent_s,
                                           record_hz=self.cfg.record_hz)
        self.engine = AlertEngine(self.kg, alert_config, hypothesis=self._vessel_hypothesis,
                                  say=self.reasoner.say,
                                  rules=procedure_rules(scenario, real_video),
                                  cvs_policy=self.cvs_policy)
        self._lock = threading.RLock()
        self.media_t = 0.0
        self.frame_id = -1
        self.frame_size: tuple[int, int] | None = None
        self._shapes: dict[str, list[Any]] = {}  # structure -> polygons (latest frame)
        self._shape_frame: dict[str, int] = {}
        self._shape_score: dict[str, float] = {}  # structure -> detection confidence (0-1)
        self.highlights: dict[str, dict[str, Any]] = {}
        self.hidden = False
        self.coverage_on = self.scenario == "bowel-survey"
        self.mute_until = -math.inf
        self.last_answer: KGAnswer | None = None
        self.last_alert: RaisedAlert | None = None
        self._last_kind = ""  # "answer" | "alert": what "why?" explains
        self.pending: _Pending | None = None
        self.banners: list[tuple[RaisedAlert, float]] = []  # pruned as they expire
        # newest only: the session log keeps every alert and bookmark
        self.bookmarks: deque[dict[str, Any]] = deque(maxlen=self.cfg.keep_items)
        self.alerts: deque[RaisedAlert] = deque(maxlen=self.cfg.keep_items)
        self._persist_t = -math.inf
        self._ann: AnnotationSet | None = None
        self._ann_key: tuple | None = None
        self._version = 0
        self._thumbs: deque[tuple[float, int, bytes]] = deque(
            maxlen=int(math.ceil(self.cfg.thumb_hz * self.cfg.thumb_keep_s)) + 1)
        self._region = ""
        self.privacy_hidden = ""  # why the picture is hidden now ("" = shown)
        self.teaching = TaughtConcepts()  # concepts taught by example (copilot.teaching)

    def set_privacy(self, hidden: bool, media_t_s: float, reason: str) -> None:
        """The app hid the picture (``reason``: out of body, no field of view) or shows it
        again. Hidden frames' findings never reach the brain (no alerts); meanwhile answers
        that depend on the view are withheld and say why."""
        with self._lock:
            self.privacy_hidden = reason if hidden else ""
            self._version += 1

    # ================================================================== perception
    def findings_from_result(self, result: Any, frame_id: int, media_t_s: float
                             ) -> list[Finding]:
        """The vision stage's adapter (see ``copilot.perception.findings_from_result``)."""
        return _findings(result, frame_id, media_t_s, clock=self.clock)

    def on_frame(self, frame_id: int, media_t_s: float, image: Any) -> None:
        """Optional: offer a decoded RGB frame for evidence thumbnails (cheap when not kept).

        At most ``thumb_hz`` frames per second are kept (JPEG, ``thumb_width`` px wide) for
        ``thumb_keep_s``; alerts and bookmarks attach the nearest one to their session line.
        Frames while the camera is out of the body are never kept.
        """
        t = float(media_t_s)
        with self._lock:
            if self._thumbs and 0 <= t - self._thumbs[-1][0] < 1.0 / self.cfg.thumb_hz:
                return
            if self._region == "out_of_body":
                return
        import cv2
        import numpy as np

        img = np.asarray(image)
        h, w = img.shape[:2]
        tw = min(self.cfg.thumb_width, w)
        small = cv2.resize(img, (tw, max(1, round(h * tw / w))), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 70])
        if not ok:
            return
        with self._lock:
            self._thumbs.append((t, int(frame_id), buf.tobytes()))
            while self._thumbs and t - self._thumbs[0][0] > self.cfg.thumb_keep_s:
                self._thumbs.popleft()

    def _thumbnail(self, t: float) -> dict[str, Any] | None:
        """The kept thumbnail nearest to media time ``t`` (within 2 s), session form."""
        if not self._thumbs:
            return None
        tt, fid, jpg = min(self._thumbs, key=lambda x: abs(x[0] - t))
        if abs(tt - t) > 2.0:
            return None
        return {"t_s": round(tt, 3), "frame_id": fid,
                "jpeg_b64": base64.b64encode(jpg).decode("ascii")}

    def on_findings(self, frame_id: int, media_t_s: float, findings: list[Finding]
                    ) -> list[Message]:
        """One analysed frame: update the timeline and the rules; returns the alerts raised."""
        t = float(media_t_s)
        with self._lock:
            self.media_t = max(self.media_t, t)
            self.frame_id = max(self.frame_id, frame_id)
            feats = [f for f in findings if f.kind == "pixel_features"]
            if feats:  # teaching only: never in the timeline or the alert rules
                findings = [f for f in findings if f.kind != "pixel_features"]
                reg = next((f for f in findings if f.kind == "region"), None)
                size = (int(reg.attrs.get("frame_w", 0)), int(reg.attrs.get("frame_h", 0))) \
                    if reg is not None else (self.frame_size or (1, 1))
                self.teaching.on_features(feats[0].attrs, frame_id, t, size)
            for f in findings:
                if f.kind == "region":
                    self._region = f.name
                if f.kind == "region" and "frame_w" in f.attrs:
                    self.frame_size = (int(f.attrs["frame_w"]), int(f.attrs["frame_h"]))
                polys = f.attrs.get("polygons")
                if polys is not None and f.kind in ("structure", "instrument"):
                    self._shapes[f.name] = polys
                    self._shape_frame[f.name] = frame_id
                    self._shape_score[f.name] = float(f.score)
            for name in [n for n, fid in self._shape_frame.items() if fid != frame_id]:
                self._shapes.pop(name, None)
                self._shape_frame.pop(name, None)
            self.pulse.update(t, findings)
            obs = [observation_of(f, t) for f in findings]
            recorded = self.timeline.add_frame(t, obs)
            persist = recorded and t - self._persist_t >= 1.0 / self.cfg.persist_hz * 0.999
            if persist:
                self._persist_t = t
                self._persist(obs)
            fv = FrameView.of(frame_id, t, findings, self.engine.cfg.min_score)
            out = self._off_label_update(frame_id, t, findings, fv)
            if self.offlabel.off_label:  # vision alerts are withheld
                self._version += 1
                return out
            raised = self.engine.update(fv)
            self._take_events()
            self._version += 1
            return out + [self._alert_message(a) for a in raised]

    def _off_label_update(self, frame_id: int, t: float, findings: list[Finding],
                          fv: FrameView) -> list[Message]:
        """Feed the off-label monitor; log span starts / ends; speak the first start."""
        dom = next((f for f in findings if f.kind == "domain"), None)
        in_domain = off = None
        if dom is not None and self.use_in_domain:
            in_domain, off = float(dom.score), bool(dom.attrs.get("off_label", False))
        region, rscore = fv.region if fv.region else (None, 0.0)
        change = self.offlabel.update(t, in_domain, off, region, rscore)
        if change is None:
            return []
        span = self.offlabel.spans[-1]
        self._write("off_label", t, event=change, **span.to_dict())
        if change != "start":
            return []
        first, self._off_label_said = not self._off_label_said, True
        steps = [Step(f"From {fmt_time(span.start_s)}: {span.reason}.", True,
                      {"observations": [{"kind": "domain", "t_s": round(t, 3),
                                         "in_domain": in_domain, "region": region}]}),
                 Step("Vision-based alerts are withheld until the view is back in the "
                      "validated domain.", True, {})]
        a = RaisedAlert("off_label", OFF_LABEL_SPEECH, t, frame_id, steps, level="warning",
                        data={"reason": span.reason}, banner="OFF-LABEL: no alerts")
        msg = self._alert_message(a)
        msg.silent = msg.silent or not first  # the voice says it once
        return [msg]

    def _persist(self, obs: list[Any]) -> None:
        if self.session is None:
            return
        recs = [("obs", o.t_s, o.to_dict()) for o in obs]
        try:
            if hasattr(self.session, "write_many"):
                self.session.write_many(recs)
            else:
                for typ, media, fields in recs:
                    self.session.write(typ, media_t_s=media, **fields)
        except Exception:  # noqa: BLE001 - the log must never stop the copilot
            pass

    def _take_events(self) -> None:
        ev = self.engine.take_events()
        for e in ev:
            self.timeline.add(e)
        self._persist(ev)

    def _vessel_hypothesis(self, t_s: float) -> KGAnswer:
        return self.reasoner.answer(Question("identify_structure", {"cue": "large_vessel"},
                                             "large vessel alert", t_s), self.timeline)

    def _write(self, type: str, media_t_s: float | None, **fields: Any) -> None:
        if self.session is None:
            return
        try:
            self.session.write(type, media_t_s=media_t_s, **fields)
        except Exception:  # noqa: BLE001 - the log must never stop the copilot
            pass

    # ================================================================== alerts
    def _alert_message(self, a: RaisedAlert) -> BrainAlert:
        muted = a.t_s < self.mute_until
        self.alerts.append(a)
        self.last_alert = a
        self._last_kind = "alert"
        self.banners = [(b, u) for b, u in self.banners if u > self.media_t]
        self.banners.append((a, a.t_s + self.cfg.banner_s))
        del self.banners[:-self.cfg.max_banners]
        msg = BrainAlert(t_ns=self.clock.now_ns(), trace_id=new_trace_id("a"),
                         media_t_s=a.t_s, rule=a.rule, text=a.text, frame_id=a.frame_id,
                         steps=a.steps_dicts(), silent=muted, level=a.level, spoken=a.spoken)
        self._write("alert", a.t_s, rule=a.rule, text=a.text, frame_id=a.frame_id,
                    level=a.level, key=a.key, steps=msg.steps, data=a.data, muted=muted,
                    trace_id=msg.trace_id, thumbnail=self._thumbnail(a.t_s))
        return msg

    def finish(self, media_t_s: float) -> list[Message]:
        """End of the feed: the survey-end checks (e.g. a bowel segment never seen)."""
        with self._lock:
            t = max(self.media_t, float(media_t_s))
            if self.offlabel.off_label:
                self.offlabel.close(t)
                self._write("off_label", t, event="end", **self.offlabel.spans[-1].to_dict())
            raised = self.engine.finish(t, self.frame_id)
            self._take_events()
            for rec in self.teaching.summary():
                self._write("taught_summary", t, **rec)
            return [self._alert_message(a) for a in raised]

    # ================================================================== dialogue
    def on_transcript(self, tr: Transcript, addressed: bool) -> list[Message]:
        """One utterance: answer / control messages (nothing for speech not addressed).

        With a tracer, the understanding + reasoning time is a ``brain.dialogue`` span on the
        transcript's trace id.
        """
        t0 = self.clock.now_ns()
        out = self._on_transcript(tr, addressed)
        if self.tracer is not None and out:
            try:
                self.tracer.span("brain", "dialogue", tr.trace_id, t0, self.clock.now_ns(),
                                 outputs=len(out))
            except Exception:  # noqa: BLE001 - tracing is best effort
                pass
        return out

    def _on_transcript(self, tr: Transcript, addressed: bool) -> list[Message]:
        t = float(tr.end_s)
        text = (tr.text or "").strip()
        with self._lock:
            self.media_t = max(self.media_t, t)
            if not addressed or not text:
                self._write("speech", t, addressed=False, start_s=round(tr.start_s, 3),
                            end_s=round(tr.end_s, 3))
                return []
            cmd = self.teaching.parse(text)  # teaching by example first (copilot.teaching)
            u = understand(text, self.cat, self.kg, self.matcher, t_s=t) if cmd is None else \
                None
            q = u.question if u is not None else Question(
                cmd.intent, {"name": cmd.name, "colour": cmd.colour}, cmd.text, t, {}, 1.0)
            # words that are not a command are never written (privacy): only that it was heard
            self._write("transcript", t, text=text if q else None, understood=q is not None,
                        confidence=round(tr.confidence, 4),
                        start_s=round(tr.start_s, 3), end_s=round(tr.end_s, 3),
                        speaker_score=tr.speaker_score, intent=q.intent if q else None,
                        slots=dict(q.slots) if q else {},
                        method=u.method if u is not None else "teaching",
                        trace_id=tr.trace_id)
            words = set(text.lower().replace(",", " ").replace(".", " ").replace("?", " ")
                        .split())
            if self.pending is not None:
                p, self.pending = self.pending, None
                self._version += 1
                if t - p.t_s <= self.cfg.pending_timeout_s:
                    same = q is not None and q.intent == p.question.intent and \
                        q.slots == p.question.slots
                    if words & YES_WORDS or same:
                        p.question.t_s = t
                        return self._execute(p.question, tr, confirmed=p.why)
                    if words & NO_WORDS or (q is not None and q.intent == "stop"):
                        return [self._reply(tr, KGAnswer("Cancelled.", [Step(
                            f"The held command ({p.text}) was cancelled.", True, {})], 1.0,
                            intent="cancel"))]
            if q is None:  # says what it is unsure of, and asks back when it has a guess
                ans = unsure_answer(u)
                ans.data["understanding"] = u.to_dict()
                return [self._reply(tr, ans, redact=True)]
            q.t_s = t
            body, _ = self.cat.strip_wake_word(text)
            if tr.confidence < self.cfg.confirm_below and q.intent not in NO_READBACK:
                return [self._hold(q, tr, body, "low recognition confidence "
                                   f"{tr.confidence:.2f} < {self.cfg.confirm_below}",
                                   f"Did you say: {body}?")]
            intent = self.cat.intents.get(q.intent)
            changing = intent.state_changing if intent is not None else \
                q.intent in TEACH_STATE_CHANGING
            if changing and self._voice_check(tr):
                score = "none" if tr.speaker_score is None else f"{tr.speaker_score:.2f}"
                return [self._hold(q, tr, body, f"voice check {score} < "
                                   f"{self.cfg.speaker_threshold}",
                                   f"Please confirm: {body}. Say yes, or say it again.")]
            return self._execute(q, tr)

    def _voice_check(self, tr: Transcript) -> bool:
        """True when a state-changing command from this voice needs confirmation."""
        if tr.speaker_score is None:
            return self.cfg.require_enrolled
        return tr.speaker_score < self.cfg.speaker_threshold

    def _hold(self, q: Question, tr: Transcript, body: str, why: str, say: str) -> Message:
        self.pending = _Pending(q, float(tr.end_s), why, body)
        self._version += 1
        ans = KGAnswer(say, [Step(f"Held for confirmation: {why}.", True, {})], 0.0, False,
                       why, "confirm", [], {"pending": q.intent})
        return self._reply(tr, ans, remember=False)

    def _execute(self, q: Question, tr: Transcript, confirmed: str = "") -> list[Message]:
        t = float(q.t_s if q.t_s is not None else tr.end_s)
        out: list[Message] = []
        intent = q.intent
        if cmd := self.teaching.command_of(q):
            return [self._taught(cmd, q, tr, t, confirmed)]
        if intent == "repeat":
            out.append(self._control(tr, "repeat"))
            return out
        if intent == "stop":
            out.append(self._control(tr, "stop"))
            return out
        if intent == "acknowledge":
            a = self._acknowledge(t)
            text = f"Acknowledged: {a.rule.replace('_', ' ')} alert." if a else "Acknowledged."
            ans = KGAnswer(text, [Step(f"Command {intent}.", True, {})], 1.0, intent=intent,
                           overlay_actions=[{"action": "acknowledge"}])
            out.append(self._reply(tr, ans, q))
            out.append(self._control(tr, "acknowledge", rule=a.rule if a else None))
            return out
        if intent == "explain":
            prev = self._explain_target()
            ans = self.reasoner.answer(q, self.timeline, prev)
            out.append(self._reply(tr, ans, q, remember=False))
            return out
        spec = self.cat.intents.get(intent)
        if self.privacy_hidden and not (spec and spec.state_changing) and intent != "bookmark":
            why = f"the video is hidden ({self.privacy_hidden})"
            out.append(self._reply(tr, KGAnswer(
                f"I can't answer now: {why}, so I see nothing of the patient.",
                [Step(f"Answer withheld: {why}.", True, {})], 0.0, True,
                f"hidden: {self.privacy_hidden}", intent), q))
            return out
        stated = cvs_statement(intent, {w.strip(",.?!").lower() for w in tr.text.split()})
        if stated is not None:
            self.cvs_policy.confirm(t, stated)
            self._write("cvs_confirmation", t, confirmed=stated, source=self.cvs_policy.source,
                        trace_id=tr.trace_id)
            ans = cvs_confirmation_answer(self.cvs_policy, t, stated)
        elif intent == "cvs_status" and self.cvs_policy.surgeon:
            ans = cvs_surgeon_answer(self.cvs_policy, dict(self.engine.cvs_latest))
        elif intent == "missed_segments":
            ans = self._answer_missed(q)
        else:
            ans = self.reasoner.answer(q, self.timeline, self.last_answer)
        ans = off_label_answer(ans, intent, self.offlabel, self.scenario or "",
                               self.real_video)
        if confirmed:
            ans.steps.insert(0, Step(f"Confirmed after {confirmed}.", True, {}))
        det = self._outline_report(q, ans) if intent == "outline_structure" else None
        out.append(self._reply(tr, ans, q, detection=det))
        for action in ans.overlay_actions:
            out.extend(self._apply(action, tr, t))
        return out

    def _taught(self, cmd: TeachCommand, q: Question, tr: Transcript, t: float,
                confirmed: str) -> BrainAnswer:
        """A teaching command (copilot.teaching): answer and a ``taught`` log record."""
        # a held command confirmed later: any frame still kept (the last 4 s), newest first
        ans, rec = self.teaching.execute(cmd, t, since=None if confirmed else
                                         float(tr.start_s))
        if rec:
            self._write("taught", t, **rec, trace_id=tr.trace_id)
        if confirmed:
            ans.steps.insert(0, Step(f"Confirmed after {confirmed}.", True, {}))
        self._version += 1
        return self._reply(tr, ans, q)

    def teach_click(self, name: str, x: float, y: float, positive: bool = True
                    ) -> BrainAnswer:
        """The UI: teach ``name`` from a click at frame pixel (x, y) of the newest frame."""
        with self._lock:
            t = self.media_t
            ans, rec = self.teaching.click(name, x, y, t, positive)
            tr = Transcript(t_ns=self.clock.now_ns(), trace_id=new_trace_id("u"),
                            media_t_s=t, text=f"(click) this is the {name}", start_s=t,
                            end_s=t, confidence=1.0)
            if rec:
                self._write("taught", t, **rec, trace_id=tr.trace_id)
            self._version += 1
            return self._reply(tr, ans, Question(ans.intent, {"name": name}, tr.text, t))

    def _outline_report(self, q: Question, ans: KGAnswer) -> float | None:
        """Say what an outline command found: "Outlined the X in C, detection 0.62." or that
        X is not seen now (it is outlined when it is); returns the detection confidence."""
        key = q.slots.get("structure")
        if ans.abstained or not key or not any(a.get("action") == "outline"
                                               for a in ans.overlay_actions):
            return None
        name, colour = self.reasoner.say(key), q.slots.get("colour", "green")
        score = self._shape_score.get(key) if self._shapes.get(key) else None
        parse = getattr(q, "parse_score", None)
        ev = {"scores": {"detection": None if score is None else round(score, 3),
                         "parse": None if parse is None else round(float(parse), 3)}}
        if score is not None and score >= OUTLINE_MIN_SCORE:
            ans.answer = f"Outlined the {name} in {colour}, detection {score:.2f}."
            ans.steps.append(Step(f"The {name} is detected in the newest analysed frame "
                                  f"(confidence {score:.2f}).", True, ev))
        else:
            ans.answer = f"I do not see the {name} now; I will outline it when I do."
            ans.steps.append(Step(f"The {name} is not detected in the newest analysed frame"
                                  + ("" if score is None else f" above {OUTLINE_MIN_SCORE:g}")
                                  + ".", False, ev))
            score = None
        return score

    def _answer_missed(self, q: Question) -> KGAnswer:
        """missed_segments with "seen" = at least ``min_seen_s`` in view at the observed rate."""
        t = float(q.t_s or self.media_t)
        minutes = float(q.slots.get("minutes") or 60)
        rate = self.timeline.rate_hz("region", t - minutes * 60.0, t) or self.cfg.record_hz
        need = max(2, int(math.ceil(self.cfg.min_seen_s * rate - 1e-6)))
        r = self.reasoner
        saved = r.cfg
        try:
            r.cfg = dataclasses.replace(saved, seen_min_frames=need)
            ans = r.answer(q, self.timeline, self.last_answer)
        finally:
            r.cfg = saved
        ans.steps.append(Step(f"A segment counts as seen after {self.cfg.min_seen_s:g} s in "
                              f"view ({need} frames at {rate:.1f} frames per second).", True,
                              {"scores": {"seen_min_frames": need, "rate_hz": round(rate, 2)}}))
        return ans

    def _explain_target(self) -> KGAnswer | None:
        if self._last_kind == "alert" and self.last_alert is not None:
            a = self.last_alert
            return KGAnswer(a.text, list(a.steps), 1.0, False, "", a.rule)
        return self.last_answer

    def _acknowledge(self, t: float) -> RaisedAlert | None:
        for a, _ in reversed(self.banners):
            self.engine.acknowledge(a, t)
            self.banners = [(b, u) for b, u in self.banners if b is not a]
            self._version += 1
            return a
        if self.last_alert is not None:
            self.engine.acknowledge(self.last_alert, t)
            return self.last_alert
        return None

    def _apply(self, action: dict[str, Any], tr: Transcript, t: float) -> list[Message]:
        kind = action.get("action")
        out: list[Message] = []
        self._version += 1
        if kind == "outline":
            colour = str(action.get("colour", "green"))
            rgb = tuple(action.get("rgb") or COLOUR_RGB.get(colour, (0, 200, 0)))
            transient = action.get("transient_s", self.cfg.default_outline_s)
            self.highlights[action["structure"]] = {
                "colour": colour, "rgb": rgb,
                "until": t + float(transient) if transient else None}
            self.hidden = False
        elif kind == "hide":
            key = action.get("structure")
            if key:
                self.highlights.pop(key, None)
            else:
                self.highlights.clear()
                self.hidden = True
                self.coverage_on = False
                out.append(self._control(tr, "hide", source="vision"))
        elif kind == "show":
            self.hidden = False
            out.append(self._control(tr, "show", source="vision"))
        elif kind == "show_coverage":
            self.coverage_on = True
        elif kind == "mute_alerts":
            minutes = float(action.get("minutes") or 5)
            self.mute_until = t + minutes * 60.0
            out.append(self._control(tr, "mute", minutes=minutes))
        elif kind == "bookmark":
            bm = {"t_s": round(float(action.get("t_s", t)), 3), "frame_id": self.frame_id,
                  "text": "bookmark"}
            self.bookmarks.append(bm)
            self._write("bookmark", t, **bm, thumbnail=self._thumbnail(bm["t_s"]))
        elif kind == "stop_speech":
            out.append(self._control(tr, "stop"))
        return out

    def _control(self, tr: Transcript, command: str, **args: Any) -> Control:
        msg = Control(t_ns=self.clock.now_ns(), trace_id=tr.trace_id, media_t_s=tr.end_s,
                      command=command, args=args)
        self._write("control", tr.end_s, command=command, args=args, trace_id=tr.trace_id)
        return msg

    def _reply(self, tr: Transcript, ans: KGAnswer, q: Question | None = None,
               remember: bool = True, redact: bool = False,
               detection: float | None = None) -> BrainAnswer:
        if remember:
            self.last_answer = ans
            self._last_kind = "answer"
        steps = [s.to_dict() for s in ans.steps]
        intent = ans.intent or (q.intent if q else "")
        slots = dict(q.slots) if q else {}
        msg = BrainAnswer(t_ns=self.clock.now_ns(), trace_id=tr.trace_id, media_t_s=tr.end_s,
                          question="" if redact else tr.text, text=ans.answer,
                          confidence=ans.confidence,
                          abstained=ans.abstained, reason=ans.reason, steps=steps,
                          actions=list(ans.overlay_actions), intent=intent, slots=slots,
                          detection=detection)
        self._write("answer", tr.end_s, question=msg.question, intent=intent, slots=slots,
                    text=ans.answer, confidence=round(ans.confidence, 4),
                    abstained=ans.abstained, reason=ans.reason, steps=steps,
                    actions=msg.actions, start_s=round(tr.start_s, 3),
                    end_s=round(tr.end_s, 3), trace_id=tr.trace_id)
        return msg

    # ================================================================== overlay
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
