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

Rooms (mixins of :class:`Brain`, whose ``__init__`` holds all the state): the perception
bridge (``copilot.brain_perception``), the validity glue: off-label monitor and CVS policy
(``copilot.brain_validity``), question handling (``copilot.brain_dialogue``), command
execution (``copilot.brain_commands``), the overlay (``copilot.brain_overlay``); the message
types and settings are in ``copilot.brain_types``.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import Any

from copilot.alerts import AlertConfig, AlertEngine, RaisedAlert
from copilot.brain_commands import CommandHandling
from copilot.brain_dialogue import DialogueHandling
from copilot.brain_overlay import (  # noqa: F401 re-exports
    COVERAGE_COLOURS,
    SEGMENT_ABBR,
    OverlayState,
)
from copilot.brain_perception import PerceptionBridge
from copilot.brain_types import (  # noqa: F401 re-exports: the brain's types live there
    NO_READBACK,
    NO_WORDS,
    OUTLINE_MIN_SCORE,
    SOURCE,
    YES_WORDS,
    BrainAlert,
    BrainAnswer,
    BrainConfig,
    _Pending,
)
from copilot.brain_validity import ValidityGlue
from copilot.clock import SYSTEM_CLOCK, Clock
from copilot.messages import Finding, Message, new_trace_id
from copilot.overlay import AnnotationSet
from copilot.perception import PerceptionTimeline
from copilot.perception import findings_from_result as _findings
from copilot.pulse import PulseTracker
from copilot.teaching import TaughtConcepts
from copilot.validity import CvsPolicy, OffLabelMonitor, procedure_rules
from kg_reasoning.reasoner import Answer as KGAnswer
from kg_reasoning.reasoner import Reasoner, ReasonerConfig

__all__ = ["Brain", "BrainAlert", "BrainAnswer", "BrainConfig", "findings_from_result"]


def findings_from_result(result: Any, frame_id: int, media_t_s: float) -> list[Finding]:
    """``vision.pipeline.VisionResult`` -> findings (``copilot.perception`` has the mapping)."""
    return _findings(result, frame_id, media_t_s)


class Brain(PerceptionBridge, ValidityGlue, DialogueHandling, CommandHandling, OverlayState):
    """Perception timeline, alerts, dialogue and overlay state of one copilot session."""

    def __init__(self, scenario: str | None = None, session: Any | None = None,
                 reasoner: Reasoner | None = None, clock: Clock = SYSTEM_CLOCK,
                 tracer: Any | None = None, config: BrainConfig | None = None,
                 alert_config: AlertConfig | None = None, matcher: Any | None = None,
                 cvs_policy: CvsPolicy | None = None, use_in_domain: bool = True,
                 real_video: bool = False, real_view: Any | None = None) -> None:
        self.scenario = scenario  # the stated procedure (copilot.validity.PROCEDURES)
        self.cvs_policy = cvs_policy or CvsPolicy()
        self.offlabel = OffLabelMonitor(scenario or "cholecystectomy")
        self.pulse = PulseTracker()  # pulsatile_score on vessel findings (copilot.pulse)
        self.use_in_domain = use_in_domain  # False: only the procedure mismatch counts
        self.real_video = real_video  # not one of our synthetic feeds (validity.py)
        self.real_view = real_view  # what real labels taught the model (copilot.real_view)
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
