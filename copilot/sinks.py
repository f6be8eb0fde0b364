"""Where composited frames go: an H.264 MP4 file, the web UI, a native window, nowhere."""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np

from copilot.errors import CopilotError

log = logging.getLogger(__name__)


class FrameSink(ABC):
    """Receives every composited frame of the video path, in order."""

    name = "sink"

    def open(self, fps: float, size: tuple[int, int]) -> None:  # noqa: B027 - optional
        """Prepare for frames of ``size`` (w, h) px at ``fps`` Hz."""

    @abstractmethod
    def write(self, frame_id: int, rgb: np.ndarray) -> None:
        """Take one RGB uint8 frame."""

    def close(self) -> None:  # noqa: B027 - optional
        """Finish (flush files, close windows)."""


class Mp4Sink(FrameSink):
    """Writes the annotated video as H.264 MP4 (moved into place atomically on close)."""

    name = "mp4"

    def __init__(self, path: Path, preset: str = "veryfast", crf: int = 23) -> None:
        self.path = Path(path)
        self.preset = preset
        self.crf = crf
        self._writer = None
        self.frames = 0

    def open(self, fps: float, size: tuple[int, int]) -> None:
        from vision.writer import Mp4Writer

        self._writer = Mp4Writer(self.path, fps, size, crf=self.crf, preset=self.preset)

    def write(self, frame_id: int, rgb: np.ndarray) -> None:
        assert self._writer is not None, "open() first"
        self._writer.write(rgb)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class LatestFrameSink(FrameSink):
    """Keeps the newest frame (and calls listeners) for the web UI stream; never blocks."""

    name = "latest"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.frame_id = -1
        self.rgb: np.ndarray | None = None
        self.listeners: list[Callable[[int, np.ndarray], None]] = []

    def write(self, frame_id: int, rgb: np.ndarray) -> None:
        with self._lock:
            self.frame_id, self.rgb = frame_id, rgb
        for fn in self.listeners:
            fn(frame_id, rgb)

    def latest(self) -> tuple[int, np.ndarray | None]:
        """(frame id, RGB) of the newest frame; (-1, None) before the first."""
        with self._lock:
            return self.frame_id, self.rgb


class NullSink(FrameSink):
    """Counts frames and drops them (benchmarks)."""

    name = "null"

    def __init__(self) -> None:
        self.frames = 0

    def write(self, frame_id: int, rgb: np.ndarray) -> None:
        self.frames += 1


class WindowSink(FrameSink):
    """A native window (Tk) when a display exists; frames are shown from a Tk thread."""

    name = "window"

    def __init__(self, title: str = "surgical copilot") -> None:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            raise CopilotError("--window needs a display (DISPLAY is not set)")
        try:
            import tkinter  # noqa: F401
        except ImportError:
            raise CopilotError("--window needs Python's tkinter (apt install python3-tk)") from None
        self.title = title
        self._latest = LatestFrameSink()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self, fps: float, size: tuple[int, int]) -> None:
        self._thread = threading.Thread(target=self._ui, args=(fps,), daemon=True)
        self._thread.start()

    def _ui(self, fps: float) -> None:
        import tkinter as tk

        root = tk.Tk()
        root.title(self.title)
        label = tk.Label(root)
        label.pack()
        shown = [-1]

        def tick() -> None:
            if self._stop.is_set():
                root.destroy()
                return
            fid, rgb = self._latest.latest()
            if rgb is not None and fid != shown[0]:
                h, w = rgb.shape[:2]
                ppm = b"P6 %d %d 255 " % (w, h) + rgb.tobytes()
                img = tk.PhotoImage(data=ppm, format="PPM")
                label.configure(image=img)
                label.image = img  # keep a reference
                shown[0] = fid
            root.after(max(1, int(500 / max(fps, 1))), tick)

        tick()
        root.mainloop()

    def write(self, frame_id: int, rgb: np.ndarray) -> None:
        self._latest.write(frame_id, rgb)

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2.0)
