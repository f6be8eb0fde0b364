"""The brain's command execution: what an understood question does (controls, answers from
the reasoner, teaching, overlay actions such as outline / hide / mute / bookmark).
Times are media seconds.

A mixin of ``copilot.brain.Brain``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from copilot.alerts import RaisedAlert
from copilot.brain_types import OUTLINE_MIN_SCORE, BrainAnswer
from copilot.messages import Message, Transcript, new_trace_id
from copilot.validity import off_label_answer
from kg_reasoning.reasoner import COLOUR_RGB, Question, Step
from kg_reasoning.reasoner import Answer as KGAnswer
from kg_reasoning.teaching import TeachCommand


class CommandHandling:
    """Execute a question: commands, answers and their overlay actions."""

    def _execute(self, q: Question, tr: Transcript, confirmed: str = "") -> list[Message]:
        t = float(q.t_s if q.t_s is not None else tr.end_s)
        intent = q.intent
        if cmd := self.teaching.command_of(q):
            return [self._taught(cmd, q, tr, t, confirmed)]
        quick = self._run_command(q, tr, t)
        if quick is not None:
            return quick
        spec = self.cat.intents.get(intent)
        if self.privacy_hidden and not (spec and spec.state_changing) and intent != "bookmark":
            why = f"the video is hidden ({self.privacy_hidden})"
            return [self._reply(tr, KGAnswer(
                f"I can't answer now: {why}, so I see nothing of the patient.",
                [Step(f"Answer withheld: {why}.", True, {})], 0.0, True,
                f"hidden: {self.privacy_hidden}", intent), q)]
        ans = self._cvs_answer(intent, tr, t)
        if ans is None and intent == "missed_segments":
            ans = self._answer_missed(q)
        elif ans is None:
            ans = self.reasoner.answer(q, self.timeline, self.last_answer)
        ans = off_label_answer(ans, intent, self.offlabel, self.scenario or "",
                               self.real_video, q.slots.get("structure"), self.real_view)
        if confirmed:
            ans.steps.insert(0, Step(f"Confirmed after {confirmed}.", True, {}))
        det = self._outline_report(q, ans) if intent == "outline_structure" else None
        out: list[Message] = [self._reply(tr, ans, q, detection=det)]
        for action in ans.overlay_actions:
            out.extend(self._apply(action, tr, t))
        return out

    def _run_command(self, q: Question, tr: Transcript, t: float) -> list[Message] | None:
        """The commands that need no answer from the reasoner's view of the video (repeat,
        stop, acknowledge, explain); None for any other intent."""
        intent = q.intent
        if intent == "repeat":
            return [self._control(tr, "repeat")]
        if intent == "stop":
            return [self._control(tr, "stop")]
        if intent == "acknowledge":
            a = self._acknowledge(t)
            text = f"Acknowledged: {a.rule.replace('_', ' ')} alert." if a else "Acknowledged."
            ans = KGAnswer(text, [Step(f"Command {intent}.", True, {})], 1.0, intent=intent,
                           overlay_actions=[{"action": "acknowledge"}])
            return [self._reply(tr, ans, q),
                    self._control(tr, "acknowledge", rule=a.rule if a else None)]
        if intent == "explain":
            prev = self._explain_target()
            ans = self.reasoner.answer(q, self.timeline, prev)
            return [self._reply(tr, ans, q, remember=False)]
        return None

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
