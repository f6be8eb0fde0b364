"""The stage runtime: one stage interface, supervised worker threads, watchdog, faults.

A :class:`Stage` is plain logic (``setup`` / ``process`` / ``teardown``). A
:class:`StageRunner` runs one stage in its own worker thread, takes messages from its input
edge, hands results to its output callback, restarts the stage with exponential backoff when it
raises, and is watched by a :class:`Watchdog` that marks it hung (and starts a fresh worker)
when one call runs longer than the hang timeout. Nothing here ever blocks the video path.
"""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from copilot.clock import SYSTEM_CLOCK, Clock
from copilot.errors import CopilotError
from copilot.messages import Message
from copilot.queues import Closed, EdgeQueue, LatestSlot
from copilot.tracing import Tracer

log = logging.getLogger(__name__)

FAULT_KINDS = ("raise", "hang", "slow")


class Stage(ABC):
    """One processing step. ``process`` may return nothing, one message or several."""

    name: str = "stage"

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Load models / open devices; runs in the worker thread."""

    @abstractmethod
    def process(self, msg: Message) -> Message | Iterable[Message] | None:
        """Handle one message."""

    def teardown(self) -> None:  # noqa: B027 - optional hook
        """Release resources; runs in the worker thread."""


class InjectedFault(RuntimeError):
    """Raised by a stage on purpose (fault injection)."""


@dataclass(frozen=True)
class FaultSpec:
    """``STAGE:KIND[:AFTER_SECONDS]``: make ``stage`` raise, hang or slow down after a delay."""

    stage: str
    kind: str
    after_s: float = 0.0
    slow_s: float = 0.25

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Parse ``vision:hang:2.5``; raises CopilotError with a one-line reason."""
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[0]:
            raise CopilotError(f"bad --inject-fault {text!r}: expected STAGE:KIND[:AFTER_SECONDS]")
        kind = parts[1].lower()
        if kind not in FAULT_KINDS:
            raise CopilotError(f"bad --inject-fault {text!r}: KIND must be one of {FAULT_KINDS}")
        after = 0.0
        if len(parts) == 3:
            try:
                after = float(parts[2])
            except ValueError:
                msg = f"bad --inject-fault {text!r}: AFTER_SECONDS must be a number"
                raise CopilotError(msg) from None
            if after < 0:
                raise CopilotError(f"bad --inject-fault {text!r}: AFTER_SECONDS must be >= 0")
        return cls(stage=parts[0], kind=kind, after_s=after)


class FaultyStage(Stage):
    """Wraps a stage and injects ``spec`` once ``after_s`` of runtime clock has passed."""

    def __init__(
        self, inner: Stage, spec: FaultSpec, clock: Clock, t0_ns: int, stop: threading.Event
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.spec = spec
        self.clock = clock
        self.t0_ns = t0_ns
        self.stop = stop

    def setup(self) -> None:
        self.inner.setup()

    def teardown(self) -> None:
        self.inner.teardown()

    def _armed(self) -> bool:
        return (self.clock.now_ns() - self.t0_ns) / 1e9 >= self.spec.after_s

    def process(self, msg: Message) -> Message | Iterable[Message] | None:
        if self._armed():
            if self.spec.kind == "raise":
                raise InjectedFault(f"injected fault: {self.name} raised")
            if self.spec.kind == "hang":
                self.stop.wait()  # hangs until the app shuts down
                return None
            if self.spec.kind == "slow":
                self.clock.sleep(self.spec.slow_s)
        return self.inner.process(msg)


@dataclass
class StageHealth:
    """Health of one stage, shown on the overlay and in the UI."""

    name: str
    state: str = "starting"  # starting | ok | restarting | hung | failed | stopped
    restarts: int = 0
    errors: int = 0
    hangs: int = 0
    processed: int = 0
    last_error: str = ""
    busy_since_ns: int | None = None
    last_ok_ns: int | None = None
    last_ms: float = 0.0

    @property
    def healthy(self) -> bool:
        """True when the stage is running normally."""
        return self.state in ("ok", "starting", "stopped")

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for logs / UI."""
        return {
            "name": self.name,
            "state": self.state,
            "restarts": self.restarts,
            "errors": self.errors,
            "hangs": self.hangs,
            "processed": self.processed,
            "last_error": self.last_error,
        }


@dataclass
class RestartPolicy:
    """Exponential backoff between restarts: base * 2**n, capped (s)."""

    base_s: float = 0.05
    cap_s: float = 2.0
    max_restarts: int | None = None

    def delay(self, attempt: int) -> float:
        """Seconds to wait before restart number ``attempt`` (0-based)."""
        return min(self.cap_s, self.base_s * (2 ** min(attempt, 16)))


Take = Callable[[float], Message]
Emit = Callable[[Message], None]


def take_from(src: EdgeQueue | LatestSlot) -> Take:
    """Adapt an edge queue or a latest-frame slot to ``take(timeout) -> message``."""
    if isinstance(src, EdgeQueue):
        return src.get
    seen = [0]

    def take(timeout: float) -> Message:
        version, item = src.get_newer(seen[0], timeout)
        seen[0] = version
        return item

    return take


@dataclass
class StageRunner:
    """Runs one stage in a supervised worker thread."""

    name: str
    factory: Callable[[], Stage]
    take: Take
    emit: Emit
    tracer: Tracer
    clock: Clock = SYSTEM_CLOCK
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    health: StageHealth = field(init=False)
    stop_event: threading.Event = field(default_factory=threading.Event)
    poll_s: float = 0.05
    nice: int = 0  # > 0: the worker thread yields the CPU to the video path (Linux)

    def __post_init__(self) -> None:
        self.health = StageHealth(self.name)
        self._generation = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        #: set once the first worker's stage is set up (or its setup failed once)
        self.ready = threading.Event()

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread."""
        self._spawn()

    def _spawn(self) -> None:
        with self._lock:
            self._generation += 1
            gen = self._generation
        t = threading.Thread(
            target=self._worker, args=(gen,), name=f"stage-{self.name}-{gen}", daemon=True
        )
        t.start()
        self._threads.append(t)  # only started threads: stop() may join any of them

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the worker to finish and wait up to ``timeout`` s; a live worker that does
        not finish is left behind and its stage is marked hung (with a ``hung`` event)."""
        self.stop_event.set()
        live = self._threads[-1] if self._threads else None
        if live is not None:
            live.join(timeout)  # abandoned (replaced) workers are not waited for
        if live is not None and live.is_alive() and self.health.state != "hung":
            self.health.state = "hung"
            self.health.hangs += 1
            self.tracer.event(self.name, "hung", at="stop", after_s=timeout)
        elif self.health.state not in ("hung", "failed"):
            self.health.state = "stopped"

    def replace_hung(self) -> None:
        """Abandon the hung worker (its output is ignored) and start a fresh one."""
        self.health.hangs += 1
        self.health.busy_since_ns = None
        self.tracer.event(self.name, "replaced", restarts=self.health.restarts)
        self._spawn()

    def current(self, gen: int) -> bool:
        """True while worker ``gen`` is the live one."""
        return gen == self._generation and not self.stop_event.is_set()

    # -- the worker --------------------------------------------------------------
    def _worker(self, gen: int) -> None:
        if self.nice:
            try:  # per-thread on Linux: setpriority on the thread id
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
            except (AttributeError, OSError, PermissionError) as exc:
                log.debug("cannot lower the priority of %s: %s", self.name, exc)
        attempt = 0
        while self.current(gen):
            try:
                stage = self.factory()
                stage.setup()
            except Exception as exc:  # a stage that cannot start is retried with backoff
                self._record_error(exc, "setup")
                self.ready.set()  # nobody should wait for it: the video goes on without it
                if not self._backoff(gen, attempt):
                    return
                attempt += 1
                continue
            self.ready.set()
            if self.health.state != "hung":  # a replaced worker shows hung until it delivers
                self.health.state = "ok"
            try:
                self._loop(stage, gen)
                return
            except Closed:
                return
            except Exception as exc:
                self._record_error(exc, "process")
                if not self._backoff(gen, attempt):
                    return
                attempt += 1
            finally:
                try:
                    stage.teardown()
                except Exception as exc:  # teardown errors are logged, never fatal
                    log.warning("stage %s teardown failed: %s", self.name, exc)

    def _loop(self, stage: Stage, gen: int) -> None:
        while self.current(gen):
            try:
                msg = self.take(self.poll_s)
            except TimeoutError:
                continue
            t0 = self.clock.now_ns()
            self.health.busy_since_ns = t0
            out = stage.process(msg)
            t1 = self.clock.now_ns()
            if not self.current(gen):
                return  # replaced while we were stuck: drop the stale result
            self.health.busy_since_ns = None
            self.health.processed += 1
            self.health.last_ok_ns = t1
            self.health.last_ms = (t1 - t0) / 1e6
            if self.health.state != "ok":
                self.health.state = "ok"
            self.tracer.span(
                self.name,
                "process",
                msg.trace_id,
                t0,
                t1,
                frame_id=getattr(msg, "frame_id", None),
            )
            if out is None:
                continue
            if isinstance(out, Message):
                self.emit(out)
            else:
                for m in out:
                    self.emit(m)

    def _record_error(self, exc: BaseException, where: str) -> None:
        self.health.errors += 1
        self.health.busy_since_ns = None
        self.health.last_error = f"{type(exc).__name__}: {exc}"[:200]
        self.health.state = "restarting"
        self.tracer.event(self.name, "error", where=where, error=self.health.last_error)
        log.warning("stage %s %s failed: %s", self.name, where, self.health.last_error)

    def _backoff(self, gen: int, attempt: int) -> bool:
        pol = self.restart
        if pol.max_restarts is not None and attempt >= pol.max_restarts:
            self.health.state = "failed"
            self.tracer.event(self.name, "gave_up", restarts=self.health.restarts)
            return False
        delay = pol.delay(attempt)
        # Sleep in small steps so shutdown is never delayed by a long backoff.
        end = self.clock.now_ns() + int(delay * 1e9)
        while self.current(gen) and self.clock.now_ns() < end:
            self.clock.sleep(min(0.02, delay))
        if not self.current(gen):
            return False
        self.health.restarts += 1
        self.tracer.event(self.name, "restart", attempt=attempt + 1, delay_s=delay)
        return True


class Watchdog:
    """Marks stages whose current call has run longer than ``hang_s`` as hung."""

    def __init__(
        self,
        runners: list[StageRunner],
        tracer: Tracer,
        clock: Clock = SYSTEM_CLOCK,
        hang_s: float = 2.0,
        period_s: float = 0.1,
        max_replacements: int = 3,
    ) -> None:
        self.runners = runners
        self.tracer = tracer
        self.clock = clock
        self.hang_s = hang_s
        self.period_s = period_s
        self.max_replacements = max_replacements
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> list[str]:
        """One pass: returns the names of stages newly found hung."""
        now = self.clock.now_ns()
        found = []
        for r in self.runners:
            busy = r.health.busy_since_ns
            if busy is None or r.stop_event.is_set():
                continue
            if (now - busy) / 1e9 > self.hang_s and r.health.state != "hung":
                r.health.state = "hung"
                r.health.last_error = f"no result for {(now - busy) / 1e9:.1f} s"
                self.tracer.event(r.name, "hung", after_s=round((now - busy) / 1e9, 3))
                log.warning("stage %s is hung", r.name)
                found.append(r.name)
                if r.health.hangs < self.max_replacements:
                    r.replace_hung()
        return found

    def start(self) -> None:
        """Run ``check`` every ``period_s`` in a daemon thread."""

        def loop() -> None:
            while not self._stop.wait(self.period_s):
                self.check()

        self._thread = threading.Thread(target=loop, name="watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the watchdog thread."""
        self._stop.set()
        if self._thread:
            self._thread.join(1.0)
