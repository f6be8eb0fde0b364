"""Fake speech backends: scripted recognition, synthetic speech, a recording loudspeaker.

- ``FakeASR`` is a ``speech.asr.ASR`` (streaming ``start`` -> ``Utterance.feed`` /
  ``finish``; ``transcribe`` is the base class's): each finished utterance is heard as the
  next of its scripted texts; when they run out it rejects the audio as "no speech".
- ``FakeTTS`` is a ``speech.tts.TTS`` (``stream`` yields float32 chunks at ``rate``;
  ``synthesize`` is the base class's): a constant tone, a fixed number of chunks per text.
  With a ``FakeClock`` each chunk costs ``chunk_cost_s`` of its time, so a latency such as
  ``first_audio_s`` is exact; ``pause_after`` holds the stream after that many chunks until
  ``release()``, so a test can act while a message is known to be mid-stream.
- ``FakeSink`` is a ``speech.audio_out.Sink`` that records every block and returns at once.

``register(monkeypatch, registry, name, factory)`` adds a fake to a backend registry
(``ASR_BACKENDS``, ``TTS_BACKENDS``) for one test, so ``create_asr(name)`` builds it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from speech.asr import ASR, Transcript, Utterance
from speech.audio import SAMPLE_RATE
from speech.audio_out import Sink
from speech.registry import Registry
from speech.tts import TTS
from tests.fakes.clock import FakeClock


class FakeUtterance(Utterance):
    """Collects fed samples; ``finish`` asks its FakeASR for the next scripted text."""

    def __init__(self, asr: FakeASR, start_s: float) -> None:
        self.asr = asr
        self.start_s = start_s
        self.samples = 0

    def feed(self, chunk: np.ndarray) -> None:
        """Count 16 kHz float32 samples (the audio itself is not looked at)."""
        self.samples += len(np.asarray(chunk, np.float32).reshape(-1))

    def partial(self) -> tuple[str, float] | None:
        """The text this utterance will be heard as, once it has audio (0 s after it)."""
        text = self.asr.peek()
        return (text, 0.0) if self.samples and text else None

    def finish(self) -> Transcript:
        """The next scripted transcript, timed on the fed audio (seconds)."""
        return self.asr.hear(self.start_s, self.samples)


class FakeASR(ASR):
    """An ASR backend that hears ``texts`` in order, one per utterance (confidence
    ``confidence``); ``finished`` lists (start_s, samples) of every finished utterance."""

    name = "fake"

    def __init__(self, texts: Sequence[str] = (), confidence: float = 0.9) -> None:
        self.texts = list(texts)
        self.confidence = float(confidence)
        self.finished: list[tuple[float, int]] = []
        self._lock = threading.Lock()

    def start(self, start_s: float = 0.0) -> FakeUtterance:
        """Begin an utterance whose first sample is at ``start_s`` seconds."""
        return FakeUtterance(self, start_s)

    def peek(self) -> str:
        """The text the next finished utterance will be heard as ("" when none is left)."""
        with self._lock:
            return self.texts[0] if self.texts else ""

    def hear(self, start_s: float, samples: int) -> Transcript:
        """Finish an utterance of ``samples`` 16 kHz samples starting at ``start_s`` (s)."""
        end_s = start_s + samples / SAMPLE_RATE
        with self._lock:
            self.finished.append((start_s, samples))
            text = self.texts.pop(0) if self.texts and samples else ""
        if not text:
            return Transcript("", 0.0, [], start_s, end_s, False,
                              "no speech" if samples else "no audio", self.name)
        return Transcript(text, self.confidence, [(text, self.confidence)], start_s, end_s,
                          True, "", self.name)


class FakeTTS(TTS):
    """Says every text as ``chunks`` chunks of ``chunk_s`` seconds of a constant ``level``
    at ``rate`` Hz. ``produced`` counts chunks yielded for the current text; ``finished``
    and ``closed`` are set when a stream ran to its end / was closed either way."""

    name = "fake"

    def __init__(self, chunks: int = 10, chunk_s: float = 0.1, rate: int = SAMPLE_RATE,
                 level: float = 0.1, clock: FakeClock | None = None,
                 chunk_cost_s: float = 0.05, pause_after: int | None = None) -> None:
        self.chunks = int(chunks)
        self.chunk_s = float(chunk_s)
        self.rate = int(rate)
        self.level = float(level)
        self.clock = clock
        self.chunk_cost_s = float(chunk_cost_s)
        self.pause_after = pause_after
        self.texts: list[str] = []
        self.produced = 0
        self.finished = threading.Event()
        self.closed = threading.Event()
        self._release = threading.Event()

    def release(self) -> None:
        """Let a stream held at ``pause_after`` chunks go on."""
        self._release.set()

    def stream(self, text: str) -> Iterator[np.ndarray]:
        """Yield ``chunks`` float32 chunks of ``chunk_s`` s at ``rate`` Hz."""
        self.texts.append(text)
        self.produced = 0
        self.finished.clear()
        self.closed.clear()
        n = max(1, int(round(self.chunk_s * self.rate)))
        try:
            for k in range(self.chunks):
                if k and k == self.pause_after and not self._release.wait(30.0):
                    raise TimeoutError("FakeTTS was never released")
                if self.clock is not None:
                    self.clock.advance(self.chunk_cost_s)  # the engine's work for this chunk
                self.produced += 1
                yield np.full(n, self.level, np.float32)
            self.finished.set()
        finally:
            self.closed.set()


class FakeSink(Sink):
    """A loudspeaker that plays instantly: ``writes`` holds (block samples, rate) in order
    and ``on_write`` (if set) is called with the block before it is recorded."""

    def __init__(self, on_write: Callable[[np.ndarray], None] | None = None) -> None:
        self.writes: list[tuple[int, int]] = []
        self.on_write = on_write
        self.closed = False

    def write(self, block: np.ndarray, rate: int) -> None:
        """Record a block of float32 samples at ``rate`` Hz."""
        if self.on_write is not None:
            self.on_write(block)
        self.writes.append((len(block), int(rate)))

    @property
    def samples(self) -> int:
        """Samples written so far."""
        return sum(n for n, _ in self.writes)

    def close(self) -> None:
        self.closed = True


def register(monkeypatch: Any, registry: Registry, name: str,
             factory: Callable[..., Any]) -> None:
    """Register ``factory`` as backend ``name`` of ``registry`` for one test only."""
    monkeypatch.setitem(registry._factories, name, factory)
