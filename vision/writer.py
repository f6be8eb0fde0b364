"""H.264 MP4 writing through PyAV (OpenCV's pip wheels cannot write H.264).

Frames are written with consecutive timestamps at a constant rate, so the output has exactly
as many frames as were written, at the given fps. The file is written under a temporary name
and moved into place on ``close``, so a reader never sees a half-written MP4.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from vision.errors import VisionError


class Mp4Writer:
    """Write RGB uint8 frames to an H.264 MP4 (yuv420p; yuv444p for odd sizes)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float,
        size: tuple[int, int],
        crf: int = 23,
        preset: str = "veryfast",
        threads: int = 0,
    ) -> None:
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_path = self.path.with_name(f".{self.path.name}.partial")
        w, h = size
        if w < 1 or h < 1:
            raise VisionError(f"cannot write a {w}x{h} video")
        self.size = (w, h)
        self.frames = 0
        rate = Fraction(fps).limit_denominator(1001)
        self._container = av.open(
            str(self.tmp_path), mode="w", format="mp4", options={"movflags": "+faststart"}
        )
        stream = self._container.add_stream("libx264", rate=rate)
        stream.width, stream.height = w, h
        odd = (w % 2) or (h % 2)
        stream.pix_fmt = "yuv444p" if odd else "yuv420p"
        stream.time_base = Fraction(1, 1) / rate
        stream.thread_type = "AUTO"
        if threads:
            stream.thread_count = threads
        stream.options = {"crf": str(crf), "preset": preset}
        self._stream = stream
        self._av = av
        self._closed = False

    def write(self, rgb: np.ndarray) -> None:
        """Append one RGB uint8 (H, W, 3) frame."""
        if rgb.shape[1] != self.size[0] or rgb.shape[0] != self.size[1]:
            raise VisionError(
                f"frame size {rgb.shape[1]}x{rgb.shape[0]} differs from the video's "
                f"{self.size[0]}x{self.size[1]}"
            )
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> Path:
        """Flush, close and move the file into place; returns the final path."""
        if self._closed:
            return self.path
        self._closed = True
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        os.replace(self.tmp_path, self.path)
        return self.path

    def abort(self) -> None:
        """Close without keeping the file."""
        if not self._closed:
            self._closed = True
            try:
                self._container.close()
            finally:
                self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_test_clip(
    path: str | os.PathLike[str],
    seconds: float = 2.0,
    fps: float = 30.0,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
) -> Path:
    """Write a deterministic moving test pattern (frame counter drawn in) as H.264 MP4."""
    import cv2

    w, h = size
    n = max(1, round(seconds * fps))
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.integers(60, 200, size=3)
    with Mp4Writer(path, fps, size, crf=20) as wr:
        for i in range(n):
            img = np.empty((h, w, 3), np.uint8)
            phase = i / max(1, n)
            img[..., 0] = (base[0] + 50 * np.sin(xx / 23 + 6.28 * phase)).astype(np.uint8)
            img[..., 1] = (base[1] + 50 * np.cos(yy / 17 - 6.28 * phase)).astype(np.uint8)
            img[..., 2] = base[2]
            cx = int((0.2 + 0.6 * phase) * w)
            cv2.circle(img, (cx, h // 2), max(2, h // 8), (240, 80, 60), -1)
            cv2.putText(img, str(i), (4, h - 6), cv2.FONT_HERSHEY_SIMPLEX, h / 300, (255,) * 3, 1)
            wr.write(img)
    return Path(path)
