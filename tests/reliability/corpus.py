"""The bad-input corpus: every file is generated here, deterministically, by the tests.

Videos are written with PyAV (libx264) so they are real H.264 MP4s; audio with soundfile.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

FPS = 25


def _pattern(w: int, h: int, i: int) -> np.ndarray:
    """A moving colour pattern (RGB uint8 HxWx3) so every frame differs."""
    out = np.empty((h, w, 3), np.uint8)
    out[..., 0] = ((np.arange(w) * 255 // max(1, w - 1) + 7 * i) % 256).astype(np.uint8)
    out[..., 1] = ((np.arange(h) * 255 // max(1, h - 1) + 3 * i) % 256).astype(np.uint8)[:, None]
    out[..., 2] = (40 * i) % 256
    return out


def write_video(path: Path, size: tuple[int, int], n: int, fps: int = FPS,
                pix_fmt: str | None = None, pts: list[int] | None = None,
                time_base: Fraction | None = None) -> Path:
    """An H.264 MP4 of ``n`` frames at ``size`` (w, h); ``pts`` in ``time_base`` units gives a
    variable frame rate; ``pix_fmt`` None: yuv420p for even sizes, yuv444p for odd ones."""
    import av

    w, h = size
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height = w, h
        s.pix_fmt = pix_fmt or ("yuv444p" if (w % 2 or h % 2) else "yuv420p")
        s.options = {"preset": "ultrafast", "crf": "30"}
        if time_base is not None:
            s.codec_context.time_base = time_base
            s.time_base = time_base
        for i in range(n):
            rgb = _pattern(w, h, i)
            fr = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if pts is not None:
                fr.pts = pts[i]
                fr.time_base = time_base
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def gray_video(path: Path, size: tuple[int, int] = (160, 120), n: int = 25) -> Path:
    """A video whose pixel format is really ``gray`` (FFV1 in Matroska: libx264 in this build
    stores 4:0:0 requests as 4:2:0)."""
    import av

    w, h = size
    with av.open(str(path), "w", format="matroska") as c:
        s = c.add_stream("ffv1", rate=FPS)
        s.width, s.height = w, h
        s.pix_fmt = "gray"
        for i in range(n):
            g = _pattern(w, h, i)[..., 0].copy()
            for p in s.encode(av.VideoFrame.from_ndarray(g, format="gray")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def vfr_video(path: Path, n: int = 40) -> tuple[Path, list[float]]:
    """Variable frame rate: frame gaps alternate 20 / 40 / 80 ms (pts per frame, 1/1000 s)."""
    gaps = [20, 40, 80]
    pts, t = [], 0
    for i in range(n):
        pts.append(t)
        t += gaps[i % 3]
    write_video(path, (160, 120), n, fps=25, pts=pts, time_base=Fraction(1, 1000))
    return path, [p / 1000 for p in pts]


def truncated_video(src: Path, path: Path) -> Path:
    """``src`` cut at half its bytes (the moov atom is at the end: mdat cut too)."""
    data = src.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def faststart_video(path: Path, size: tuple[int, int], n: int) -> Path:
    """Like write_video but with the index (moov) first, so a cut file still opens."""
    import av

    w, h = size
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height = w, h
        s.pix_fmt = "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "30"}
        for i in range(n):
            for p in s.encode(av.VideoFrame.from_ndarray(_pattern(w, h, i), format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def write_audio(path: Path, rate: int, seconds: float, channels: int = 2, kind: str = "tone"
                ) -> Path:
    """A WAV: ``tone`` (440 / 660 Hz per channel), ``clipped`` (a tone at 4x full scale,
    hard-clipped), ``silent`` (digital zeros) or ``empty`` (a valid header, zero samples)."""
    import soundfile as sf

    n = 0 if kind == "empty" else int(rate * seconds)
    t = np.arange(n) / rate
    chans = [np.sin(2 * np.pi * f * t) * 0.3 for f in (440.0, 660.0)[:channels]]
    x = np.stack(chans, axis=-1) if n else np.zeros((0, channels))
    if kind == "clipped":
        x = np.clip(x * 4 / 0.3, -1.0, 1.0)
    elif kind == "silent":
        x = np.zeros_like(x)
    sf.write(str(path), x.astype(np.float32), rate, subtype="PCM_16")
    return path
