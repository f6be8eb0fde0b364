"""Pixels of a synthetic feed: the scene rendered frame by frame into video.mp4 (H.264)
and masks/ (one label PNG per frame), with the per-frame labels of the truth.
"""

from __future__ import annotations

import shutil
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from copilot.errors import CopilotError
from vision.labels import TOOLS


class _VideoWriter:
    """H.264 (libx264, yuv420p, constant frame rate) through PyAV."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float, preset: str, crf: int):
        import av

        self.av = av
        self.container = av.open(str(path), mode="w")
        rate = Fraction(fps).limit_denominator(1001)
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.width, self.stream.height = size
        self.stream.pix_fmt = "yuv420p"
        # fixed thread count: the bitstream must not depend on the machine's core count
        self.stream.options = {"preset": preset, "crf": str(crf), "threads": "4"}

    def write(self, rgb: np.ndarray) -> None:
        """Encode one RGB uint8 (H, W, 3) frame."""
        frame = self.av.VideoFrame.from_ndarray(rgb, format="rgb24")
        for pkt in self.stream.encode(frame):
            self.container.mux(pkt)

    def close(self) -> None:
        """Flush the encoder and finish the MP4."""
        for pkt in self.stream.encode():
            self.container.mux(pkt)
        self.container.close()


def _write_mask(path: Path, mask: np.ndarray) -> None:
    import cv2

    # label maps: no row filter + run-length deflate is ~3x faster than the defaults
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY,
              cv2.IMWRITE_PNG_STRATEGY_RLE, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    if not cv2.imwrite(str(path), mask, params):
        raise CopilotError(f"cannot write {path}")


def render_frames(out: Path, scenario: str, plan: Any, scene: Any, size: tuple[int, int],
                  fps: float, n_frames: int, preset: str, crf: int,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, list]:
    """Render ``n_frames`` frames of ``scene`` into ``out``/video.mp4 and ``out``/masks/
    (encoding and PNG writing overlap the rendering); returns the per-frame labels."""
    w, h = size
    out.mkdir(parents=True, exist_ok=True)
    masks = out / "masks"
    if masks.exists():
        shutil.rmtree(masks)
    masks.mkdir()
    labels: dict[str, list] = {"phase": [], "region": [], "cvs": [], "tools": [],
                               "classes_present": []}
    writer = _VideoWriter(out / "video.mp4", (w, h), fps, preset, crf)
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=1) as enc, ThreadPoolExecutor(max_workers=2) as io:
        try:
            for i in range(n_frames):
                t = i / fps
                fr = scene.render(i)
                pending.append(enc.submit(writer.write, fr.rgb))
                pending.append(io.submit(_write_mask, masks / f"{i:06d}.png", fr.mask))
                labels["classes_present"].append(list(fr.classes))
                labels["tools"].append([int(x in fr.tools) for x in TOOLS])
                if scenario == "cholecystectomy":
                    labels["phase"].append(plan.phase_at(t)[0])
                    labels["region"].append(0)
                    labels["cvs"].append(plan.cvs_at(t))
                else:
                    labels["phase"].append(-1)
                    labels["region"].append(scene.region_index(t))
                    labels["cvs"].append([0, 0, 0])
                while len(pending) > 12:
                    pending.popleft().result()
                if progress is not None:
                    progress(i + 1, n_frames)
            while pending:
                pending.popleft().result()
        finally:
            enc.submit(writer.close).result()
    return labels
