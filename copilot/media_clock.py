"""Where the feed's media time (s) meets the runtime clock (ns): when the audio's 0 s was
released, and for each reply the moment that triggered it, so the copilot's speech lands
on the feed's time line (copilot_speech.wav) where it would have been heard."""

from __future__ import annotations

import threading

from copilot.clock import Clock
from copilot.tracing import Tracer


class MediaClock:
    """Media time <-> runtime clock for one run. ``realtime``: the run is paced by the clock;
    ``live``: the source is a camera / stream; ``speed``: the replay speed factor."""

    def __init__(self, clock: Clock, tracer: Tracer, realtime: bool, live: bool,
                 speed: float) -> None:
        self.clock = clock
        self.tracer = tracer
        self.realtime = realtime
        self.live = live
        self.speed = speed
        #: runtime-clock time (ns) of the audio's media 0 s (set by the decode / mic loop)
        self.audio_t0_ns: int | None = None
        self._trigger: dict[str, tuple[float, int]] = {}  # trace id -> (media s, clock ns)
        self._lock = threading.Lock()

    def audio_clock_ns(self, media_s: float) -> int | None:
        """Runtime-clock time at which the audio at ``media_s`` was released (None: unknown)."""
        if self.audio_t0_ns is None:
            return None
        if self.realtime or self.live:
            return self.audio_t0_ns + int(media_s / self.speed * 1e9)
        return None

    def note_trigger(self, trace_id: str, trigger: tuple[float, int]) -> None:
        """The reply ``trace_id`` was triggered at (media s, runtime-clock ns)."""
        with self._lock:
            self._trigger[trace_id] = trigger

    def speech_start(self, trace_id: str, media_now_s: float) -> float:
        """Where on the feed's time line (s) the copilot's utterance ``trace_id`` starts, its
        first audio being ready now (``media_now_s``: the newest decoded frame's time)."""
        now_ns = self.clock.now_ns()
        with self._lock:
            trig = self._trigger.get(trace_id)
        self.tracer.event("tts", "first_audio", trace_id)
        if self.realtime or trig is None:
            return max(0.0, media_now_s)
        media, t_ns = trig
        return max(0.0, media + (now_ns - t_ns) / 1e9)
