"""The copilot's web UI: live annotated video, microphone, spoken answers, alerts, timeline.

``UIController`` runs the Copilot (``mode="realtime"``) on a background thread with a
``LatestFrameSink``; the page gets the newest composited frame as an MJPEG stream served by
the same server (``/video.mjpg``), so the picture never waits for the gradio event queue,
an answer, or the microphone path. Questions from the page's microphone (push-to-talk clip
or hands-free stream with the wake word) go through a ``speech.listener.Listener`` and
``Copilot.submit_transcript``; answers and alerts arrive through ``on_message``
(``copilot.ui_state.UIState``) and are spoken by espeak into WAV files the page plays.

Security: binds 127.0.0.1 by default; any other host needs a token (checked on every HTTP
request: ``?token=``, ``Authorization: Bearer`` or the cookie set by the first; a wrong or
missing token gets 401). Gradio analytics are off; no page asset comes from another host.
Audio from the page is kept only with the consent switch on; otherwise it is decoded in
memory and its upload file is deleted at once.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
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
from copilot.sinks import LatestFrameSink
from copilot.ui_state import Heard, ReplyVoice, UIState

log = logging.getLogger(__name__)

#: Audio files the page may upload (by extension), and the limits checked before decoding.
AUDIO_TYPES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".webm", ".m4a", ".mp4", ".opus")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_CLIP_S = 60.0
TOKEN_COOKIE = "copilot_token"
#: Overlay sources the page can hide: (label, AnnotationStore source name).
LAYERS = (("segmentation (vision)", "vision"),
          ("copilot drawings (outlines, alert banners, coverage)", "brain"))
BRAIN_SOURCE = "brain"


def require_gradio() -> Any:
    """Import gradio or raise a one-line error naming the extra."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError:
        raise CopilotError("the web UI needs gradio: pip install 'surgical-copilot[ui]'"
                           ) from None
    return gradio


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse (CopilotError) to listen beyond this machine without an access token."""
    if not is_loopback(host) and not token:
        raise CopilotError(f"--host {host} makes the UI reachable from the network: give "
                           "--token T (then open http://HOST:PORT/?token=T)")
    if token is not None and len(token) < 8:
        raise CopilotError("--token must be at least 8 characters")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


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
    asr: str = "pocketsphinx"
    voice_print: Path | None = None
    ui_fps: float = 12.0  # most frames per second sent to one page
    jpeg_quality: int = 80
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_clip_s: float = MAX_CLIP_S
    consent: bool = False  # initial state of the consent switch
    max_seconds: float | None = None


class UIController:
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
        self.voice = ReplyVoice(self.workdir / "replies")
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
        self._hidden: set[str] = set()

    # -- the copilot -----------------------------------------------------------------------------
    def run_config(self) -> Any:
        """The RunConfig of one replay of the source."""
        from copilot.app import RunConfig

        c = self.cfg
        return RunConfig(source=c.source, mode="realtime", vision=c.vision, speech=c.speech,
                         faults=list(c.faults), speed=c.speed, asr=c.asr,
                         voice_print=self.voice_print, report=False, consent=self.consent,
                         max_seconds=c.max_seconds)

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
        app.store.hidden.update(self._hidden)
        brain = getattr(app, "brain", None)
        if brain is not None and hasattr(brain, "overlay"):
            # the compose loop draws the brain's set without looking at store.hidden: honour
            # the "brain" toggle here (see the UI report for the app.py change)
            drawn = brain.overlay
            store = app.store

            def overlay(frame_id: int) -> Any:
                return None if BRAIN_SOURCE in store.hidden else drawn(frame_id)

            brain.overlay = overlay
        return app

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
                app = self.make_copilot()
            except Exception as exc:  # noqa: BLE001
                self.error = f"restart failed: {exc}"
                return

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
    def _on_frame(self, frame_id: int, rgb: np.ndarray) -> None:
        now = time.monotonic()
        with self._jpeg_lock:
            self._seq += 1
            self._frame_times.append(now)
            if len(self._frame_times) > 64:
                del self._frame_times[:32]

    @property
    def seq(self) -> int:
        """Composited frames received so far (all runs)."""
        return self._seq

    def jpeg(self) -> tuple[int, bytes]:
        """(sequence number, JPEG bytes) of the newest frame, encoded once per frame."""
        import cv2

        with self._jpeg_lock:
            seq = self._seq
            if self._jpeg[0] == seq:
                return self._jpeg
        _, rgb = self.frames.latest()
        if rgb is None:
            return -1, b""
        ok, buf = cv2.imencode(".jpg", rgb[:, :, ::-1],
                               [cv2.IMWRITE_JPEG_QUALITY, int(self.cfg.jpeg_quality)])
        if not ok:
            return -1, b""
        with self._jpeg_lock:
            self._jpeg = (seq, buf.tobytes())
            return self._jpeg

    def frame_rate(self, window_s: float = 2.0) -> float:
        """Composited frames per second over the last ``window_s`` seconds."""
        now = time.monotonic()
        with self._jpeg_lock:
            ts = [t for t in self._frame_times if now - t <= window_s]
        if len(ts) < 2:
            return 0.0
        return (len(ts) - 1) / max(1e-6, ts[-1] - ts[0])

    # -- status ----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """fps, latency, frame counts, stage health and the overlay's status line."""
        app = self.copilot
        out: dict[str, Any] = {
            "running": self.running, "runs": self.runs, "seq": self._seq,
            "page_fps": round(self.frame_rate(), 2), "error": self.error,
            "consent": self.consent, "voice_print": str(self.voice_print or ""),
            "voice_error": self.voice.error, "hands_free_s": round(self.hf_seconds, 1),
        }
        if app is None:
            return out
        st = None
        fn = getattr(app, "status", None) or getattr(app, "_status", None)
        if fn is not None:
            try:
                st = fn()
            except Exception:  # noqa: BLE001 - status is best effort
                st = None
        health = {}
        try:
            health = app.health()
        except Exception:  # noqa: BLE001
            pass
        out.update({
            "media_t_s": round(float(app.media_t_s or 0.0), 2),
            "frames_in": app.frames_in, "frames_out": app.frames_out,
            "dropped": getattr(getattr(app, "video_edge", None), "stats", None).dropped
            if getattr(app, "video_edge", None) is not None else 0,
            "fps": round(float(st.fps), 2) if st is not None else None,
            "latency_ms": None if st is None or st.latency_ms is None
            else round(float(st.latency_ms), 1),
            "health": {k: {"state": v.get("state"), "errors": v.get("errors", 0),
                           "hangs": v.get("hangs", 0), "restarts": v.get("restarts", 0),
                           "last_error": v.get("last_error", "")}
                       for k, v in health.items()},
            "status_line": status_line(st, app.frames_out) if st is not None else "",
            "brain": app.brain is not None,
            "hidden": sorted(app.store.hidden),
        })
        return out

    # -- overlays --------------------------------------------------------------------------------
    def set_hidden(self, hidden: list[str]) -> None:
        """Hide the drawings of these sources (e.g. ``vision``); show the others."""
        known = {v for _, v in LAYERS}
        self._hidden = {str(h) for h in hidden if str(h) in known}
        app = self.copilot
        if app is not None:
            app.store.hidden.clear()
            app.store.hidden.update(self._hidden)

    # -- audio in --------------------------------------------------------------------------------
    def check_upload(self, path: str | Path) -> Path:
        """The uploaded file if its type and size are acceptable (CopilotError otherwise)."""
        p = Path(path)
        if not p.is_file():
            raise CopilotError("no audio received")
        if p.suffix.lower() not in AUDIO_TYPES:
            raise CopilotError(f"{p.suffix or 'no extension'}: not an audio type the copilot "
                               f"takes ({', '.join(AUDIO_TYPES)})")
        size = p.stat().st_size
        if size > self.cfg.max_upload_bytes:
            raise CopilotError(f"audio file too large ({size / 1e6:.1f} MB > "
                               f"{self.cfg.max_upload_bytes / 1e6:.0f} MB)")
        if size < 64:
            raise CopilotError("audio file is empty")
        return p

    def take_audio(self, path: str | Path, kind: str = "utterance") -> np.ndarray:
        """Check and decode an uploaded / recorded clip (16 kHz mono float32); store it under
        ``workdir/recordings`` only with consent, and delete the upload file either way."""
        from speech.audio import check_audio, load_audio
        from speech.errors import SpeechError

        p = self.check_upload(path)
        try:
            try:
                x = load_audio(p)
            except SpeechError as exc:
                raise CopilotError(f"audio not usable: {str(exc).replace(f'{p}: ', '')}"
                                   ) from None
            if len(x) / 16000.0 > self.cfg.max_clip_s:
                raise CopilotError(f"clip too long ({len(x) / 16000.0:.0f} s > "
                                   f"{self.cfg.max_clip_s:.0f} s)")
            problem = check_audio(x)
            if problem:
                raise CopilotError(f"no speech in the clip: {problem}")
            if self.consent:
                from speech.audio import write_wav

                dest = self.workdir / "recordings" / f"{kind}-{time.strftime('%H%M%S')}-" \
                    f"{os.urandom(2).hex()}.wav"
                write_wav(dest, x)
        finally:
            self.discard(p)
        return x

    @staticmethod
    def discard(p: Path) -> None:
        """Delete an uploaded file (and its folder when gradio made one just for it)."""
        try:
            p.unlink(missing_ok=True)
            parent = p.parent
            if parent.name and not any(parent.iterdir()):
                parent.rmdir()
        except OSError as exc:
            log.warning("could not delete %s: %s", p, exc)

    def listener(self, mode: str) -> Any:
        """The listener of ``mode``: ptt (no wake word needed) or handsfree (wake word)."""
        from copilot.cli_speech import build_listener

        with self._listen_lock:
            if mode not in self._listeners:
                wake = "none" if mode == "ptt" else "pocketsphinx"
                self._listeners[mode] = build_listener(
                    self.cfg.asr, wake=wake, voice_print=self.voice_print)
            return self._listeners[mode]

    def _submit(self, trs: list[Any], origin: str) -> list[Heard]:
        heard = []
        for tr in trs:
            h = Heard(tr.text, bool(tr.accepted), str(tr.reason or ""), time.time(), origin,
                      tr.speaker_score)
            heard.append(h)
            app = self.copilot
            if tr.accepted and app is not None:
                with self.state.origin(origin):
                    app.submit_transcript(tr)  # Transcript msg -> state via on_message
            else:
                self.state.note_heard(h)
        return heard

    def push_to_talk(self, path: str | Path) -> list[Heard]:
        """Transcribe one recorded clip (push-to-talk) and hand its commands to the copilot."""
        x = self.take_audio(path, "ptt")
        lis = self.listener("ptt")
        with self._listen_lock:
            if "ptt" not in self._warm and hasattr(lis.asr, "warm_up"):
                lis.asr.warm_up(x)  # adapt the cepstral mean to this microphone once
                self._warm.add("ptt")
            trs = lis.process(x)
        if not trs:
            self.state.note_heard(Heard("", False, "no speech found", time.time(), "mic"))
        return self._submit(trs, "mic")

    def hands_free(self, rate: int, data: np.ndarray) -> None:
        """One streamed microphone chunk (hands-free). Returns at once: a worker thread runs
        VAD + wake word + ASR, so the page's stream is never held up by recognition."""
        from speech.audio import resample, to_mono

        x = to_mono(np.asarray(data))
        if x.dtype.kind in "iu" or np.abs(x).max(initial=0) > 1.5:
            x = x / 32768.0
        x = resample(x.astype(np.float32), int(rate))
        self.hf_seconds += len(x) / 16000.0
        self._hf_start()
        try:
            self._hf_q.put_nowait(x)
        except queue.Full:
            log.warning("hands-free audio backlog full: %.1f s dropped", len(x) / 16000.0)

    def _hf_start(self) -> None:
        with self._listen_lock:
            if self._hf_thread is None or not self._hf_thread.is_alive():
                self._hf_thread = threading.Thread(target=self._hf_loop, name="ui-handsfree",
                                                   daemon=True)
                self._hf_thread.start()

    def prepare_hands_free(self) -> None:
        """Load the hands-free listener and start its worker (before the first chunk)."""
        self._hf_start()

    def _hf_loop(self) -> None:
        from speech.audio import CHUNK

        rest = np.zeros(0, np.float32)
        lis = None
        while not self._stop.is_set():
            try:
                x = self._hf_q.get(timeout=0.5)
            except queue.Empty:
                if lis is None:
                    lis = self.listener("handsfree")
                continue
            try:
                lis = self.listener("handsfree")  # rebuilt after an enrolment
                if isinstance(x, threading.Event):  # end of the stream: close the utterance
                    trs = lis.flush()
                    rest = np.zeros(0, np.float32)
                    self._hf_heard += self._submit(trs, "mic")
                    x.set()
                    continue
                buf = np.concatenate([rest, x])
                n = len(buf) // CHUNK * CHUNK
                trs = []
                for i in range(0, n, CHUNK):
                    trs += lis.push(buf[i:i + CHUNK])
                rest = buf[n:]
                # every utterance is shown; only the addressed ones reach the copilot
                self._hf_heard += self._submit(trs, "mic")
            except Exception as exc:  # noqa: BLE001 - keep listening
                log.warning("hands-free listening failed: %s", exc)

    def hands_free_stop(self, timeout_s: float = 30.0) -> list[Heard]:
        """The stream ended: recognise what is queued, close an open utterance; returns what
        was heard since the previous stop."""
        done = threading.Event()
        self._hf_start()
        self._hf_q.put(done)
        done.wait(timeout_s)
        heard, self._hf_heard = self._hf_heard, []
        return heard

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

    def acknowledge(self) -> str:
        """Acknowledge the newest open alert: marks it and says "copilot acknowledge"."""
        item = self.state.acknowledge()
        app = self.copilot
        if app is not None:
            with self.state.origin("ack"):
                app.ask("copilot acknowledge")
        return "no open alert" if item is None else f"acknowledged: {item.text}"

    # -- voice enrolment -------------------------------------------------------------------------
    def enrol(self, path: str | Path, name: str) -> str:
        """Make a voice print from a recording; the listeners score speakers against it."""
        from speech.speaker import create_speaker

        name = "".join(c for c in str(name).strip() if c.isalnum() or c in "-_")[:40]
        if not name:
            raise CopilotError("give the speaker's name (letters, digits, - or _)")
        x = self.take_audio(path, "enrol")
        if len(x) < 8000:
            raise CopilotError("recording too short for enrolment (need >= 0.5 s)")
        vp = create_speaker("resemblyzer").enroll([x], name)
        dest = vp.save(self.workdir / "voiceprints" / f"{name}.npz")
        self.voice_print = dest
        with self._listen_lock:
            self._listeners.clear()  # rebuilt with the voice print on next use
            self._warm.clear()
        return f"enrolled {name}: {vp.seconds:.1f} s -> voice print {dest.name} (no audio kept)"


def status_line(st: Any, frame_no: int) -> str:
    """The overlay's status line as text: frame, fps, latency, stage health."""
    parts = [f"#{frame_no}", f"{st.fps:4.1f} fps"]
    if st.latency_ms is not None:
        parts.append(f"lat {st.latency_ms:3.0f} ms")
    parts += [f"{k}:{v}" for k, v in st.health.items()]
    if st.extra:
        parts.append(st.extra)
    return "  ".join(parts)


# ----------------------------------------------------------------------------- the server
class TokenGate:
    """ASGI middleware: every request must carry the token (query, bearer header or cookie).

    A valid ``?token=`` sets an HttpOnly cookie so the page's own requests pass.
    """

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def _ok(self, scope: dict) -> tuple[bool, bool]:
        from urllib.parse import parse_qs

        qs = parse_qs(scope.get("query_string", b"").decode(errors="replace"))
        for t in qs.get("token", []):
            if hmac.compare_digest(t.encode(), self.token):
                return True, True
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"")
        if auth.startswith(b"Bearer ") and hmac.compare_digest(auth[7:].strip(), self.token):
            return True, False
        for part in headers.get(b"cookie", b"").split(b";"):
            k, _, v = part.strip().partition(b"=")
            if k == TOKEN_COOKIE.encode() and hmac.compare_digest(v, self.token):
                return True, False
        return False, False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        ok, set_cookie = self._ok(scope)
        if not ok:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            body = b"401: open the UI with ?token=... (the --token given to copilot ui)\n"
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"text/plain"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        if not set_cookie:
            await self.app(scope, receive, send)
            return
        cookie = (f"{TOKEN_COOKIE}={self.token.decode()}; Path=/; HttpOnly; SameSite=Strict"
                  ).encode()

        async def send_with_cookie(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                msg = dict(msg)
                msg["headers"] = [*msg.get("headers", []), (b"set-cookie", cookie)]
            await send(msg)

        await self.app(scope, receive, send_with_cookie)


def build_app(ctrl: UIController) -> Any:
    """The FastAPI app: MJPEG video, frame / status JSON, the gradio page at ``/``."""
    gr = require_gradio()
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, Response, StreamingResponse

    from copilot.ui_page import CSS, HEAD_JS, build_blocks, theme

    api = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    period = 1.0 / ctrl.cfg.ui_fps
    boundary = "copilotframe"

    @api.get("/video.mjpg")
    async def video_mjpg() -> StreamingResponse:
        async def frames():  # noqa: ANN202 - async generator of multipart parts
            sent = -2
            while not ctrl._stop.is_set():
                seq, jpg = await asyncio.to_thread(ctrl.jpeg)
                if seq != sent and jpg:
                    sent = seq
                    yield (f"--{boundary}\r\nContent-Type: image/jpeg\r\n"
                           f"Content-Length: {len(jpg)}\r\nX-Frame-Seq: {seq}\r\n\r\n"
                           ).encode() + jpg + b"\r\n"
                await asyncio.sleep(period)

        return StreamingResponse(frames(), media_type=f"multipart/x-mixed-replace; "
                                 f"boundary={boundary}",
                                 headers={"Cache-Control": "no-store"})

    @api.get("/frame.jpg")
    async def frame_jpg() -> Response:
        seq, jpg = await asyncio.to_thread(ctrl.jpeg)
        if not jpg:
            return Response(status_code=204)
        return Response(jpg, media_type="image/jpeg",
                        headers={"Cache-Control": "no-store", "X-Frame-Seq": str(seq)})

    async def handsfree(request: Any) -> JSONResponse:
        # not a CORS "simple" request (octet-stream): other sites' pages cannot post here
        if request.headers.get("content-type") != "application/octet-stream":
            return JSONResponse({"error": "send application/octet-stream PCM16"}, 415)
        try:
            rate = int(request.query_params.get("rate", "48000"))
        except ValueError:
            rate = 0
        if not 8000 <= rate <= 96000:
            return JSONResponse({"error": "rate must be 8000-96000 Hz"}, 400)
        body = await request.body()
        if len(body) > 4 * rate or len(body) % 2:  # <= 2 s of 16-bit mono per block
            return JSONResponse({"error": "block too large or odd length"}, 413)
        pcm = np.frombuffer(body, "<i2")
        if pcm.size:
            await asyncio.to_thread(ctrl.hands_free, rate, pcm)
        return JSONResponse({"ok": True, "seconds": round(ctrl.hf_seconds, 2)})

    async def handsfree_stop(request: Any) -> JSONResponse:
        if request.headers.get("content-type") != "application/octet-stream":
            return JSONResponse({"error": "send application/octet-stream"}, 415)
        heard = await asyncio.to_thread(ctrl.hands_free_stop)
        return JSONResponse({"heard": [h.text for h in heard if h.accepted]})

    # plain Starlette routes: the request is passed as is (no annotation resolution)
    api.add_route("/api/handsfree", handsfree, methods=["POST"])
    api.add_route("/api/handsfree/stop", handsfree_stop, methods=["POST"])

    @api.get("/api/status")
    async def status_json() -> JSONResponse:
        return JSONResponse(ctrl.status())

    blocks = build_blocks(ctrl)
    gr.mount_gradio_app(api, blocks, path="/", ssr_mode=False, mcp_server=False,
                        footer_links=[], theme=theme(), css=CSS, head=HEAD_JS,
                        show_error=True,
                        max_file_size=ctrl.cfg.max_upload_bytes, server_name=ctrl.cfg.host,
                        server_port=ctrl.cfg.port)
    if ctrl.cfg.token:
        return TokenGate(api, ctrl.cfg.token)
    return api


class UIServer:
    """uvicorn serving ``build_app(ctrl)`` on a thread; ``url`` once started."""

    def __init__(self, ctrl: UIController) -> None:
        import uvicorn

        self.ctrl = ctrl
        self.app = build_app(ctrl)
        self.config = uvicorn.Config(self.app, host=ctrl.cfg.host, port=ctrl.cfg.port,
                                     log_level="warning", access_log=False,
                                     timeout_graceful_shutdown=1, ws="none")
        self.server = uvicorn.Server(self.config)
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The page's address (with the token when one is set)."""
        host = self.ctrl.cfg.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        if ":" in shown:
            shown = f"[{shown}]"
        q = f"?token={self.ctrl.cfg.token}" if self.ctrl.cfg.token else ""
        return f"http://{shown}:{self.ctrl.cfg.port}/{q}"

    def start(self, timeout_s: float = 30.0) -> str:
        """Start serving in a thread; return the URL once the socket listens."""
        self.thread = threading.Thread(target=self.server.run, name="ui-http", daemon=True)
        self.thread.start()
        end = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive():
                raise CopilotError(f"the UI server could not start on "
                                   f"{self.ctrl.cfg.host}:{self.ctrl.cfg.port}")
            if time.monotonic() > end:
                raise CopilotError("the UI server did not start in time")
            time.sleep(0.05)
        return self.url

    def stop(self) -> None:
        """Stop the HTTP server (the controller is stopped separately)."""
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(5.0)


def _interruptible() -> None:
    """Ctrl-C (SIGINT) and SIGTERM stop the UI cleanly, even when it was started with SIGINT
    ignored (a background job of a script inherits that, and Python then installs no
    KeyboardInterrupt handler)."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop)


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
    _interruptible()
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


__all__ = ["UIConfig", "UIController", "UIServer", "build_app", "check_bind", "serve"]
