"""One message hierarchy for everything that moves between stages.

Every message carries ``t_ns`` (monotonic time in ns on the runtime clock, when it was made),
``media_t_s`` (position in the source media in s, ``None`` for live-only data) and a
``trace_id`` linking it to what caused it, so any latency is computed on one clock.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

_counter = itertools.count()
_RUN = os.urandom(3).hex()


def new_trace_id(prefix: str = "t") -> str:
    """A process-unique trace id (cheap: a run prefix and a counter)."""
    return f"{prefix}{_RUN}-{next(_counter)}"


class Priority(IntEnum):
    """Priority lanes: lower value is served first."""

    SAFETY = 0
    CONTROL = 1
    ANSWER = 2
    INFO = 3


@dataclass(kw_only=True, slots=True)
class Message:
    """Base of every message."""

    t_ns: int
    trace_id: str
    media_t_s: float | None = None
    priority: Priority = Priority.INFO


@dataclass(kw_only=True, slots=True)
class VideoFrame(Message):
    """A decoded video frame, RGB uint8 of shape (H, W, 3)."""

    frame_id: int
    image: np.ndarray
    fps: float
    t_decoded_ns: int = 0

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(kw_only=True, slots=True)
class AudioChunk(Message):
    """Mono float32 PCM in [-1, 1] at ``sample_rate`` Hz."""

    pcm: np.ndarray
    sample_rate: int = 16000
    index: int = 0

    @property
    def duration_s(self) -> float:
        """Length in s."""
        return len(self.pcm) / float(self.sample_rate)


@dataclass(kw_only=True, slots=True)
class Transcript(Message):
    """What the recogniser heard; ``start_s`` / ``end_s`` are media times of the speech."""

    text: str
    confidence: float
    start_s: float
    end_s: float
    is_final: bool = True
    nbest: list[tuple[str, float]] = field(default_factory=list)
    speaker: str | None = None
    speaker_score: float | None = None
    accepted: bool = True  # False: not a command (no wake word / out of grammar); text empty
    reason: str = ""


@dataclass(kw_only=True, slots=True)
class Finding(Message):
    """One perception result from an analysis stage for frame ``frame_id``."""

    frame_id: int
    source: str
    kind: str  # structure | instrument | phase | cvs | region | event
    name: str
    score: float
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True, slots=True)
class Alert(Message):
    """A spoken / drawn alert raised by the alert engine."""

    rule: str
    text: str
    frame_id: int | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    spoken: str = ""  # what the voice says ("" = the first sentence of ``text``)
    priority: Priority = Priority.SAFETY


@dataclass(kw_only=True, slots=True)
class Answer(Message):
    """A reply to a question: text to speak, reasoning steps, overlay actions."""

    question: str
    text: str
    confidence: float
    abstained: bool = False
    reason: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    spoken: str = ""  # what the voice says ("" = the first sentence of ``text``)
    priority: Priority = Priority.ANSWER


@dataclass(kw_only=True, slots=True)
class Control(Message):
    """A command to the runtime or a stage (stop, mute, show/hide, fault, ...)."""

    command: str
    args: dict[str, Any] = field(default_factory=dict)
    priority: Priority = Priority.CONTROL


@dataclass(kw_only=True, slots=True)
class OverlayUpdate(Message):
    """New drawings from a stage: ``annotations`` is a ``copilot.overlay.AnnotationSet``."""

    frame_id: int
    annotations: Any
