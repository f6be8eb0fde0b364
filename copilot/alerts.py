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

Rooms: the rule table and data types (``copilot.alert_rules``), the dedup and mute state
(``copilot.alert_gate``), rule evaluation per family (``copilot.alert_procedure``,
``copilot.alert_presence``, ``copilot.alert_survey``); this module composes them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from copilot.alert_gate import HISTORY_MAX, AlertGate
from copilot.alert_presence import PresenceRules
from copilot.alert_procedure import ProcedureRules
from copilot.alert_rules import LEVELS, RULE_EVENTS, AlertConfig, FrameRun, FrameView, RaisedAlert
from copilot.alert_survey import SurveyRules
from kg_reasoning.graph import KnowledgeGraph
from kg_reasoning.timeline import Observation

__all__ = ["HISTORY_MAX", "LEVELS", "RULE_EVENTS", "AlertConfig", "AlertEngine", "AlertGate",
           "FrameView", "RaisedAlert", "_FrameRun"]

_FrameRun = FrameRun  # its name before the rule table moved to copilot.alert_rules


class AlertEngine(ProcedureRules, PresenceRules, SurveyRules):
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
        self.events: list[Observation] = []  # event observations for the timeline
        self.gate = AlertGate(self.cfg)  # cooldowns, acknowledgements, newest alerts
        self._init_procedure(kg)
        self._init_presence()
        self._init_survey(kg)

    # ------------------------------------------------------------------ bookkeeping
    @property
    def history(self) -> deque[RaisedAlert]:
        """The newest alerts raised (``HISTORY_MAX``; the session log has them all)."""
        return self.gate.history

    def _may_fire(self, rule: str, key: str, t: float) -> bool:
        return self.gate.may_fire(rule, key, t)

    def _fire(self, a: RaisedAlert) -> RaisedAlert:
        return self.gate.fire(a)

    def acknowledge(self, alert: RaisedAlert, t_s: float) -> None:
        """The surgeon acknowledged ``alert``: that rule + key stays quiet for a while."""
        self.gate.acknowledge(alert, t_s)

    def _event(self, t: float, frame_id: int, name: str, **attrs: Any) -> None:
        self.events.append(Observation(t, frame_id, "event", name, 1.0, attrs))

    def take_events(self) -> list[Observation]:
        """Event observations produced since the last call."""
        ev, self.events = self.events, []
        return ev

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

    def _say(self, key: str) -> str:
        if self.say_fn is not None:
            return self.say_fn(key)
        e = self.kg.entities.get(key)
        return e.label if e is not None else key.replace("_", " ")
