"""The copilot's voice: what it says for an alert or answer (``spoken_text``), the TTS under
its InlineStage (``SupervisedTTS``), where the speech goes (``TimelineSpeechSink``: the
feed's time line, optionally a loudspeaker) and the ``AudioOut`` that plays it by priority."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from copilot.clock import Clock
from copilot.faults import InlineStage
from copilot.messages import Alert, Answer
from copilot.tracing import Tracer

if TYPE_CHECKING:
    from copilot.app import Copilot

log = logging.getLogger(__name__)

#: the copilot's speaking rate (words per minute): brisk but clear, like a cockpit voice
VOICE_WPM = 180

#: Piper's ONNX Runtime settings inside the copilot, where it shares 2 cores with video,
#: vision and the recogniser (benchmarks/results/bench_copilot.md, voice table)
PIPER_IN_COPILOT: dict[str, object] = {"threads": 1, "spinning": False}

#: an answer not begun this long (s) after it was ready is dropped, not said late
ANSWER_TTL_S = 15.0

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


#: a first sentence longer than this (words) is cut at its colon: the conclusion is spoken,
#: the evidence after the colon stays on screen
SPOKEN_MAX_WORDS = 16


def spoken_text(msg: Alert | Answer) -> str:
    """What the voice says for an alert / answer: its ``spoken`` form, else the first
    sentence of its text; a long answer is cut before a colon that ends a conclusion of six
    words or more ("No, the critical view of safety is not reached: <criteria>"), and a hedge
    keeps its last clause ("I am not sure; it could be A or B"). The
    details stay on screen, in the UI and in the session log; a long spoken answer would hold
    up the next one."""
    if msg.spoken:
        return msg.spoken
    first = _SENTENCE_END.split(msg.text.strip(), maxsplit=1)[0]
    head, colon, rest = first.partition(": ")
    if isinstance(msg, Answer) and colon and len(first.split()) > SPOKEN_MAX_WORDS:
        if len(head.split()) >= 6:  # a conclusion, not "I am not sure" / "Caution"
            return head.rstrip(",;") + "."
        if "; " in rest:  # "I am not sure: <evidence>; it could be A or B."
            return f"{head}; {rest.rsplit('; ', 1)[1]}"
    return first


class TimelineSpeechSink:
    """Where the copilot's voice goes: the feed time line (copilot_speech.wav), optionally a
    loudspeaker. Records the first-audio time of every message on the runtime clock."""

    def __init__(self, app: Copilot, speaker: Any | None, pace: float | None) -> None:
        from speech.audio_out import TimelineWavWriter

        self.app = app
        self.writer = TimelineWavWriter()
        self.speaker = speaker
        self.pace = pace  # None: no sleeping (fast mode); else real time / pace
        self._seq: int | None = None
        self._pos_s = 0.0

    def write(self, block: np.ndarray, rate: int) -> None:
        """One block of the copilot's voice (under the ``audio_out`` InlineStage)."""
        t0 = self.app.clock.now_ns()
        self.app.inline["audio_out"].call(lambda: self._write(block, rate))
        self.app.tracer.span("audio_out", "write", "-", t0, self.app.clock.now_ns())

    def _write(self, block: np.ndarray, rate: int) -> None:
        cur = self.app.audio_out.current if self.app.audio_out else None
        if cur is not None and cur.seq != self._seq:
            self._seq = cur.seq
            self._pos_s = self.app.media_clock.speech_start(cur.trace_id, self.app.media_t_s)
            self._pos_s = self.writer.add(self._pos_s, np.zeros(0, np.float32), rate)
        self.writer.add(self._pos_s, block, rate)
        self._pos_s += len(block) / rate
        if self.speaker is not None:
            self.speaker.write(block, rate)
        elif self.pace:
            time.sleep(len(block) / rate / self.pace)

    def close(self) -> None:
        if self.speaker is not None:
            self.speaker.close()


class SupervisedTTS:
    """A TTS whose ``synthesize`` runs under an InlineStage (faults, watchdog, health) and
    writes a ``tts.synth`` span; everything else is the wrapped TTS."""

    def __init__(self, tts: Any, stage: InlineStage, tracer: Tracer, clock: Clock) -> None:
        self._tts = tts
        self._stage = stage
        self._tracer = tracer
        self._clock = clock

    def synthesize(self, text: str) -> Any:
        """Speech for ``text`` (see speech.tts)."""
        t0 = self._clock.now_ns()
        out = self._stage.call(lambda: self._tts.synthesize(text))
        self._tracer.span("tts", "synth", "-", t0, self._clock.now_ns(), chars=len(text))
        return out

    def stream(self, text: str) -> Iterator[np.ndarray]:
        """Chunks of speech for ``text`` as the TTS produces them. The fault hook runs once
        per message (on the first chunk); every chunk is watched (a TTS stuck mid-sentence
        shows as hung). The ``tts.synth`` span ends at the first chunk."""
        t0 = self._clock.now_ns()
        it = iter(self._tts.stream(text))
        try:
            chunk = self._stage.call(lambda: next(it, None))
            self._tracer.span("tts", "synth", "-", t0, self._clock.now_ns(), chars=len(text))
            while chunk is not None:
                yield chunk
                chunk = self._stage.call(lambda: next(it, None), fault=False)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tts, name)


#: the copilot's voices: default = Piper joe where its wheel is installed (extra
#: ``voice-neural``), else espeak-ng, said; a voice named outright has no fallback
VOICES = ("default", "piper", "espeak")


def check_voice(name: str) -> None:
    """CopilotError (one line) unless ``name`` is one of ``VOICES``."""
    from copilot.errors import CopilotError

    if name not in VOICES:
        raise CopilotError(f"--voice {name!r}: one of {', '.join(VOICES)}")


def voice_engine(name: str) -> tuple[Any, str, str | None]:
    """(TTS engine or None, the voice that speaks: piper / espeak / none, why when it is not
    ``name``) for ``name`` in ``VOICES``. A voice named outright that cannot load raises
    CopilotError (no fallback); "default" falls back to espeak-ng, then to silence, said."""
    from copilot.errors import CopilotError
    from speech.errors import SpeechError
    from speech.tts import create_tts, default_voice

    check_voice(name)
    why = None
    if name in ("default", "piper"):
        try:
            return default_voice(**PIPER_IN_COPILOT), "piper", None
        except SpeechError as exc:
            if name == "piper":
                raise CopilotError(f"--voice piper cannot load: {exc}") from None
            why = f"espeak-ng instead of Piper joe: {exc}"
    try:
        return create_tts("espeak", speed=VOICE_WPM), "espeak", why
    except Exception as exc:  # noqa: BLE001 - no voice is not a reason to stop the video
        if name == "espeak":
            raise CopilotError(f"--voice espeak cannot load: {exc}") from None
        return None, "none", f"the copilot's voice is off: {exc}"


def resolve_voice(app: Copilot) -> None:
    """Build the voice that will actually speak (``app.tts_engine``, see ``voice_engine``) and
    record it (``voice_backend``) and why, when it is not the one asked for
    (``voice_backend_reason``), for the log, the session start record, the status line, the
    UI and the report."""
    app.tts_engine, app.voice_backend, app.voice_backend_reason = None, "none", None
    if app.cfg.vision == "none" and not app.speech_wanted():
        return  # no brain (wiring.make_brain): nothing to say
    app.tts_engine, app.voice_backend, app.voice_backend_reason = voice_engine(app.cfg.voice)
    if app.voice_backend_reason:
        log.warning("voice: %s", app.voice_backend_reason)


def _warm(engine: Any) -> None:
    """Render the alerts' fixed openings ahead of time (a miss only means normal synthesis)."""
    from copilot.alert_rules import SPOKEN_OPENINGS

    try:
        n = engine.warm(SPOKEN_OPENINGS)
        log.debug("voice: %d alert openings rendered ahead", n)
    except Exception as exc:  # noqa: BLE001 - the voice still speaks, only later
        log.warning("voice: alert openings not rendered ahead: %s", exc)


def make_voice(app: Copilot) -> tuple[TimelineSpeechSink, Any] | None:
    """The copilot's voice (alerts, answers) for ``app``: (its sink, its ``AudioOut``), with
    the engine ``resolve_voice`` chose. Without one None: the run goes on silently (said)."""
    cfg = app.cfg
    from speech.audio_out import AudioOut

    engine = app.tts_engine
    if engine is None:
        return None
    speaker = None
    if cfg.speak:
        from speech.audio_out import SoundDeviceSink

        speaker = SoundDeviceSink()
    pace = cfg.speed if cfg.mode == "realtime" else None
    sink = TimelineSpeechSink(app, speaker, pace)
    if cfg.mode == "realtime":  # the video starts now; an alert before it is done waits
        threading.Thread(target=_warm, args=(engine,), name="voice-warm", daemon=True).start()
    else:  # offline replay: the same result every run
        _warm(engine)
    tts = SupervisedTTS(engine, app.inline["tts"], app.tracer, app.clock)
    ttl = ANSWER_TTL_S if cfg.mode == "realtime" else None  # fast: no wall clock
    audio_out = AudioOut(tts, sink, max_queue=8, clock=lambda: app.clock.now_ns() / 1e9,
                         max_hold_s=1.5, ttl_s=ttl, supersede=True)
    return sink, audio_out
