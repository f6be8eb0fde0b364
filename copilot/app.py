"""The copilot's runtime: one video loop that never waits for analysis, plus the listeners.

``Copilot.compose()`` wires (Holoscan style) the stages and their edges::

    source --decode--> [video edge] --compose + sinks--> annotated.mp4 / window / UI
                   \\--> [latest slot] --vision (supervised)--> annotations + brain
    audio  --feeder--> [audio edge, lossless] --speech (supervised)--> brain --> AudioOut
    brain alerts ----------------------------------------------------------> AudioOut

Edge policies: the video edge is lossless in ``fast`` mode (offline: every frame is written)
and latest-wins in ``realtime`` mode (drops counted); analysis always reads the newest frame
from a one-item slot, so a slow, hung or crashing analysis stage never holds the picture.
Audio is lossless with an alarm when full. Every step writes trace spans on one clock.

The ``Copilot`` class holds the composition, the data path's routing (vision -> brain ->
alerts / voice -> overlay), run, stop and health; its parts live in their own rooms:
``copilot.run_config`` (what a run is told, SOURCE / ``--out``, the result),
``copilot.faults`` (fault injection wrappers), ``copilot.wiring`` (the composition steps),
``copilot.listening`` (the speech stage), ``copilot.voice`` (TTS and audio out),
``copilot.loops`` (the threads) and ``copilot.outputs`` (session log, shutdown, outputs).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from copilot import wiring
from copilot.clock import SYSTEM_CLOCK, Clock
from copilot.errors import CopilotError
from copilot.faults import FAULT_STAGES, SPEECH_STEPS, FaultLog, InlineStage, parse_faults
from copilot.listening import AUDIO_CHUNK, ListenerStage, transcript_message
from copilot.loops import OutputMeter, audio_loop, compose_loop, decode_loop, drain_speech, mic_loop
from copilot.media_clock import MediaClock
from copilot.messages import Alert, Answer, Control, Finding, Message, OverlayUpdate
from copilot.messages import Transcript as TranscriptMsg
from copilot.outputs import open_session, shutdown
from copilot.overlay import AnnotationStore, Compositor, Status
from copilot.run_config import RunConfig, RunResult, quiet_native_logs, resolve_out, resolve_source
from copilot.runtime import StageRunner, Watchdog
from copilot.sinks import FrameSink, Mp4Sink, WindowSink
from copilot.tracing import Tracer
from copilot.voice import TimelineSpeechSink, make_voice, resolve_voice, spoken_text

log = logging.getLogger(__name__)

#: moved to their rooms, imported from here by the CLI, the benchmarks and the tests
__all__ = ["AUDIO_CHUNK", "FAULT_STAGES", "Copilot", "RunConfig", "RunResult", "run_copilot",
           "spoken_text"]


class Copilot:
    """The running copilot. Build with a RunConfig, call ``run()`` (blocks) or ``start()``."""

    #: how long (s) the video waits at start for the analysis stages to load their models
    STARTUP_WAIT_S = 20.0

    def __init__(
        self,
        cfg: RunConfig,
        clock: Clock = SYSTEM_CLOCK,
        extra_sinks: list[FrameSink] | None = None,
        on_message: Callable[[Message], None] | None = None,
    ) -> None:
        cfg.check()
        quiet_native_logs()
        self.cfg = cfg
        self.clock = clock
        self.extra_sinks = list(extra_sinks or [])
        self.on_message = on_message
        self.src = resolve_source(cfg.source, cfg.audio)
        self.out_dir, self.video_out = resolve_out(cfg.out)
        self.faults = parse_faults(cfg.faults)
        self.stop_event = threading.Event()
        self.voice_stop = threading.Event()
        self.user_stop = False  # stop() was called (Ctrl-C, the UI): do not wait for the voice
        self.tracer = Tracer(cfg.trace, clock)
        self.fault_log = FaultLog(self.session_write, lambda: self.media_t_s)
        self.tracer.listeners.append(self.fault_log)
        self.store = AnnotationStore()
        self.compositor = Compositor(stale_after=cfg.stale_after)
        self.outputs: dict[str, Path] = {}
        self.frames_in = 0
        self.frames_out = 0
        self.media_t_s = 0.0  # media time of the newest decoded frame
        self.video_done = threading.Event()
        self.error = ""
        self.runners: list[StageRunner] = []
        self.inline: dict[str, InlineStage] = {}
        self.audio_out: Any = None
        self.speech_sink: TimelineSpeechSink | None = None
        self.listener_stage: ListenerStage | None = None
        self.brain: Any = None
        self.session: Any = None
        self.answers = 0
        self.alerts = 0
        self._pending_findings: list[Finding] = []  # of the frame the vision stage is on
        self.media_clock = MediaClock(clock, self.tracer, cfg.mode == "realtime",
                                      self.src.live, cfg.speed)
        self.meter = OutputMeter()  # frames out per second, latest latency (status line)
        self.t0_ns = clock.now_ns()
        self.source: Any = None
        self.composed = False
        #: the vision backend that actually runs (set by compose) and why, when not asked for
        self.vision_backend: str = cfg.vision
        self.vision_backend_reason: str | None = None
        self.asr_backend, self.asr_backend_reason = cfg.asr, None  # the same for the recogniser
        self.voice_backend, self.voice_backend_reason = cfg.voice, None  # and for the voice
        self.tts_engine: Any = None

    # -- composition, in data-path order -------------------------------------------------------
    def compose(self) -> None:
        """Open the source and create edges, stages, sinks; nothing runs yet."""
        from vision.sources import open_source

        cfg = self.cfg
        self.source = open_source(self.src.video, cfg.decoder)
        wiring.make_edges(self, self.source.info)
        self.sinks: list[FrameSink] = list(self.extra_sinks)
        if self.video_out is not None:
            self.sinks.append(Mp4Sink(self.video_out))
        if cfg.window:
            self.sinks.append(WindowSink())
        for name in ("decode", "overlay", "writer", "brain", "tts", "audio_out",
                     *(SPEECH_STEPS if self.speech_wanted() else ())):
            # the voice outlives the video (it finishes what it has to say): its own stop
            stop = self.voice_stop if name in ("tts", "audio_out") else self.stop_event
            self.inline[name] = InlineStage(
                name, self.tracer, self.clock, self.faults.get(name), self.t0_ns, stop
            )
        self.privacy = None
        if cfg.anonymise:
            from copilot.privacy import Anonymiser

            self.privacy = Anonymiser(on_span=self._hidden_span, on_change=self._hidden_change)
        wiring.resolve_vision(self)
        wiring.resolve_speech(self)
        wiring.resolve_validity(self)
        resolve_voice(self)
        open_session(self)
        wiring.make_brain(self)
        for runner in (wiring.make_vision(self), wiring.make_speech(self)):
            if runner is not None:
                self.runners.append(runner)
        if self.brain is not None or self.speech_wanted():
            voice = make_voice(self)  # whenever the brain runs, listening or not
            if voice is not None:
                self.speech_sink, self.audio_out = voice
        self.watchdog = Watchdog(
            [*self.runners, *self.inline.values()],  # type: ignore[list-item]
            self.tracer, self.clock, hang_s=cfg.hang_s,
        )
        self.composed = True

    def speech_wanted(self) -> bool:
        """Does this run listen (``--speech``; auto: when there is audio or a microphone)?"""
        if self.cfg.speech == "off":
            return False
        if self.cfg.speech == "on":
            return True
        return self.src.audio is not None or self.cfg.mic

    def session_write(self, kind: str, **rec: Any) -> None:
        """Append one record to session.jsonl (no-op without a session)."""
        if self.session is None:
            return
        try:
            self.session.write(kind, **rec)
        except Exception as exc:  # noqa: BLE001 - the log must never stop the video
            log.error("session log write failed: %s", exc)

    @property
    def off_label(self) -> bool:
        """Is the view off-label now (vision alerts withheld)?"""
        return self.brain is not None and self.brain.offlabel.off_label

    # -- the data path: vision / speech -> brain -> alerts, answers -> voice, overlay ------------
    def _publish(self, msg: Message) -> None:
        """Hand ``msg`` to ``on_message`` (the UI); its errors are logged, never raised."""
        if self.on_message is not None:
            try:
                self.on_message(msg)
            except Exception as exc:  # noqa: BLE001 - a UI error must not stop the copilot
                log.warning("message listener failed: %s", exc)

    def on_vision(self, msg: Message) -> None:
        """A vision stage output: findings wait for their frame's overlay update, which is
        drawn, handed to the brain with them (its alerts go to ``deliver``) and published."""
        if isinstance(msg, Finding):
            self._pending_findings.append(msg)
            return
        if isinstance(msg, OverlayUpdate):
            findings = [f for f in self._pending_findings if f.frame_id == msg.frame_id]
            self._pending_findings = []
            if self._vision_privacy(msg, findings):
                return  # a hidden frame: nothing made from it is drawn, shown or reasoned on
            self.store.publish(msg.annotations)
            if self.brain is not None:
                t0 = self.clock.now_ns()
                out = self.inline["brain"].call(lambda: self.brain.on_findings(
                    msg.frame_id, msg.media_t_s or 0.0, findings))
                self.tracer.span("brain", "findings", msg.trace_id, t0, self.clock.now_ns(),
                                 frame_id=msg.frame_id)
                for m in out or ():
                    self.deliver(m, trigger=(msg.media_t_s or 0.0, t0))
            self._publish(msg)
            return
        self.deliver(msg)

    def _vision_privacy(self, msg: OverlayUpdate, findings: list[Finding]) -> bool:
        """Give the anonymiser the vision's verdict; True when the analysed frame is hidden."""
        if self.privacy is None:
            return False
        region = next((f for f in findings if f.kind == "region"), None)
        dom = next((f for f in findings if f.kind == "domain"), None)
        self.privacy.note_vision(
            msg.media_t_s or 0.0, region.name if region else None,
            region.score if region else 0.0, dom.score if dom else None,
            bool(dom.attrs.get("off_label")) if dom else None)
        return self.privacy.is_hidden(msg.frame_id)

    def _hidden_span(self, span: Any) -> None:
        """A span of hidden frames ended: one session record (media s, why; no pixels)."""
        self.session_write("hidden", media_t_s=round(span.start_s, 3), **span.as_record())

    def _hidden_change(self, hidden: bool, media_t_s: float, reason: str) -> None:
        """The picture is hidden (or shown again): the brain pauses alerts and answers."""
        self.tracer.event("privacy", "hidden" if hidden else "shown", f"p{media_t_s:.3f}",
                          reason=reason, media_t_s=round(media_t_s, 3))
        if hidden:  # a run cut mid-span still shows where hiding began
            self.session_write("hiding", media_t_s=round(media_t_s, 3), reason=reason)
        if self.brain is not None:
            try:
                self.brain.set_privacy(hidden, media_t_s, reason)
            except Exception as exc:  # noqa: BLE001 - the video goes on
                log.warning("brain privacy update failed: %s", exc)

    def on_speech(self, msg: Message) -> None:
        """A transcript from the speech stage: published, answered by the brain, delivered."""
        if not isinstance(msg, TranscriptMsg):
            return
        addressed = msg.accepted
        self._publish(msg)
        if self.brain is None:
            return
        t0 = self.clock.now_ns()
        out = self.inline["brain"].call(lambda: self.brain.on_transcript(msg, addressed))
        self.tracer.span("brain", "answer", msg.trace_id, t0, self.clock.now_ns())
        for m in out or ():
            if isinstance(m, Answer):
                m.trace_id = msg.trace_id  # speech end -> answer audio on one trace
            self.deliver(m, trigger=(msg.end_s, t0))

    def deliver(self, msg: Message, trigger: tuple[float, int] | None = None) -> None:
        """Route a brain output: alerts and answers to the voice, controls to the audio out."""
        from speech.audio_out import Priority as SayPriority

        self._publish(msg)
        if trigger is not None:
            self.media_clock.note_trigger(msg.trace_id, trigger)
        if isinstance(msg, Alert):
            self.alerts += 1
            self.tracer.event("alert", "raise", msg.trace_id, rule=msg.rule,
                              frame_id=msg.frame_id, media_t_s=msg.media_t_s)
            if self.audio_out is not None and msg.text and not getattr(msg, "silent", False):
                self.audio_out.say(spoken_text(msg), SayPriority.ALERT, msg.trace_id)
        elif isinstance(msg, Answer):
            self.answers += 1
            if self.audio_out is not None and msg.text:
                self.audio_out.say(spoken_text(msg), SayPriority.ANSWER, msg.trace_id)
        elif isinstance(msg, Control):
            self.control(msg)

    def control(self, msg: Control) -> None:
        """Apply a runtime command: stop / repeat speech, hide / show overlays."""
        cmd = msg.command
        if self.audio_out is not None:
            if cmd == "stop":
                self.audio_out.stop()
            elif cmd == "repeat":
                self.audio_out.repeat()
        if cmd == "hide":
            self.store.hidden.add(str(msg.args.get("source", "vision")))
        elif cmd == "show":
            self.store.hidden.discard(str(msg.args.get("source", "vision")))

    def on_user_speaking(self, speaking: bool) -> None:
        """VAD opened / closed an utterance: hold the copilot's voice meanwhile."""
        if self.audio_out is not None:
            self.audio_out.user_speaking(speaking)

    def transcript_message(self, tr: Any) -> TranscriptMsg:
        """A speech.asr.Transcript as a runtime message, with its trace spans."""
        return transcript_message(tr, self.clock, self.tracer,
                                  self.media_clock.audio_clock_ns)

    # -- inputs from outside the feed (the UI) ---------------------------------------------------
    def submit_transcript(self, tr: Any) -> None:
        """A ``speech.asr.Transcript`` heard outside the feed (UI push-to-talk, a second mic):
        handled like the listener's own, answers go to the voice and ``on_message``."""
        self.on_speech(self.transcript_message(tr))

    def ask(self, text: str, confidence: float = 1.0) -> None:
        """A typed question or command (UI text box), e.g. "copilot, what phase is this?"."""
        now = self.clock.now_ns()
        t = self.media_t_s
        msg = TranscriptMsg(t_ns=now, trace_id=f"q{now}", media_t_s=t, text=text,
                            confidence=confidence, start_s=t, end_s=t, accepted=True)
        self.on_speech(msg)

    def teach_click(self, name: str, x: float, y: float, positive: bool = True) -> str:
        """The UI: teach ``name`` from a click at (x, y) in 0..1 of the shown frame
        (``copilot.teaching``); the answer goes to the voice and the history like a typed
        command's. Returns its text."""
        if self.brain is None:
            raise CopilotError("teaching needs the copilot's brain (vision or speech on)")
        w, h = self.brain.frame_size or (0, 0)
        if not w:
            return "No analysed frame yet."
        msg = self.brain.teach_click(name, x * w, y * h, positive)
        self.deliver(msg)
        return msg.text

    # -- lifecycle -------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run to the end of the source (or ``stop()``); returns the result, writes outputs."""
        wall0 = time.perf_counter()
        if not self.composed:
            self.compose()
        threads = [
            threading.Thread(target=decode_loop, args=(self,), name="decode", daemon=True),
            threading.Thread(target=compose_loop, args=(self,), name="compose", daemon=True),
        ]
        audio_thread = None
        listening = any(r.name == "speech" for r in self.runners)
        if listening and self.src.audio is not None:
            audio_thread = threading.Thread(target=audio_loop, args=(self,), name="audio",
                                            daemon=True)
        elif listening and self.cfg.mic:
            audio_thread = threading.Thread(target=mic_loop, args=(self,), name="mic",
                                            daemon=True)
        for r in self.runners:
            r.start()
        # analysis stages load their models before the first frame: loading while the video
        # runs would take the CPU from the compositor (a realtime latency spike)
        until = time.monotonic() + self.STARTUP_WAIT_S
        for r in self.runners:
            r.ready.wait(max(0.0, until - time.monotonic()))
        self.watchdog.start()
        for t in threads:
            t.start()
        if audio_thread is not None:
            audio_thread.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
            drain_speech(self, audio_thread)
        except KeyboardInterrupt:
            self.user_stop = True
            self.stop_event.set()
            self.error = self.error or "interrupted"
        finally:
            result = shutdown(self, wall0)
        return result

    def stop(self) -> None:
        """Ask every thread to finish (the video path writes what it has); the voice stops
        too instead of finishing what it still had to say."""
        self.user_stop = True
        self.stop_event.set()
        self.video_edge.close()

    def health(self) -> dict[str, dict[str, Any]]:
        """Stage health by name."""
        out = {r.name: r.health.as_dict() for r in self.runners}
        out.update({s.name: s.health.as_dict() for s in self.inline.values()})
        return out

    def status(self) -> Status:
        """What the status line shows now (fps, latency, stage health)."""
        health = {r.name: r.health.state for r in self.runners}
        for s in self.inline.values():
            if s.health.state != "ok" or s.health.errors:
                health[s.name] = s.health.state if s.health.state != "ok" else "ok*"
        whys = [f"vision {self.vision_backend}: {self.vision_backend_reason}"
                if self.vision_backend_reason else "", self.asr_backend_reason or "",
                self.voice_backend_reason or ""]
        extra = "; ".join(w for w in whys if w)[:80]
        return Status(fps=self.meter.fps, latency_ms=self.meter.latency_ms, health=health,
                      extra=extra)


def run_copilot(cfg: RunConfig, **kwargs: Any) -> RunResult:
    """Compose and run the copilot on ``cfg``; see :class:`Copilot` for keyword arguments."""
    app = Copilot(cfg, **kwargs)
    try:
        app.compose()
    except BaseException:
        app.tracer.close()
        raise
    return app.run()
