"""ASR interface: ``Transcript``, ``Utterance``, the ``ASR`` base class and the backend
registry ``ASR_BACKENDS`` (backends register themselves on import; ``speech.asr`` imports
them all and builds one by name with ``create_asr``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from speech.registry import Registry


@dataclass
class Transcript:
    """A recognition result (times in seconds on the audio's own time line).

    ``confidence`` in [0, 1]; ``accepted`` False means the recogniser rejected the audio as
    out of grammar (``reason`` says why); ``nbest`` holds (text, confidence) alternatives.
    """

    text: str
    confidence: float
    nbest: list[tuple[str, float]] = field(default_factory=list)
    start_s: float = 0.0
    end_s: float = 0.0
    accepted: bool = True
    reason: str = ""
    backend: str = ""
    wake: bool | None = None
    scores: dict[str, float] = field(default_factory=dict)
    decode_s: float = 0.0
    speaker_score: float | None = None

    @property
    def duration_s(self) -> float:
        """Length of the recognised span in seconds."""
        return self.end_s - self.start_s


class Utterance:
    """An utterance being decoded incrementally."""

    def feed(self, chunk: np.ndarray) -> None:  # pragma: no cover - interface
        """Add 16 kHz float32 samples."""
        raise NotImplementedError

    def finish(self) -> Transcript:  # pragma: no cover - interface
        """End the utterance and return the final transcript."""
        raise NotImplementedError

    def partial(self) -> tuple[str, float] | None:
        """Best hypothesis so far: (normalised text, seconds of audio after its last word),
        or None if the backend has no partial results."""
        return None


class ASR:
    """Interface of an ASR backend."""

    name = "asr"

    def start(self, start_s: float = 0.0) -> Utterance:  # pragma: no cover - interface
        """Begin an utterance whose first sample is at ``start_s`` seconds."""
        raise NotImplementedError

    def transcribe(self, audio: np.ndarray, start_s: float = 0.0) -> Transcript:
        """Decode a whole utterance of 16 kHz float32 audio."""
        u = self.start(start_s)
        u.feed(np.asarray(audio, np.float32))
        return u.finish()


ASR_BACKENDS: Registry[ASR] = Registry("ASR")
