"""What the web UI shows, collected from the copilot's messages (thread-safe, no gradio here).

``UIState.on_message`` is the Copilot's ``on_message`` callback: it runs on the copilot's
threads, so it only records and returns at once. Answers and alerts are spoken by a reply
worker thread (espeak through ``speech.tts``) into small WAV files the page plays; that
audio is the copilot's own voice, never the user's.
"""

from __future__ import annotations

import itertools
import logging
import queue
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.messages import Alert, Answer, Control, Message, OverlayUpdate, Transcript
from copilot.voice import spoken_text, voice_engine

log = logging.getLogger(__name__)

_CAPTION = re.compile(r"^(phase|view):\s*([A-Za-z0-9_\-]+)")
MAX_ITEMS = 200  # answers of each origin group kept (the user's, the feed's), and alerts
_DIGITS = re.compile(r"\d+(?:[.:]\d+)*")


@dataclass
class Item:
    """One answer or alert as the page shows it. Times: ``wall_s`` (time.time), media s."""

    uid: int
    kind: str  # answer | alert
    text: str
    media_t_s: float | None
    wall_s: float
    question: str = ""
    rule: str = ""
    confidence: float | None = None
    abstained: bool = False
    reason: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    origin: str = "feed"  # feed (the recorded audio) | mic | typed | vision | ack
    audio: Path | None = None  # the spoken reply (WAV) once synthesised
    acknowledged: bool = False
    session: int = 1  # replay number of the source (a replay starts a new session)
    detection: float | None = None  # an outline command's detection confidence (0-1)
    level: str = "alert"
    silent: bool = False  # an alert raised while alerts were muted
    spoken: str = ""  # what the voice says (copilot.voice.spoken_text); the text stays on screen

    @property
    def key(self) -> tuple[str, str]:
        """An alert's row in the alarm panel: its kind and where (digits, e.g. times, out)."""
        return self.rule, _DIGITS.sub("#", self.text.strip().lower())


@dataclass
class Heard:
    """One utterance the UI's own microphone path recognised."""

    text: str
    accepted: bool
    reason: str
    wall_s: float
    origin: str
    speaker_score: float | None = None


class ReplyVoice:
    """Synthesises answers / alerts to WAV files on a worker thread (newest first served)."""

    def __init__(self, out_dir: Path, engine: str = "default", keep: int = 20) -> None:
        """``engine``: one of copilot.voice.VOICES (the copilot's own voice choice)."""
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.engine_name = engine
        self.keep = keep
        self._q: queue.Queue[Item | None] = queue.Queue(maxsize=32)
        self._tts: Any = None
        self._files: deque[Path] = deque()
        self.error = ""
        self.on_done: Any = None
        self._thread = threading.Thread(target=self._run, name="ui-voice", daemon=True)
        self._thread.start()

    def submit(self, item: Item) -> None:
        """Queue ``item`` for speech (dropped with a warning when the queue is full)."""
        try:
            self._q.put_nowait(item)
        except queue.Full:
            log.warning("reply voice queue full: %r not spoken", item.text[:40])

    def _run(self) -> None:
        from speech.audio import write_wav

        while True:
            item = self._q.get()
            if item is None:
                return
            try:
                if self._tts is None:
                    self._tts = voice_engine(self.engine_name)[0]
                    if self._tts is None:
                        raise RuntimeError("no voice (espeak-ng missing)")
                sp = self._tts.synthesize(item.spoken or item.text)
                p = self.out_dir / f"reply-{item.uid:05d}.wav"
                write_wav(p, sp.audio, sp.rate)
                self._files.append(p)
                while len(self._files) > self.keep:
                    self._files.popleft().unlink(missing_ok=True)
                item.audio = p
                if self.on_done is not None:
                    self.on_done(item)
            except Exception as exc:  # noqa: BLE001 - no voice, the text still shows
                self.error = f"reply voice: {exc}"
                log.warning("%s", self.error)

    def close(self) -> None:
        """Stop the worker (pending replies are dropped)."""
        try:
            self._q.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(2.0)


class AlarmRow:
    """One alarm-panel row: every alert of one kind and place; times wall (time.time) and
    media s of the first and the last one."""

    def __init__(self, first: Item) -> None:
        self.key = first.key
        self.items: list[Item] = [first]

    @property
    def last(self) -> Item:
        """The newest alert of the row."""
        return self.items[-1]

    @property
    def count(self) -> int:
        """How many times it was raised."""
        return len(self.items)

    @property
    def open(self) -> bool:
        """True while any of its alerts is unacknowledged."""
        return any(not i.acknowledged for i in self.items)


class UIState:
    """Answers, alerts, what was heard and the phase / view timeline; ``version`` bumps on
    every change the page should redraw. The user's own questions (typed, mic) are kept
    apart from the feed's, so the feed never pushes them out."""

    def __init__(self, voice: ReplyVoice | None = None) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.user: deque[Item] = deque(maxlen=MAX_ITEMS)  # answers to typed / mic questions
        self.other: deque[Item] = deque(maxlen=MAX_ITEMS)  # answers to the feed's questions
        self.alerts: deque[Item] = deque(maxlen=MAX_ITEMS)
        self.heard: deque[Heard] = deque(maxlen=50)
        self.timeline: list[tuple[float, str, str]] = []  # (media s, phase|view, name)
        self.controls: deque[str] = deque(maxlen=20)
        self.chatter = 0
        self.version = 0
        self.session = 1
        self.session_started: dict[int, float] = {1: time.time()}
        self.voice = voice
        if voice is not None:
            voice.on_done = lambda _item: self._bump()
        self._origin = threading.local()

    def _bump(self) -> None:
        with self._lock:
            self.version += 1

    @property
    def items(self) -> list[Item]:
        """Answers and alerts in the order they came (uid order)."""
        with self._lock:
            return sorted([*self.user, *self.other, *self.alerts], key=lambda i: i.uid)

    def new_session(self, n: int) -> None:
        """The source was replayed (replay ``n``): later items belong to session ``n``."""
        with self._lock:
            self.session = int(n)
            self.session_started[self.session] = time.time()
            self.version += 1

    def origin(self, name: str) -> _Origin:
        """Context manager: messages raised on this thread meanwhile come from ``name``."""
        return _Origin(self._origin, name)

    def on_message(self, msg: Message) -> None:
        """The Copilot's ``on_message`` callback (any thread; records only)."""
        origin = getattr(self._origin, "name", None)
        if isinstance(msg, Answer | Alert):
            alert = isinstance(msg, Alert)
            item = Item(
                uid=next(self._ids), kind="alert" if alert else "answer",
                text=str(msg.text), media_t_s=msg.media_t_s, wall_s=time.time(),
                question=str(getattr(msg, "question", "")), rule=str(getattr(msg, "rule", "")),
                confidence=getattr(msg, "confidence", None),
                abstained=bool(getattr(msg, "abstained", False)),
                reason=str(getattr(msg, "reason", "")), steps=list(msg.steps or []),
                origin=origin or ("vision" if alert else "feed"), session=self.session,
                detection=getattr(msg, "detection", None),
                level=str(getattr(msg, "level", "alert")),
                silent=bool(getattr(msg, "silent", False)), spoken=spoken_text(msg),
            )
            with self._lock:
                if alert:
                    self.alerts.append(item)
                elif item.origin in ("typed", "mic", "ack"):
                    self.user.append(item)
                else:
                    self.other.append(item)
                self.version += 1
            if self.voice is not None and item.text.strip() and not item.silent:
                self.voice.submit(item)
        elif isinstance(msg, Transcript):
            if origin == "ack":  # the Acknowledge button: nothing was heard
                return
            with self._lock:
                if msg.accepted and msg.text:
                    self.heard.append(Heard(msg.text, True, msg.reason, time.time(),
                                            origin or "feed", msg.speaker_score))
                else:
                    self.chatter += 1
                self.version += 1
        elif isinstance(msg, OverlayUpdate):
            cap = getattr(msg.annotations, "caption", "") or ""
            m = _CAPTION.match(cap)
            if m and msg.media_t_s is not None:
                with self._lock:
                    last = self.timeline[-1] if self.timeline else None
                    if last is None or last[2] != m.group(2) or msg.media_t_s - last[0] > 0.5:
                        self.timeline.append((float(msg.media_t_s), m.group(1), m.group(2)))
                        if len(self.timeline) > 20000:
                            del self.timeline[: len(self.timeline) // 2]
        elif isinstance(msg, Control):
            with self._lock:
                self.controls.append(msg.command)
                self.version += 1

    def note_heard(self, heard: Heard) -> None:
        """Record an utterance from the page's microphone (accepted or not)."""
        with self._lock:
            self.heard.append(heard)
            self.version += 1

    def alarm_rows(self) -> list[AlarmRow]:
        """The alarm panel: one row per alert kind and place, newest last alert first."""
        with self._lock:
            rows: dict[tuple[str, str], AlarmRow] = {}
            for it in self.alerts:
                row = rows.get(it.key)
                if row is None:
                    rows[it.key] = AlarmRow(it)
                else:
                    row.items.append(it)
        return sorted(rows.values(), key=lambda r: r.last.uid, reverse=True)

    def acknowledge(self, uid: int | None = None) -> AlarmRow | None:
        """Acknowledge a whole row: the one holding alert ``uid`` (default: the newest open
        row); returns it, or None with nothing open."""
        rows = [r for r in self.alarm_rows() if r.open]
        if uid is not None:
            rows = [r for r in rows if any(i.uid == uid for i in r.items)]
        if not rows:
            return None
        with self._lock:
            for it in rows[0].items:
                it.acknowledged = True
            self.version += 1
        return rows[0]

    def snapshot(self) -> dict[str, Any]:
        """Copies for drawing: items, heard, timeline, counters."""
        items = self.items
        with self._lock:
            return {
                "items": items, "heard": list(self.heard),
                "timeline": list(self.timeline), "chatter": self.chatter,
                "version": self.version, "controls": list(self.controls),
                "session": self.session,
            }

    def last(self, kind: str | None = None) -> Item | None:
        """The newest answer / alert (or either)."""
        for it in reversed(self.items):
            if kind in (None, it.kind):
                return it
        return None

    def open_alerts(self) -> list[Item]:
        """Alerts not acknowledged yet, newest first."""
        return [it for it in reversed(self.items) if it.kind == "alert" and not it.acknowledged]


class _Origin:
    def __init__(self, local: threading.local, name: str) -> None:
        self.local = local
        self.name = name
        self.prev: str | None = None

    def __enter__(self) -> None:
        self.prev = getattr(self.local, "name", None)
        self.local.name = self.name

    def __exit__(self, *exc: object) -> None:
        self.local.name = self.prev
