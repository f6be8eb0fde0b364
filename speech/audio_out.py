"""Spoken output: a priority queue (safety alert > answer > information), hold while the surgeon
speaks, barge-in ("copilot stop" cancels), "repeat that", and a timeline WAV for offline runs.

``AudioOut`` owns one worker thread that synthesises (TTS) and plays messages through a
``Sink`` in blocks of ``block_s`` seconds, checking between blocks whether to stop, pause for
the surgeon, or yield to a safety alert. The queue is bounded: when full, the oldest
information message is dropped (counted in ``dropped``); alerts are never dropped.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np

from speech.audio import SAMPLE_RATE
from speech.errors import SpeechError
from speech.tts import TTS

log = logging.getLogger(__name__)


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
    t_mono: float = field(compare=False, default_factory=time.monotonic)  # queued (s)


@dataclass
class Played:
    """A record of one playback: what, when (clock seconds), and how it ended."""

    text: str
    priority: Priority
    t_start: float
    t_end: float
    outcome: str  # "done", "stopped", "preempted", "superseded", "expired", "error: ..."
    first_audio_s: float = 0.0


class Sink:
    """Where audio goes. ``write(block, rate)`` blocks for about the block's duration."""

    def write(self, block: np.ndarray, rate: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Release the device."""


class NullSink(Sink):
    """Discards audio but takes real time (``speed`` x faster), for tests and headless runs."""

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed
        self.samples = 0

    def write(self, block: np.ndarray, rate: int) -> None:
        self.samples += len(block)
        time.sleep(len(block) / rate / self.speed)


class SoundDeviceSink(Sink):
    """Loudspeaker through sounddevice (pip extra ``mic``)."""

    def __init__(self, device: int | str | None = None) -> None:
        try:
            import sounddevice as sd
        except (ImportError, OSError) as exc:
            raise SpeechError(f"audio output needs sounddevice: pip install '.[mic]' ({exc})"
                              ) from None
        self._sd = sd
        self.device = device
        self._stream = None
        self._rate = 0

    def write(self, block: np.ndarray, rate: int) -> None:
        if self._stream is None or rate != self._rate:
            self.close()
            self._stream = self._sd.OutputStream(samplerate=rate, channels=1, dtype="float32",
                                                 device=self.device)
            self._stream.start()
            self._rate = rate
        self._stream.write(np.asarray(block, np.float32).reshape(-1, 1))

    def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None


class AudioOut:
    """Priority speech output with hold, barge-in and repeat (see the module docstring)."""

    def __init__(self, tts: TTS, sink: Sink, max_queue: int = 16, block_s: float = 0.05,
                 clock: Callable[[], float] = time.monotonic,
                 max_hold_s: float | None = None, ttl_s: float | None = None,
                 supersede: bool = False) -> None:
        self.tts = tts
        self.sink = sink
        self.max_queue = max_queue
        self.block_s = block_s
        self.clock = clock
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
        msg = Message(Priority(priority), next(self._seq), text, self.clock(), trace_id)
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
                self._speaking_since = time.monotonic()
            else:
                self._user_speaking.clear()
            self._cv.notify_all()

    def _holding(self) -> bool:
        """True while output should wait for the person speaking (bounded by max_hold_s)."""
        if not self._user_speaking.is_set():
            return False
        return (self.max_hold_s is None
                or time.monotonic() - self._speaking_since < self.max_hold_s)

    def _hold_head(self) -> bool:
        """Wait before starting the next message: someone speaks, it is no alert, and it has
        not yet waited max_hold_s since it was queued (lock held)."""
        head = self._heap[0]
        if head.priority == Priority.ALERT or not self._holding():
            return False
        return self.max_hold_s is None or time.monotonic() - head.t_mono < self.max_hold_s

    def pending(self) -> list[str]:
        """Queued texts, most urgent first."""
        with self._cv:
            return [m.text for m in sorted(self._heap)]

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until nothing is queued or playing; False on timeout."""
        end = time.monotonic() + timeout_s
        with self._cv:
            while self._heap or self.current is not None:
                left = end - time.monotonic()
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
            first = 0.0
            held = 0.0  # s paused for a person speaking, this message
            # streamed: the first block plays as soon as the TTS has produced it (a whole
            # sentence first cost tens of ms more, and each pipe read waits for the GIL)
            t_syn = time.perf_counter()
            blocks = self._blocks(msg.text)
            try:
                for block, rate in blocks:
                    if self._stop_current.is_set():
                        outcome = ("superseded" if self._superseded else
                                   "preempted" if self._preempt else "stopped")
                        break
                    if not first:
                        first = time.perf_counter() - t_syn
                    # Hold: the surgeon started talking over us; pause an answer / info
                    # (for at most max_hold_s in all per message: chatter cannot stall it)
                    while (self._holding() and msg.priority != Priority.ALERT
                           and not self._stop_current.is_set()
                           and (self.max_hold_s is None or held < self.max_hold_s)):
                        time.sleep(0.02)
                        held += 0.02
                    self.sink.write(block, rate)
            except Exception as exc:  # TTS / device failure must not kill the worker
                log.error("speech output failed for %r: %s", msg.text[:40], exc)
                outcome = f"error: {exc}"
            finally:
                blocks.close()  # a cut message: the TTS stream is closed (its process reaped)
            with self._cv:
                self._record(msg, outcome, t0, first)
                if outcome == "preempted":  # say it again after the alert
                    heapq.heappush(self._heap, msg)
                elif outcome == "done":
                    self.last_spoken = msg
                self.current = None
                self._cv.notify_all()


class TimelineWavWriter:
    """The copilot's own speech placed on the feed's time line, for offline runs.

    ``add(t_s, pcm, rate)`` puts audio at ``t_s`` seconds; if it would overlap the previous
    utterance it starts when that one ends (a loudspeaker plays one thing at a time); the
    actual start is returned. The samples are spooled to an unnamed temporary file (PCM16),
    so an hours-long run keeps only a small index in memory. ``save(path, duration_s)``
    streams 16 kHz mono PCM16 to ``path`` (atomically), optionally mixed over the feed's own
    audio (``under``) so a run can be listened to.
    """

    def __init__(self, max_duration_s: float = 4 * 3600.0, spool_dir: str | Path | None = None,
                 block_s: float = 10.0) -> None:
        import tempfile

        self.max_samples = int(max_duration_s * SAMPLE_RATE)
        self.block = max(1, int(block_s * SAMPLE_RATE))
        # (start sample on the time line, offset in the spool in samples, length in samples)
        self.items: list[tuple[int, int, int]] = []
        self._spool = tempfile.TemporaryFile(dir=spool_dir)
        self._spooled = 0
        self._end = 0
        # the message being placed: start sample, input rate, samples in / out, resampler
        self._open = False
        self._msg_start = 0
        self._rate = SAMPLE_RATE
        self._n_in = 0
        self._n_out = 0
        self._stream: Any = None
        self._lock = threading.Lock()

    @property
    def end_s(self) -> float:
        """Where the last placed utterance ends on the time line (s)."""
        return self._end / SAMPLE_RATE

    def add(self, t_s: float, pcm: np.ndarray, rate: int = SAMPLE_RATE) -> float:
        """Place ``pcm`` (float or int16) at ``t_s``; returns the start actually used (s).

        Blocks that continue the previous one at the same rate go through one streaming
        resampler (soxr), so block edges leave no clicks and nothing is buffered."""
        if t_s < 0:
            raise SpeechError(f"negative time {t_s}")
        x = np.asarray(pcm).reshape(-1)
        x = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)
        with self._lock:
            start = max(int(round(t_s * SAMPLE_RATE)), self._end)
            if not (self._open and start == self._end and rate == self._rate):
                self._finish_message()
                self._msg_start, self._rate, self._n_in, self._n_out = start, rate, 0, 0
                self._stream = None
                if rate != SAMPLE_RATE:
                    import soxr

                    self._stream = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
                self._open = True
            n_exp = -(-(self._n_in + len(x)) * SAMPLE_RATE // rate)  # ceil: samples at 16 kHz
            if self._msg_start + n_exp > self.max_samples:
                raise SpeechError("timeline WAV longer than its limit")
            if len(x):
                self._append(self._stream.resample_chunk(x) if self._stream is not None else x)
                self._n_in += len(x)
            self._end = self._msg_start + n_exp
        return start / SAMPLE_RATE

    def _append(self, y: np.ndarray) -> None:
        """Spool 16 kHz samples at the current message's output position (lock held)."""
        if not len(y):
            return
        pcm = np.round(np.clip(y, -1.0, 1.0) * 32767.0).astype("<i2")
        at = self._msg_start + self._n_out
        self._spool.seek(2 * self._spooled)
        self._spool.write(pcm.tobytes())
        last = self.items[-1] if self.items else None
        if last is not None and last[0] + last[2] == at and last[1] + last[2] == self._spooled:
            self.items[-1] = (last[0], last[1], last[2] + len(pcm))  # contiguous: extend
        else:
            self.items.append((at, self._spooled, len(pcm)))
        self._spooled += len(pcm)
        self._n_out += len(pcm)

    def _finish_message(self) -> None:
        """Flush the resampler's tail of the current message (lock held)."""
        if self._open and self._stream is not None:
            self._append(self._stream.resample_chunk(np.zeros(0, np.float32), last=True))
        self._stream = None
        self._open = False

    def _speech(self, a: int, b: int) -> np.ndarray:
        """The spooled speech for time-line samples [a, b) as float32 (zeros in the gaps)."""
        out = np.zeros(b - a, np.float32)
        with self._lock:
            self._finish_message()
            i = max(0, bisect.bisect_right(self.items, (a, 1 << 62, 0)) - 1)
            for start, off, n in self.items[i:]:
                if start >= b:
                    break
                lo, hi = max(a, start), min(b, start + n)
                if lo >= hi:
                    continue
                self._spool.seek(2 * (off + lo - start))
                raw = self._spool.read(2 * (hi - lo))
                out[lo - a : hi - a] = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
        return out

    def _length(self, duration_s: float | None, under: np.ndarray | None) -> int:
        n = self._end if duration_s is None else int(round(duration_s * SAMPLE_RATE))
        if under is not None and duration_s is None:
            n = max(n, len(under))
        return n

    def render(self, duration_s: float | None = None, under: np.ndarray | None = None,
               under_gain: float = 0.5) -> np.ndarray:
        """The mixed timeline as float32 16 kHz (in memory: for short runs and tests)."""
        n = self._length(duration_s, under)
        out = self._speech(0, n)
        if under is not None:
            m = min(n, len(under))
            out[:m] += under_gain * under[:m]
        return np.clip(out, -1, 1)

    def save(self, path: str | Path, duration_s: float | None = None,
             under: np.ndarray | None = None, under_gain: float = 0.5) -> Path:
        """Write the timeline WAV block by block (the copilot's own speech: no consent
        needed); the file appears at ``path`` only when complete."""
        import soundfile as sf

        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        part = p.with_name(p.name + ".part")
        n = self._length(duration_s, under)
        with sf.SoundFile(str(part), "w", samplerate=SAMPLE_RATE, channels=1,
                          subtype="PCM_16", format="WAV") as f:
            for a in range(0, n, self.block):
                b = min(n, a + self.block)
                x = self._speech(a, b)
                if under is not None and a < len(under):
                    u = under[a : min(b, len(under))]
                    x[: len(u)] += under_gain * u
                f.write(np.clip(x, -1, 1))
        os.replace(part, p)
        return p

    def close(self) -> None:
        """Drop the spool file."""
        self._spool.close()
