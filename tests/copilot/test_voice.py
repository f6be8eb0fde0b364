"""copilot.voice: the TTS under its InlineStage (one fault hook per message, a span at the
first chunk, every chunk watched)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

from copilot.clock import ManualClock
from copilot.faults import InlineStage
from copilot.runtime import FaultSpec
from copilot.tracing import Tracer
from copilot.voice import SupervisedTTS


class _Tts:
    rate = 22050

    def __init__(self) -> None:
        self.closed = False

    def synthesize(self, text: str) -> np.ndarray:
        return np.zeros(len(text), np.float32)

    def stream(self, text: str) -> Iterator[np.ndarray]:
        try:
            for _ in range(3):
                yield np.zeros(4, np.float32)
        finally:
            self.closed = True


def _supervised(fault: FaultSpec | None = None) -> tuple[SupervisedTTS, _Tts, InlineStage]:
    clock = ManualClock(autoadvance=True)
    tracer = Tracer(None, clock)
    stage = InlineStage("tts", tracer, clock, fault, 0, threading.Event())
    tts = _Tts()
    return SupervisedTTS(tts, stage, tracer, clock), tts, stage


def test_stream_passes_every_chunk_through_the_stage_and_closes_the_tts():
    sup, tts, stage = _supervised()
    chunks = list(sup.stream("hello"))
    assert len(chunks) == 3 and tts.closed
    assert stage.health.processed == 4  # three chunks and the end of the stream
    assert stage.tracer.percentiles("tts.synth")["n"] == 1  # one span, at the first chunk
    assert sup.rate == 22050  # other attributes are the wrapped TTS's


def test_the_fault_hook_runs_once_per_message():
    sup, _, stage = _supervised(FaultSpec("tts", "raise"))
    assert len(list(sup.stream("hello"))) == 3
    assert stage.health.errors == 1  # the first chunk's first try, not every chunk's
    assert len(sup.synthesize("abc")) == 3
    assert stage.tracer.percentiles("tts.synth")["n"] == 2
