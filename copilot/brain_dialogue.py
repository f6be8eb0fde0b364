"""The brain's question handling: an utterance is understood, held for confirmation when
the recognition or the voice is unsure, and answered; replies and controls are logged.
Times are media seconds (``end_s`` of the utterance).

A mixin of ``copilot.brain.Brain``.
"""

from __future__ import annotations

from typing import Any

from copilot.brain_types import NO_READBACK, NO_WORDS, YES_WORDS, BrainAnswer, _Pending
from copilot.messages import Control, Message, Transcript
from kg_reasoning.nlu import Understanding, understand, unsure_answer
from kg_reasoning.reasoner import Answer as KGAnswer
from kg_reasoning.reasoner import Question, Step
from kg_reasoning.teaching import STATE_CHANGING as TEACH_STATE_CHANGING


class DialogueHandling:
    """Utterance -> question -> (held | executed) -> reply."""

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
            u, q = self._understand(tr, text, t)
            words = set(text.lower().replace(",", " ").replace(".", " ").replace("?", " ")
                        .split())
            if self.pending is not None:
                done = self._resolve_pending(q, tr, t, words)
                if done is not None:
                    return done
            if q is None:  # says what it is unsure of, and asks back when it has a guess
                ans = unsure_answer(u)
                ans.data["understanding"] = u.to_dict()
                return [self._reply(tr, ans, redact=True)]
            q.t_s = t
            held = self._read_back(q, tr, text)
            return [held] if held is not None else self._execute(q, tr)

    def _understand(self, tr: Transcript, text: str, t: float
                    ) -> tuple[Understanding | None, Question | None]:
        """Teaching command or catalogue question of an addressed utterance; logs it."""
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
        return u, q

    def _resolve_pending(self, q: Question | None, tr: Transcript, t: float,
                         words: set[str]) -> list[Message] | None:
        """A command is held: a "yes" (or the same command again) runs it, a "no" (or "stop")
        cancels it; the held command is dropped either way. None: handle ``q`` as usual."""
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
        return None

    def _read_back(self, q: Question, tr: Transcript, text: str) -> Message | None:
        """Hold ``q`` for confirmation when the recognition confidence is low, or when it
        changes state and the voice check fails; None: run it now."""
        body, _ = self.cat.strip_wake_word(text)
        if tr.confidence < self.cfg.confirm_below and q.intent not in NO_READBACK:
            return self._hold(q, tr, body, "low recognition confidence "
                              f"{tr.confidence:.2f} < {self.cfg.confirm_below}",
                              f"Did you say: {body}?")
        intent = self.cat.intents.get(q.intent)
        changing = intent.state_changing if intent is not None else \
            q.intent in TEACH_STATE_CHANGING
        if changing and self._voice_check(tr):
            score = "none" if tr.speaker_score is None else f"{tr.speaker_score:.2f}"
            return self._hold(q, tr, body, f"voice check {score} < "
                              f"{self.cfg.speaker_threshold}",
                              f"Please confirm: {body}. Say yes, or say it again.")
        return None

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

    def _explain_target(self) -> KGAnswer | None:
        if self._last_kind == "alert" and self.last_alert is not None:
            a = self.last_alert
            return KGAnswer(a.text, list(a.steps), 1.0, False, "", a.rule)
        return self.last_answer

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
