"""Fault injection and recovery for the steps that run inside another thread's loop.

``--inject-fault STAGE:KIND[:AFTER_S]`` names one of ``FAULT_STAGES``. Worker stages (vision,
speech) are wrapped in ``copilot.runtime.FaultyStage``; the steps inside the video path, the
speech stage and the voice (decode, overlay, writer, brain, VAD, wake, ASR, TTS, audio out)
run under an ``InlineStage`` (fault hook, retries, watchdog, health), applied to an object's
methods by ``Guarded``. ``FaultLog`` turns the resulting trace events into session records.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from copilot.clock import Clock
from copilot.errors import CopilotError
from copilot.runtime import FaultSpec, FaultyStage, InjectedFault, RestartPolicy, Stage, StageHealth
from copilot.tracing import Tracer

#: Stages a fault can be injected into (``--inject-fault STAGE:KIND``).
FAULT_STAGES = ("decode", "vision", "speech", "vad", "wake", "asr", "brain", "overlay",
                "writer", "tts", "audio_out")
#: steps inside the speech stage that run under their own InlineStage (faults, health)
SPEECH_STEPS = ("vad", "wake", "asr")


def parse_faults(specs: Iterable[str | FaultSpec]) -> dict[str, FaultSpec]:
    """``--inject-fault`` specs by stage; CopilotError (one line) for an unknown stage."""
    faults = [f if isinstance(f, FaultSpec) else FaultSpec.parse(f) for f in specs]
    for f in faults:
        if f.stage not in FAULT_STAGES:
            raise CopilotError(
                f"bad --inject-fault {f.stage}:{f.kind}: STAGE must be one of "
                f"{', '.join(FAULT_STAGES)}"
            )
    return {f.stage: f for f in faults}


def wrap_stage(factory: Callable[[], Stage], spec: FaultSpec | None, clock: Clock, t0_ns: int,
               stop: threading.Event) -> Callable[[], Stage]:
    """``factory`` whose stages carry the injected fault ``spec`` (none: ``factory`` itself)."""
    if spec is None:
        return factory
    return lambda: FaultyStage(factory(), spec, clock, t0_ns, stop)


class InlineStage:
    """Health, faults and watchdog support for a step that runs inside the video path.

    The decode, overlay and writer steps cannot be moved off the video thread, so an injected
    fault is applied at the step's boundary: ``raise`` (the first try of every 20th call fails:
    a step that crashes repeatedly) is caught, logged and retried with backoff, so the frame
    is not lost; ``slow`` sleeps; ``hang`` blocks until the watchdog
    declares the step hung and releases it (the recovery a restart gives a worker stage).
    """

    def __init__(self, name: str, tracer: Tracer, clock: Clock, fault: FaultSpec | None,
                 t0_ns: int, stop: threading.Event) -> None:
        self.name = name
        self.health = StageHealth(name, state="ok")
        self.tracer = tracer
        self.clock = clock
        self.fault = fault
        self.t0_ns = t0_ns
        self.stop_event = stop
        self._release = threading.Event()
        self.restart = RestartPolicy(base_s=0.01, cap_s=0.2)
        self._fired_hang = False
        self._calls = 0

    def replace_hung(self) -> None:
        """Called by the watchdog: release the hung step (counts as a restart)."""
        self.health.hangs += 1
        self.health.restarts += 1
        self.health.busy_since_ns = None
        self.tracer.event(self.name, "replaced")
        self._release.set()

    def _fault(self, attempt: int) -> None:
        f = self.fault
        if f is None or (self.clock.now_ns() - self.t0_ns) / 1e9 < f.after_s:
            return
        if f.kind == "raise":
            # crash repeatedly: the first try of every 20th call fails
            self._calls += attempt == 0
            if attempt == 0 and self._calls % 20 == 1:
                raise InjectedFault(f"injected fault: {self.name} raised")
        if f.kind == "slow":
            self.clock.sleep(f.slow_s)
        elif f.kind == "hang" and not self._fired_hang:
            # hang once: until the watchdog notices (then behave again, like a fresh worker)
            self._fired_hang = True
            self.health.busy_since_ns = self.clock.now_ns()
            self._release.clear()
            while not self._release.wait(0.05) and not self.stop_event.is_set():
                pass
            self.health.state = "ok"

    def call(self, fn: Callable[[], Any], attempts: int = 8, fault: bool = True) -> Any:
        """Run ``fn`` (after the fault hook unless ``fault`` is False) with retries; re-raises
        after ``attempts``."""
        for attempt in range(attempts):
            try:
                if fault:
                    self._fault(attempt)
                self.health.busy_since_ns = self.clock.now_ns()
                try:
                    out = fn()
                finally:  # a real error must not leave the step looking busy (hung)
                    self.health.busy_since_ns = None
                self.health.processed += 1
                if self.health.state != "ok":
                    self.health.state = "ok"
                return out
            except InjectedFault as exc:
                self.health.busy_since_ns = None
                self.health.errors += 1
                self.health.state = "restarting"
                self.health.last_error = str(exc)
                self.tracer.event(self.name, "error", error=str(exc))
                if attempt + 1 >= attempts:
                    raise
                self.clock.sleep(self.restart.delay(attempt))
                self.health.restarts += 1
                self.tracer.event(self.name, "restart", attempt=attempt + 1)
        return None  # pragma: no cover


class Guarded:
    """``obj`` whose ``methods`` run under an InlineStage (fault hook, watchdog, health);
    what they return is guarded too for the ``inner`` methods (an ASR's utterance session).
    Every other attribute passes through."""

    def __init__(self, obj: Any, stage: InlineStage, methods: frozenset[str],
                 inner: frozenset[str] = frozenset()) -> None:
        self._obj = obj
        self._stage = stage
        self._methods = methods
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._obj, name)
        if name not in self._methods or not callable(attr):
            return attr

        def call(*args: Any, **kw: Any) -> Any:
            st = self._stage
            t0 = st.clock.now_ns()
            out = st.call(lambda: attr(*args, **kw))
            st.tracer.span(st.name, name, "-", t0, st.clock.now_ns())
            if self._inner and out is not None:
                return Guarded(out, self._stage, self._inner)
            return out

        return call


def guard_listener(listener: Any, inline: dict[str, InlineStage]) -> None:
    """Put the listener's VAD, wake-word spotter and ASR under their InlineStages."""
    seg = getattr(listener, "seg", None)
    if "vad" in inline and seg is not None and getattr(seg, "vad", None) is not None:
        seg.vad = Guarded(seg.vad, inline["vad"], frozenset({"prob"}))
    session = frozenset({"feed", "finish"})
    asr = getattr(listener, "asr", None)
    spotter = getattr(asr, "spotter", None)  # the hybrid recogniser runs its own spotter
    if "wake" in inline and spotter is not None and getattr(listener, "wake", None) is None:
        asr.spotter = Guarded(spotter, inline["wake"], frozenset({"start"}), session)
    if "asr" in inline and asr is not None:
        listener.asr = Guarded(asr, inline["asr"], frozenset({"start"}), session)
    if "wake" in inline and getattr(listener, "wake", None) is not None:
        listener.wake = Guarded(listener.wake, inline["wake"], frozenset({"start"}), session)


class FaultLog:
    """Trace listener: a stage fault (raise / hang / restart) becomes a flushed session
    record via ``write`` (at most ``MAX_RECORDS`` per (stage, event)); all are counted."""

    #: trace events that are faults or recoveries, logged to the session as "fault" records
    EVENTS = frozenset({"error", "restart", "hung", "replaced", "gave_up"})
    #: at most this many "fault" records per (stage, event); the rest are counted in "end"
    MAX_RECORDS = 50

    def __init__(self, write: Callable[..., None], media_t_s: Callable[[], float]) -> None:
        self.write = write
        self.media_t_s = media_t_s
        self.counts: dict[tuple[str, str], int] = {}

    def __call__(self, stage: str, name: str, attrs: dict[str, Any]) -> None:
        """One trace event (``copilot.tracing.Tracer`` listener)."""
        if name not in self.EVENTS:
            return
        key = (stage, name)
        n = self.counts[key] = self.counts.get(key, 0) + 1
        if n <= self.MAX_RECORDS:
            self.write("fault", media_t_s=round(self.media_t_s(), 3), stage=stage,
                       event=name, **{k: v for k, v in attrs.items()
                                      if isinstance(v, str | int | float | bool)})

    def summary(self) -> dict[str, int]:
        """Events counted, by "stage.event" (the session's end record)."""
        return {f"{k[0]}.{k[1]}": n for k, n in sorted(self.counts.items())}
