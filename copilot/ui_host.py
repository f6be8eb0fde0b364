"""Where the web UI is served from: the bind check (this machine only, unless a token is
given), the token's cookie, a free port, the gradio import and the signals that stop
``copilot ui``."""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from typing import Any

from copilot.errors import CopilotError

TOKEN_COOKIE = "copilot_token"


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


def interruptible() -> None:
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
