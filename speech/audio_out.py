"""Spoken output: a priority queue (safety alert > answer > information), hold while the surgeon
speaks, barge-in ("copilot stop" cancels), "repeat that", and a timeline WAV for offline runs.

``AudioOut`` owns one worker thread that synthesises (TTS) and plays messages through a
``Sink`` in blocks of ``block_s`` seconds, checking between blocks whether to stop, pause for
the surgeon, or yield to a safety alert. The queue is bounded: when full, the oldest
information message is dropped (counted in ``dropped``); alerts are never dropped.

Sinks are ``speech.sinks``; the timeline WAV ``speech.timeline_wav`` (both re-exported here).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from speech.sinks import NullSink, Sink, SoundDeviceSink
from speech.timeline_wav import TimelineWavWriter
from speech.tts import TTS

log = logging.getLogger(__name__)

__all__ = ["HISTORY_KEEP", "AudioOut", "Message", "NullSink", "Played", "Priority", "Sink",
           "SoundDeviceSink", "TimelineWavWriter"]


#: ``AudioOut.history`` keeps at least this many of the newest played messages
HISTORY_KEEP = 500


class Priority(IntEnum):
    """Lower value = more urgent."""

    ALERT = 0
    ANSWER = 1
    INFO = 2


@dataclass(order=True)
class Message:
    """Something to say. Ordered by (priority, sequence)."""

    priority: Priority
    seq: int
    text: str = field(compare=False)
    t_enqueued: float = field(compare=False, default=0.0)
    trace_id: str = field(compare=False, default="")
    # queued (s, AudioOut's clock; the default reads time.monotonic when the message is made)
    t_mono: float = field(compare=False, default_factory=lambda: time.monotonic())


@dataclass
class Played:
    """A record of one playback: what, when (clock seconds), and how it ended."""

    text: str
    priority: Priority
    t_start: float
    t_end: float
    outcome: str  # "done", "stopped", "preempted", "superseded", "expired", "error: ..."
    first_audio_s: float = 0.0

class AudioOut:
    """Priority speech output with hold, barge-in and repeat (see the module docstring).

    ``clock()`` (s) is the one time base of queue times, the TTL, the holds for a person
    speaking, ``wait_idle``'s timeout, the history and first-audio latency; ``sleep(s)``
    is the hold loop's pause. Both default to the real ones (a test passes a fake clock).
    """

    def __init__(self, tts: TTS, sink: Sink, max_queue: int = 16, block_s: float = 0.05,
                 clock: Callable[[], float] = time.monotonic,
                 max_hold_s: float | None = None, ttl_s: float | None = None,
                 supersede: bool = False,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.tts = tts
        self.sink = sink
        self.max_queue = max_queue
        self.block_s = block_s
        self.clock = clock
        self._sleep = sleep
        self._heap: list[Message] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._stop_current = threading.Event()
        self._user_speaking = threading.Event()
        # None: hold for as long as someone speaks; else at most this long per utterance (s),
        # so staff chatter near the copilot cannot delay an answer indefinitely
        self.max_hold_s = max_hold_s
        # answers / information not started within ttl_s of being queued are dropped
        # ("expired": a late answer to an old question misleads); alerts never expire
        self.ttl_s = ttl_s
        # a new answer cuts the answer / information being spoken and drops older queued
        # answers ("superseded"): the surgeon asked something new
        self.supersede = supersede
        self.expired = 0
        self._superseded = False
        self._speaking_since = 0.0
        self._closed = False
        self.current: Message | None = None
        self.last_spoken: Message | None = None
        self.history: list[Played] = []
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="audio-out", daemon=True)
        self._thread.start()

    # -- control -------------------------------------------------------------------------
    def say(self, text: str, priority: Priority = Priority.ANSWER, trace_id: str = "") -> bool:
        """Queue ``text``; False if it was refused (queue full of more urgent messages)."""
        now = self.clock()
        msg = Message(Priority(priority), next(self._seq), text, now, trace_id, t_mono=now)
        with self._cv:
            if len(self._heap) >= self.max_queue:
                victims = [m for m in self._heap if m.priority >= msg.priority
                           and m.priority != Priority.ALERT]
                if not victims:
                    self.dropped += 1
                    log.error("speech queue full: refused %r", text[:40])
                    return False
                worst = max(victims)  # least urgent, newest
                self._heap.remove(worst)
                heapq.heapify(self._heap)
                self.dropped += 1
                log.warning("speech queue full: dropped %r", worst.text[:40])
            if self.supersede and msg.priority == Priority.ANSWER:
                old = [m for m in self._heap if m.priority == Priority.ANSWER]
                for m in old:
                    self._record(m, "superseded", self.clock(), 0.0)
                self._heap = [m for m in self._heap if m.priority != Priority.ANSWER]
                heapq.heapify(self._heap)
                if self.current is not None and self.current.priority >= Priority.ANSWER:
                    self._superseded = True
                    self._stop_current.set()
            heapq.heappush(self._heap, msg)
            if (self.current is not None and msg.priority == Priority.ALERT
                    and self.current.priority > Priority.ALERT):
                self._preempt = True
                self._stop_current.set()
            self._cv.notify_all()
        return True

    def _record(self, msg: Message, outcome: str, t0: float, first: float) -> None:
        """Append to the bounded history (lock held)."""
        self.history.append(Played(msg.text, msg.priority, t0, self.clock(), outcome, first))
        if len(self.history) > 2 * HISTORY_KEEP:  # bounded: the newest are kept
            del self.history[:-HISTORY_KEEP]

    def stop(self) -> None:
        """Barge-in: cut the current message and drop queued answers / information."""
        with self._cv:
            self._heap = [m for m in self._heap if m.priority == Priority.ALERT]
            heapq.heapify(self._heap)
            self._preempt = False
            self._stop_current.set()
            self._cv.notify_all()

    def repeat(self) -> bool:
        """Say the last spoken message again (as an answer); False if nothing was said."""
        last = self.last_spoken
        if last is None:
            return False
        return self.say(last.text, max(Priority.ANSWER, last.priority), last.trace_id)

    def user_speaking(self, speaking: bool) -> None:
        """The VAD says the surgeon started / stopped speaking: hold new output meanwhile."""
        with self._cv:
            if speaking:
                self._user_speaking.set()
                self._speaking_since = self.clock()
            else:
                self._user_speaking.clear()
            self._cv.notify_all()

    def _holding(self) -> bool:
        """True while output should wait for the person speaking (bounded by max_hold_s)."""
        if not self._user_speaking.is_set():
            return False
        return (self.max_hold_s is None
                or self.clock() - self._speaking_since < self.max_hold_s)

    def _hold_head(self) -> bool:
        """Wait before starting the next message: someone speaks, it is no alert, and it has
        not yet waited max_hold_s since it was queued (lock held)."""
        head = self._heap[0]
        if head.priority == Priority.ALERT or not self._holding():
            return False
        return self.max_hold_s is None or self.clock() - head.t_mono < self.max_hold_s

    def pending(self) -> list[str]:
        """Queued texts, most urgent first."""
        with self._cv:
            return [m.text for m in sorted(self._heap)]

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until nothing is queued or playing; False after ``timeout_s`` (s) of the
        clock (a fake clock that is not advanced never times out)."""
        end = self.clock() + timeout_s
        with self._cv:
            while self._heap or self.current is not None:
                left = end - self.clock()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def close(self) -> None:
        """Stop the worker and release the sink."""
        with self._cv:
            self._closed = True
            self._stop_current.set()
            self._cv.notify_all()
        self._thread.join(timeout=5)
        self.sink.close()

    # -- worker --------------------------------------------------------------------------
    _preempt = False

    def _next(self) -> Message | None:
        with self._cv:
            while True:
                while not self._closed and (not self._heap or self._hold_head()):
                    self._cv.wait(0.05)
                if self._closed:
                    return None
                msg = heapq.heappop(self._heap)
                now = self.clock()
                if (self.ttl_s is not None and msg.priority != Priority.ALERT
                        and now - msg.t_enqueued > self.ttl_s):
                    self.expired += 1
                    self._record(msg, "expired", now, 0.0)
                    log.info("speech expired after %.1f s: %r", now - msg.t_enqueued,
                             msg.text[:40])
                    self._cv.notify_all()
                    continue
                self.current = msg
                self._stop_current.clear()
                self._preempt = False
                self._superseded = False
                return msg

    def _blocks(self, text: str) -> Iterator[tuple[np.ndarray, int]]:
        """The TTS stream of ``text`` cut into ``block_s`` pieces (samples, rate in Hz); the
        first piece as soon as there is any audio."""
        stream = self.tts.stream(text)
        pending = np.zeros(0, np.float32)
        started = False
        try:
            for chunk in stream:
                pending = np.concatenate([pending, np.asarray(chunk, np.float32)])
                rate = int(self.tts.rate)
                block = max(1, int(self.block_s * rate))
                while len(pending) >= block or (len(pending) and not started):
                    started = True
                    yield pending[:block], rate
                    pending = pending[block:]
            if len(pending):
                yield pending, int(self.tts.rate)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    def _run(self) -> None:
        while True:
            msg = self._next()
            if msg is None:
                return
            t0 = self.clock()
            outcome = "done"
            first: float | None = None  # s from the TTS request to the first block
            held = 0.0  # s paused for a person speaking, this message
            # streamed: the first block plays as soon as the TTS has produced it (a whole
            # sentence first cost tens of ms more, and each pipe read waits for the GIL)
            t_syn = self.clock()
            blocks = self._blocks(msg.text)
            try:
                for block, rate in blocks:
                    if self._stop_current.is_set():
                        outcome = ("superseded" if self._superseded else
                                   "preempted" if self._preempt else "stopped")
                        break
                    if first is None:
                        first = self.clock() - t_syn
                    # Hold: the surgeon started talking over us; pause an answer / info
                    # (for at most max_hold_s in all per message: chatter cannot stall it)
                    while (self._holding() and msg.priority != Priority.ALERT
                           and not self._stop_current.is_set()
                           and (self.max_hold_s is None or held < self.max_hold_s)):
                        self._sleep(0.02)
                        held += 0.02
                    self.sink.write(block, rate)
            except Exception as exc:  # TTS / device failure must not kill the worker
                log.error("speech output failed for %r: %s", msg.text[:40], exc)
                outcome = f"error: {exc}"
            finally:
                blocks.close()  # a cut message: the TTS stream is closed (its process reaped)
            with self._cv:
                self._record(msg, outcome, t0, first or 0.0)
                if outcome == "preempted":  # say it again after the alert
                    heapq.heappush(self._heap, msg)
                elif outcome == "done":
                    self.last_spoken = msg
                self.current = None
                self._cv.notify_all()
