"""The web UI's server: token gate, the per-viewer video stream, status / microphone
endpoints and the gradio page, served by uvicorn on a thread (``copilot.ui`` re-exports)."""

from __future__ import annotations

import asyncio
import hmac
import struct
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from copilot.errors import CopilotError
from copilot.ui_host import TOKEN_COOKIE, require_gradio
from copilot.ui_view import view_options

if TYPE_CHECKING:
    from copilot.ui import UIController


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

    from copilot.ui_assets import CSS, HEAD_JS
    from copilot.ui_page import build_blocks, theme

    api = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    _add_video_routes(api, ctrl)
    _add_api_routes(api, ctrl)
    blocks = build_blocks(ctrl)
    gr.mount_gradio_app(api, blocks, path="/", ssr_mode=False, mcp_server=False,
                        footer_links=[], theme=theme(), css=CSS, head=HEAD_JS,
                        show_error=True,
                        max_file_size=ctrl.cfg.max_upload_bytes, server_name=ctrl.cfg.host,
                        server_port=ctrl.cfg.port)
    if ctrl.cfg.token:
        return TokenGate(api, ctrl.cfg.token)
    return api


def _add_video_routes(api: Any, ctrl: UIController) -> None:
    """``/video.bin`` (each viewer's own stream of JPEGs) and ``/frame.jpg`` (the newest)."""
    from fastapi.responses import Response, StreamingResponse

    period = 1.0 / ctrl.cfg.ui_fps

    async def video_bin(request: Any) -> StreamingResponse:
        """This viewer's frames: per frame ">II" (JPEG length, sequence number) + JPEG, each
        new composited frame once (at most ui_fps); a slow reader skips frames."""
        q = request.query_params
        view = view_options(q.get("layers"), q.get("fill"))

        async def frames():  # noqa: ANN202 - async generator of frames
            sent, last = -2, 0.0
            ev = asyncio.Event()
            loop = asyncio.get_running_loop()
            ctrl.watch(loop, ev)
            try:
                while not ctrl._stop.is_set():
                    if ctrl.latest_seq == sent:
                        try:
                            await asyncio.wait_for(ev.wait(), 0.5)
                        except TimeoutError:
                            continue
                    ev.clear()
                    wait = period * 0.9 - (time.monotonic() - last)
                    if wait > 0:  # at most ui_fps
                        await asyncio.sleep(wait)
                    seq, jpg = await asyncio.to_thread(ctrl.jpeg, view)
                    if jpg and seq != sent:
                        sent, last = seq, time.monotonic()
                        yield struct.pack(">II", len(jpg), seq & 0xFFFFFFFF) + jpg
            finally:
                ctrl.watch(loop, ev, on=False)

        return StreamingResponse(frames(), media_type="application/octet-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Content-Type-Options": "nosniff"})

    api.add_route("/video.bin", video_bin, methods=["GET"])

    @api.get("/frame.jpg")
    async def frame_jpg() -> Response:
        seq, jpg = await asyncio.to_thread(ctrl.jpeg, None)
        if not jpg:
            return Response(status_code=204)
        return Response(jpg, media_type="image/jpeg",
                        headers={"Cache-Control": "no-store", "X-Frame-Seq": str(seq)})


def _add_api_routes(api: Any, ctrl: UIController) -> None:
    """``/api/*``: hands-free microphone blocks, teaching by a click, status JSON."""
    from fastapi.responses import JSONResponse

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

    async def teach(request: Any) -> JSONResponse:
        """A click on the live frame teaches: JSON {name, x, y (0..1), positive}."""
        if request.headers.get("content-type") != "application/json":
            return JSONResponse({"error": "send application/json"}, 415)
        try:
            b = await request.json()
            name, x, y = str(b["name"]), float(b["x"]), float(b["y"])
            positive = bool(b.get("positive", True))
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "need name, x, y"}, 400)
        if not name.strip() or not (0 <= x <= 1 and 0 <= y <= 1):
            return JSONResponse({"error": "need a name and x, y in 0..1"}, 400)
        try:
            text = await asyncio.to_thread(ctrl.teach_click, name, x, y, positive)
        except CopilotError as exc:
            return JSONResponse({"error": str(exc)}, 409)
        return JSONResponse({"text": text})

    # plain Starlette routes: the request is passed as is (no annotation resolution)
    api.add_route("/api/teach", teach, methods=["POST"])
    api.add_route("/api/handsfree", handsfree, methods=["POST"])
    api.add_route("/api/handsfree/stop", handsfree_stop, methods=["POST"])

    @api.get("/api/status")
    async def status_json() -> JSONResponse:
        return JSONResponse(ctrl.status())


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


__all__ = ["TokenGate", "UIServer", "build_app"]
