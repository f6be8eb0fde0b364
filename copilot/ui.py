"""The copilot's web UI: live annotated video, microphone, spoken answers, alerts, timeline.

``UIController`` runs the Copilot (``mode="realtime"``) on a background thread. The copilot's
compositor is replaced by a tap that keeps the newest frame with its annotation sets; each
viewer's page gets its own composition (its overlay layers and fills,
``copilot.overlay.DrawOptions``; no status strip in the picture: the page shows it) as a
binary stream of JPEGs (``/video.bin``: per frame a 4-byte length, a 4-byte sequence number
and the JPEG) read with fetch() and drawn on a canvas, at the source's frame rate (at most
``ui_fps``); the page measures and shows the rate it receives. The picture never waits for
the gradio event queue, an answer, or the microphone path. Questions from the page's
microphone (push-to-talk clip or hands-free stream with the wake word, ``copilot.ui_mic``) go
through a ``speech.listener.Listener`` and ``Copilot.submit_transcript``; answers and alerts
arrive through ``on_message`` (``copilot.ui_state.UIState``) and are spoken by espeak into
WAV files the page plays.

Security: binds 127.0.0.1 by default; any other host needs a token (checked on every HTTP
request: ``?token=``, ``Authorization: Bearer`` or the cookie set by the first; a wrong or
missing token gets 401). Gradio analytics are off; no page asset comes from another host.
Audio from the page is kept only with the consent switch on; otherwise it is decoded in
memory and its upload file is deleted at once.
"""

from __future__ import annotations

import logging
import queue
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from copilot.errors import CopilotError
from copilot.overlay import Compositor, DrawOptions
from copilot.sinks import LatestFrameSink
from copilot.ui_host import check_bind, free_port, interruptible, is_loopback, require_gradio
from copilot.ui_mic import AUDIO_TYPES, MicMixin
from copilot.ui_state import AlarmRow, Heard, ReplyVoice, UIState
from copilot.ui_status import StatusMixin
from copilot.ui_view import DEFAULT_VIEW, view_options

log = logging.getLogger(__name__)

#: Limits checked before decoding an upload.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_CLIP_S = 60.0


class _Tap:
    """Stands in for the copilot's compositor: keeps each frame with its annotation sets
    for the viewers' own compositions and passes the picture on undrawn."""

    status_line = False

    def __init__(self, ctrl: UIController) -> None:
        self.ctrl = ctrl

    def warm_up(self) -> None:
        """Nothing to warm: the viewers' compositors draw."""

    def compose(self, frame: Any, sets: list[Any], status: Any = None, in_place: bool = False,
                options: Any = None) -> np.ndarray:
        """Keep (frame, sets, status); return the frame's image untouched."""
        self.ctrl._take(frame, sets, status)
        return frame.image


@dataclass
class UIConfig:
    """Options of ``copilot ui``. Times in seconds, sizes in bytes."""

    source: str
    host: str = "127.0.0.1"
    port: int = 7860
    token: str | None = None
    workdir: Path | None = None  # replies, recordings (with consent), voice prints
    loop: bool = True  # replay a recorded source again when it ends
    vision: str = "auto"
    speech: str = "auto"  # the feed's own audio through the listener (auto: when present)
    faults: list[str] = field(default_factory=list)
    speed: float = 1.0
    asr: str = "default"  # the measured default recogniser (speech.defaults)
    voice: str = "default"  # the copilot's voice (copilot.voice.VOICES)
    voice_print: Path | None = None
    ui_fps: float = 30.0  # most frames per second sent to one page (the source's rate)
    jpeg_quality: int = 80
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_clip_s: float = MAX_CLIP_S
    consent: bool = False  # initial state of the consent switch
    max_seconds: float | None = None
    procedure: str | None = None  # stated procedure (None: the feed's truth, else default)
    cvs: str = "auto"  # who calls the critical view (copilot.validity)


class UIController(MicMixin, StatusMixin):
    """Owns the running Copilot, the frame stream, the microphone listeners and UI state."""

    def __init__(self, cfg: UIConfig) -> None:
        check_bind(cfg.host, cfg.token)
        if cfg.ui_fps <= 0 or cfg.ui_fps > 60:
            raise CopilotError("--ui-fps must be in (0, 60]")
        self.cfg = cfg
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if cfg.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="copilot-ui-")
            self.workdir = Path(self._tmp.name)
        else:
            self.workdir = Path(cfg.workdir)
            self.workdir.mkdir(parents=True, exist_ok=True)
        self.voice = ReplyVoice(self.workdir / "replies", engine=cfg.voice)
        self.state = UIState(self.voice)
        self.frames = LatestFrameSink()
        self.frames.listeners.append(self._on_frame)
        self.consent = bool(cfg.consent)
        self.voice_print = cfg.voice_print
        self.copilot: Any = None
        self.runs = 0
        self.last_result: Any = None
        self.error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._seq = 0  # composited frames received (all runs)
        self._frame_times: list[float] = []
        self._jpeg: tuple[int, bytes] = (-1, b"")
        self._jpeg_lock = threading.Lock()
        self._listeners: dict[str, Any] = {}
        self._listen_lock = threading.Lock()
        self._warm: set[str] = set()
        self._hf_q: queue.Queue[Any] = queue.Queue(maxsize=240)  # ~2 min of 0.5 s chunks
        self._hf_thread: threading.Thread | None = None
        self._hf_heard: list[Heard] = []
        self.hf_seconds = 0.0  # microphone audio received in hands-free mode (s)
        self._latest: tuple[int, Any, list[Any]] | None = None  # (seq, frame, sets)
        self._views: dict[DrawOptions, tuple[int, bytes]] = {}
        self._view_comp: dict[DrawOptions, Compositor] = {}
        self._view_locks: dict[DrawOptions, threading.Lock] = {}
        self._model_validation: str | None = None
        self._waiters: set[tuple[Any, Any]] = set()

    # -- the copilot -----------------------------------------------------------------------------
    def run_config(self) -> Any:
        """The RunConfig of one replay of the source."""
        from copilot.app import RunConfig

        c = self.cfg
        return RunConfig(source=c.source, mode="realtime", vision=c.vision, speech=c.speech,
                         faults=list(c.faults), speed=c.speed, asr=c.asr, voice=c.voice,
                         voice_print=self.voice_print, report=False, consent=self.consent,
                         max_seconds=c.max_seconds, procedure=c.procedure, cvs=c.cvs)

    def make_copilot(self) -> Any:
        """A composed Copilot feeding this UI (raises CopilotError on a bad source)."""
        from copilot.app import Copilot

        app = Copilot(self.run_config(), extra_sinks=[self.frames],
                      on_message=self.state.on_message)
        try:
            app.compose()
        except BaseException:
            app.tracer.close()
            raise
        app.compositor = _Tap(self)  # each viewer's page composes its own picture
        return app

    @staticmethod
    def _carry_mute(old: Any, new: Any) -> None:
        """A replay keeps a mute that has time left (media seconds restart at 0)."""
        ob, nb = getattr(old, "brain", None), getattr(new, "brain", None)
        left = float(getattr(ob, "mute_until", -1e18)) - float(getattr(ob, "media_t", 0.0))
        if nb is not None and left > 0 and hasattr(nb, "mute_until"):
            nb.mute_until = left

    def start(self) -> None:
        """Check the source (errors raise here) and start the copilot thread."""
        first = self.make_copilot()
        self._thread = threading.Thread(target=self._run, args=(first,), name="ui-copilot",
                                        daemon=True)
        self._thread.start()

    def _run(self, app: Any) -> None:
        while not self._stop.is_set():
            self.copilot = app
            self.runs += 1
            try:
                self.last_result = app.run()
                if self.last_result.error:
                    self.error = self.last_result.error
            except Exception as exc:  # noqa: BLE001 - keep the page up, show the error
                self.error = f"copilot stopped: {exc}"
                log.error("%s", self.error)
                return
            if not self.cfg.loop or self._stop.is_set():
                return
            live = getattr(getattr(app, "src", None), "live", False)
            if live and self.last_result.frames_in == 0:
                return
            try:
                old, app = app, self.make_copilot()
            except Exception as exc:  # noqa: BLE001
                self.error = f"restart failed: {exc}"
                return
            self._carry_mute(old, app)
            self.state.new_session(self.runs + 1)  # a replay starts a new session

    def stop(self) -> None:
        """Stop the copilot and the reply voice; remove the temporary work folder."""
        self._stop.set()
        if self.copilot is not None:
            self.copilot.stop()
        if self._thread is not None:
            self._thread.join(10.0)
        self.voice.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def running(self) -> bool:
        """True while the copilot thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # -- frames ----------------------------------------------------------------------------------
    def _take(self, frame: Any, sets: list[Any], status: Any) -> None:
        with self._jpeg_lock:
            self._latest = (self._seq + 1, frame, list(sets))

    def _on_frame(self, frame_id: int, rgb: np.ndarray) -> None:
        now = time.monotonic()
        with self._jpeg_lock:
            self._seq += 1
            self._frame_times.append(now)
            if len(self._frame_times) > 64:
                del self._frame_times[:32]
            waiters = list(self._waiters)
        for loop, ev in waiters:  # the viewers' streams wake on a new frame (no polling)
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:  # that stream's loop has closed
                self._waiters.discard((loop, ev))

    def watch(self, loop: Any, ev: Any, on: bool = True) -> None:
        """Set asyncio event ``ev`` (on ``loop``) at every new frame, or stop (``on`` False)."""
        with self._jpeg_lock:
            if on:
                self._waiters.add((loop, ev))
            else:
                self._waiters.discard((loop, ev))

    @property
    def seq(self) -> int:
        """Composited frames received so far (all runs)."""
        return self._seq

    @property
    def latest_seq(self) -> int:
        """The sequence number ``jpeg`` serves now (-1 before the first frame)."""
        latest = self._latest
        return -1 if latest is None else int(latest[0])

    def jpeg(self, view: DrawOptions | None = None) -> tuple[int, bytes]:
        """(sequence number, JPEG bytes) of the newest frame drawn for ``view`` (default:
        outlines of every layer, no fills); composed and encoded once per frame and view."""
        import cv2

        view = view or DEFAULT_VIEW
        with self._jpeg_lock:
            latest = self._latest
            lock = self._view_locks.setdefault(view, threading.Lock())
        if latest is None:
            return -1, b""
        seq, frame, sets = latest
        with lock:
            hit = self._views.get(view)
            if hit is not None and hit[0] == seq:
                return hit
            comp = self._view_comp.get(view)
            if comp is None:
                comp = self._view_comp[view] = Compositor(options=view)
            rgb = comp.compose(frame, sets, None)
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]),
                                   [cv2.IMWRITE_JPEG_QUALITY, int(self.cfg.jpeg_quality)])
            if not ok:
                return -1, b""
            self._views[view] = (seq, buf.tobytes())
            return self._views[view]

    def frame_rate(self, window_s: float = 2.0) -> float:
        """Composited frames per second over the last ``window_s`` seconds."""
        now = time.monotonic()
        with self._jpeg_lock:
            ts = [t for t in self._frame_times if now - t <= window_s]
        if len(ts) < 2:
            return 0.0
        return (len(ts) - 1) / max(1e-6, ts[-1] - ts[0])

    def ask(self, text: str, origin: str = "typed") -> None:
        """A typed question / command (e.g. "copilot, what phase are we in?")."""
        text = " ".join(str(text).split())[:300]
        if not text:
            raise CopilotError("empty question")
        app = self.copilot
        if app is None:
            raise CopilotError("the copilot is not running")
        with self.state.origin(origin):
            app.ask(text)

    def teach_click(self, name: str, x: float, y: float, positive: bool = True) -> str:
        """A click on the live frame at (x, y) in 0..1 teaches ``name`` (copilot.teaching)."""
        app = self.copilot
        if app is None:
            raise CopilotError("the copilot is not running")
        with self.state.origin("typed"):
            return app.teach_click(" ".join(str(name).split())[:60], x, y, positive)

    def acknowledge(self) -> str:
        """Acknowledge the newest open alarm row (every alert in it) and tell the copilot;
        nothing is recorded as heard."""
        row: AlarmRow | None = self.state.acknowledge()
        if row is None:
            return "no open alert"
        app = self.copilot
        if app is not None:
            with self.state.origin("ack"):
                app.ask("copilot acknowledge")
        n = f" (x{row.count})" if row.count > 1 else ""
        return f"acknowledged: {row.last.rule.replace('_', ' ')}{n}"


def serve(cfg: UIConfig, ready: Any = None) -> None:
    """Run the UI until Ctrl-C: start the copilot, serve the page, print the URL."""
    require_gradio()
    if cfg.port != 0:
        try:
            with socket.socket(socket.AF_INET6 if ":" in cfg.host else socket.AF_INET) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((cfg.host, cfg.port))
        except OSError as exc:
            raise CopilotError(f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror}"
                               ) from None
    else:
        cfg.port = free_port(cfg.host)
    interruptible()
    from copilot.ui_server import UIServer

    ctrl = UIController(cfg)
    ctrl.start()
    server = UIServer(ctrl)
    try:
        url = server.start()
        print(f"copilot UI: {url}", flush=True)
        if ready is not None:
            ready(url)
        while server.thread is not None and server.thread.is_alive():
            server.thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        ctrl.stop()


def __getattr__(name: str) -> Any:
    """The server half lives in ``copilot.ui_server`` (imported on first use)."""
    if name in ("UIServer", "build_app", "TokenGate"):
        from copilot import ui_server

        return getattr(ui_server, name)
    raise AttributeError(name)


#: check_bind, free_port, is_loopback, require_gradio (copilot.ui_host) and view_options
#: (copilot.ui_view) are imported from here by the CLI, the tests and the UI benchmark
__all__ = ["AUDIO_TYPES", "UIConfig", "UIController", "check_bind", "free_port", "is_loopback",
           "require_gradio", "serve", "view_options"]
