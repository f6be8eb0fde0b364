"""What the web UI shows, collected from the copilot's messages (thread-safe, no gradio here).

``UIState.on_message`` is the Copilot's ``on_message`` callback: it runs on the copilot's
threads, so it only records and returns at once. Answers and alerts are spoken by a reply
worker thread (espeak through ``speech.tts``) into small WAV files the page plays; that
audio is the copilot's own voice, never the user's.
"""

from __future__ import annotations

import html
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

log = logging.getLogger(__name__)

_CAPTION = re.compile(r"^(phase|view):\s*([A-Za-z0-9_\-]+)")
MAX_ITEMS = 200


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
    origin: str = "feed"  # feed (the recorded audio) | mic | typed | vision
    audio: Path | None = None  # the spoken reply (WAV) once synthesised
    acknowledged: bool = False


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

    def __init__(self, out_dir: Path, engine: str = "espeak", keep: int = 20) -> None:
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
        from speech.tts import create_tts

        while True:
            item = self._q.get()
            if item is None:
                return
            try:
                if self._tts is None:
                    self._tts = create_tts(self.engine_name)
                sp = self._tts.synthesize(item.text)
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


class UIState:
    """Answers, alerts, what was heard and the phase / view timeline; ``version`` bumps on
    every change the page should redraw."""

    def __init__(self, voice: ReplyVoice | None = None) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.items: deque[Item] = deque(maxlen=MAX_ITEMS)
        self.heard: deque[Heard] = deque(maxlen=50)
        self.timeline: list[tuple[float, str, str]] = []  # (media s, phase|view, name)
        self.controls: deque[str] = deque(maxlen=20)
        self.chatter = 0
        self.version = 0
        self.voice = voice
        if voice is not None:
            voice.on_done = lambda _item: self._bump()
        self._origin = threading.local()

    def _bump(self) -> None:
        with self._lock:
            self.version += 1

    def origin(self, name: str) -> _Origin:
        """Context manager: messages raised on this thread meanwhile come from ``name``."""
        return _Origin(self._origin, name)

    def on_message(self, msg: Message) -> None:
        """The Copilot's ``on_message`` callback (any thread; records only)."""
        origin = getattr(self._origin, "name", None)
        if isinstance(msg, Answer | Alert):
            item = Item(
                uid=next(self._ids), kind="alert" if isinstance(msg, Alert) else "answer",
                text=str(msg.text), media_t_s=msg.media_t_s, wall_s=time.time(),
                question=str(getattr(msg, "question", "")), rule=str(getattr(msg, "rule", "")),
                confidence=getattr(msg, "confidence", None),
                abstained=bool(getattr(msg, "abstained", False)),
                reason=str(getattr(msg, "reason", "")), steps=list(msg.steps or []),
                origin=origin or ("vision" if isinstance(msg, Alert) else "feed"),
            )
            with self._lock:
                self.items.append(item)
                self.version += 1
            if self.voice is not None and item.text.strip():
                self.voice.submit(item)
        elif isinstance(msg, Transcript):
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

    def acknowledge(self, uid: int | None = None) -> Item | None:
        """Mark alert ``uid`` (default: the newest unacknowledged) acknowledged."""
        with self._lock:
            for it in reversed(self.items):
                if it.kind == "alert" and not it.acknowledged and uid in (None, it.uid):
                    it.acknowledged = True
                    self.version += 1
                    return it
        return None

    def snapshot(self) -> dict[str, Any]:
        """Copies for drawing: items, heard, timeline, counters."""
        with self._lock:
            return {
                "items": list(self.items), "heard": list(self.heard),
                "timeline": list(self.timeline), "chatter": self.chatter,
                "version": self.version, "controls": list(self.controls),
            }

    def last(self, kind: str | None = None) -> Item | None:
        """The newest answer / alert (or either)."""
        with self._lock:
            for it in reversed(self.items):
                if kind in (None, it.kind):
                    return it
        return None

    def open_alerts(self) -> list[Item]:
        """Alerts not acknowledged yet, newest first."""
        with self._lock:
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


# ----------------------------------------------------------------------------- rendering
def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt_t(t: float | None) -> str:
    if t is None:
        return "--:--"
    t = max(0.0, float(t))
    return f"{int(t // 60):02d}:{t % 60:04.1f}"


def evidence_text(ev: dict[str, Any]) -> str:
    """A short one-line summary of a step's evidence dict."""
    parts = []
    for key, val in ev.items():
        if key == "triples" and isinstance(val, list):
            tr = []
            for t in val[:3]:
                if isinstance(t, dict):
                    tr.append(" ".join(str(t.get(k, "")) for k in ("s", "p", "o")
                                       if t.get(k) is not None) or str(t)[:80])
                else:
                    tr.append(" ".join(map(str, t)) if isinstance(t, list | tuple) else str(t))
            parts.append("facts: " + "; ".join(tr) + (" ..." if len(val) > 3 else ""))
        elif key == "observations" and isinstance(val, list):
            obs = [f"{o.get('name')}@{float(o.get('t_s', 0)):.1f}s ({float(o.get('score', 0)):.2f})"
                   if isinstance(o, dict) else str(o) for o in val[:3]]
            parts.append("seen: " + ", ".join(obs) + (" ..." if len(val) > 3 else ""))
        elif key == "scores" and isinstance(val, dict):
            parts.append(", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in list(val.items())[:4]))
        else:
            parts.append(f"{key}: {str(val)[:80]}")
    return " | ".join(parts)


def steps_html(steps: list[dict[str, Any]]) -> str:
    """The reasoning steps as an ordered HTML list (claim, held or not, evidence)."""
    if not steps:
        return "<p class='muted'>no reasoning steps</p>"
    rows = []
    for s in steps:
        claim = s.get("claim") or s.get("text") or s.get("rule") or str(s)[:120]
        ok = s.get("ok", True)
        ev = s.get("evidence") if isinstance(s.get("evidence"), dict) else {
            k: v for k, v in s.items() if k not in ("claim", "ok")}
        mark = "&#10003;" if ok else "&#10007;"
        rows.append(f"<li class='step {'ok' if ok else 'no'}'><b>{mark}</b> {_e(claim)}"
                    f"<div class='ev'>{_e(evidence_text(ev or {}))}</div></li>")
    return "<ol class='steps'>" + "".join(rows) + "</ol>"


def answer_html(item: Item | None) -> str:
    """The newest answer: question, text, confidence and where it came from."""
    if item is None:
        return "<div id='answer' class='answer empty'>No answer yet: ask with the microphone " \
               "or type a question.</div>"
    meta = [] if item.confidence is None else [f"confidence {item.confidence:.2f}"]
    if item.abstained:
        meta.append("<b>abstained</b>")
    reason = f"<div class='muted'>{_e(item.reason)}</div>" if item.abstained and item.reason \
        else ""
    return (f"<div id='answer' class='answer' data-uid='{item.uid}'>"
            f"<div class='q'>Q ({_e(item.origin)} at {_fmt_t(item.media_t_s)}): "
            f"{_e(item.question)}</div>"
            f"<div class='a' id='answer-text'>{_e(item.text)}</div>"
            f"<div class='muted'>{' &middot; '.join(meta)}</div>{reason}</div>")


def alerts_html(items: list[Item]) -> str:
    """Open alerts first, then the last few acknowledged ones."""
    alerts = [it for it in items if it.kind == "alert"]
    if not alerts:
        return "<div id='alerts' class='alerts empty'>No alerts.</div>"
    open_ = [a for a in reversed(alerts) if not a.acknowledged]
    done = [a for a in reversed(alerts) if a.acknowledged][:3]
    rows = []
    for a in open_[:5] + done:
        cls = "alert ack" if a.acknowledged else "alert open"
        state = "acknowledged" if a.acknowledged else "OPEN"
        rows.append(f"<div class='{cls}' data-uid='{a.uid}'><b>{state}</b> "
                    f"[{_fmt_t(a.media_t_s)}] {_e(a.rule)}: {_e(a.text)}</div>")
    return f"<div id='alerts' class='alerts' data-open='{len(open_)}'>" + "".join(rows) + "</div>"


def heard_html(heard: list[Heard], chatter: int) -> str:
    """The last utterances recognised (commands) and the chatter count."""
    rows = [f"<li class='{'ok' if h.accepted else 'no'}'>[{_e(h.origin)}] {_e(h.text or '-')}"
            + ("" if h.accepted else f" <i>({_e(h.reason)})</i>")
            + ("" if h.speaker_score is None else f" <i>voice {h.speaker_score:.2f}</i>")
            + "</li>" for h in heard[-6:][::-1]]
    return (f"<div id='heard'><ul>{''.join(rows) or '<li>nothing yet</li>'}</ul>"
            f"<div class='muted'>{chatter} utterance(s) of chatter ignored</div></div>")
