"""The speech stage: audio chunks through ``speech.listener`` (VAD, wake word, ASR) to
transcript messages stamped on the runtime clock, with their trace spans."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from copilot.clock import Clock
from copilot.faults import guard_listener
from copilot.messages import AudioChunk, Message
from copilot.messages import Transcript as TranscriptMsg
from copilot.runtime import Stage
from copilot.tracing import Tracer

if TYPE_CHECKING:
    from copilot.app import Copilot

AUDIO_CHUNK = 512  # samples at 16 kHz (32 ms), what the VAD takes


class ListenerStage(Stage):
    """Audio chunks -> VAD -> wake word + ASR -> transcript messages (speech.listener)."""

    name = "speech"

    def __init__(self, app: Copilot) -> None:
        self.app = app
        self.listener: Any = None
        self.heard_s = 0.0  # media time up to which the audio was taken (s)

    def setup(self) -> None:
        from copilot.cli_speech import build_listener

        cfg = self.app.cfg
        self.listener = build_listener(
            asr=self.app.asr_backend, model_dir=cfg.asr_model_dir, wake=cfg.wake,
            voice_print=cfg.voice_print, on_speech=self.app.on_user_speaking,
            denoiser=str(cfg.denoiser),
        )
        guard_listener(self.listener, self.app.inline)

    def process(self, msg: Message) -> list[Message] | None:
        if not isinstance(msg, AudioChunk):
            return None
        self.heard_s = msg.media_t_s + len(msg.pcm) / 16000.0
        out: list[Message] = []
        for tr in self.listener.push(msg.pcm):
            out.append(self.app.transcript_message(tr))
        return out or None

    def flush(self) -> list[Message]:
        """End of the audio: close an open utterance."""
        if self.listener is None:
            return []
        return [self.app.transcript_message(tr) for tr in self.listener.flush()]


def transcript_message(tr: Any, clock: Clock, tracer: Tracer,
                       audio_clock_ns: Callable[[float], int | None]) -> TranscriptMsg:
    """A speech.asr.Transcript as a runtime message, with its trace spans (``audio_clock_ns``:
    media s -> runtime-clock ns at which that audio was released, None when unknown)."""
    tid = f"u{int(tr.start_s * 1000)}-{os.urandom(2).hex()}"
    now = clock.now_ns()
    end_ns = audio_clock_ns(tr.end_s)
    if end_ns is not None:
        start_ns = audio_clock_ns(tr.start_s) or end_ns
        tracer.span("speech", "utterance", tid, start_ns, end_ns,
                    start_s=round(tr.start_s, 3), end_s=round(tr.end_s, 3),
                    accepted=bool(tr.accepted))
        tracer.span("speech", "final", tid, end_ns, max(end_ns, now))
    msg = TranscriptMsg(
        t_ns=now, trace_id=tid, media_t_s=tr.end_s, text=tr.text if tr.accepted else "",
        confidence=float(tr.confidence), start_s=float(tr.start_s), end_s=float(tr.end_s),
        nbest=list(tr.nbest) if tr.accepted else [], speaker_score=tr.speaker_score,
        accepted=bool(tr.accepted), reason=str(tr.reason or ""),
    )
    return msg

