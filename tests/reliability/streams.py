"""A tiny local HTTP video server whose stream drops mid-way (no RTSP server is installed on
this machine, so the live-stream tests use an MPEG-TS stream over HTTP: the same PyAV/FFmpeg
network path, ``open_source`` treats every ``scheme://`` URL alike)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import numpy as np

from tests.reliability.corpus import _pattern


def write_ts(path: Path, n: int = 50, size: tuple[int, int] = (160, 120), fps: int = 25) -> Path:
    """An H.264 MPEG-TS file of ``n`` frames (every 10th a key frame)."""
    import av

    w, h = size
    with av.open(str(path), "w", format="mpegts") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height = w, h
        s.pix_fmt = "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "30", "g": "10", "bf": "0"}
        for i in range(n):
            for p in s.encode(av.VideoFrame.from_ndarray(_pattern(w, h, i), format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


class DroppingServer:
    """Serves ``data`` over HTTP on 127.0.0.1. Connection k (1-based) gets ``plan[k-1]``:
    a fraction of the bytes (1.0 = all) after which the socket is closed, or ``None``
    (closed at once without a reply: a failed reconnect). After the plan the port is closed
    (connection refused)."""

    def __init__(self, data: bytes, plan: list[float | None]) -> None:
        self.data = data
        self.plan = list(plan)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/live.ts"
        self.connections = 0
        self.sent: list[int] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            for part in self.plan:
                conn, _ = self.sock.accept()
                self.connections += 1
                with conn:
                    conn.settimeout(5)
                    try:
                        conn.recv(4096)  # the request
                        if part is None:
                            self.sent.append(0)
                            continue
                        n = int(len(self.data) * part)
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\n"
                                     b"Connection: close\r\n\r\n")
                        conn.sendall(self.data[:n])
                        self.sent.append(n)
                    except OSError:
                        self.sent.append(-1)
        except OSError:
            pass
        finally:
            self.sock.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def frames_of(data: bytes) -> int:
    """How many frames a complete TS byte string decodes to."""
    import io

    import av

    with av.open(io.BytesIO(data), format="mpegts") as c:
        return sum(1 for _ in c.decode(video=0))


__all__ = ["DroppingServer", "frames_of", "write_ts", "np"]
