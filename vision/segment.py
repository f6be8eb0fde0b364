"""Batch segmentation of images, folders and videos (``copilot segment``).

Writes, into an output folder:

- ``<stem>.png``: 8-bit class ids at the input's own resolution (0 outside the field of view);
  video frames are ``<video stem>_<frame index, 6 digits>.png``;
- ``labels.json``: ``{"classes": {"<id>": "<name>"}, "instrument_ids": [...]}``;
- ``predictions.jsonl``: one line per image with ``image`` (the stem), ``cvs`` (three
  calibrated probabilities, C1, C2, C3), ``phase`` (name; single-frame for images, causally
  filtered along a video), ``phase_p``, ``tools`` (name -> probability), ``in_domain`` (0-1,
  higher = more like the validated domain) and ``off_label`` (bool).

Unreadable inputs are reported through ``on_error`` and skipped; the others are written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from vision.errors import VisionError
from vision.labels import INSTRUMENT_CLASSES

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; folders -> their image and video files (sorted, not recursive)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir()
                              if q.is_file() and q.suffix.lower() in IMAGE_EXT | VIDEO_EXT))
        else:
            out.append(p)
    return out


def full_label_map(res, frame_hw: tuple[int, int]) -> np.ndarray:
    """Class ids [H, W] uint8 at frame resolution from a VisionResult (0 outside the FOV)."""
    h, w = frame_hw
    out = np.zeros((h, w), np.uint8)
    b = res.fov_box
    out[b.y0:b.y1, b.x0:b.x1] = cv2.resize(res.label_map, (b.x1 - b.x0, b.y1 - b.y0),
                                           interpolation=cv2.INTER_NEAREST)
    return out


def prediction_record(stem: str, res, filtered_phase: bool) -> dict:
    """The predictions.jsonl line of one frame."""
    phase = res.phase if filtered_phase else res.phase_frame
    name = max(phase, key=phase.get)
    return {"image": stem, "cvs": [round(float(v), 4) for v in res.cvs.values()],
            "phase": name, "phase_p": round(float(phase[name]), 4),
            "tools": {k: round(float(v), 4) for k, v in res.tools.items()},
            "in_domain": round(float(res.in_domain), 4), "off_label": bool(res.off_label)}


def _frames(path: Path, every: int) -> Iterator[tuple[str, np.ndarray, float | None]]:
    """(stem, rgb, media time s or None) of an image or every ``every``-th video frame."""
    if path.suffix.lower() in VIDEO_EXT:
        import av

        from vision.datasets.common import decode_video_frames

        try:
            with av.open(str(path)) as c:
                rate = float(c.streams.video[0].average_rate or 25.0)
        except Exception as exc:  # av raises its own error types
            raise VisionError(f"cannot open video {path}: {exc}") from exc
        n = 0
        for i, rgb in decode_video_frames(path, keep=lambda i: i % every == 0):
            n += 1
            yield f"{path.stem}_{i:06d}", rgb, i / rate
        if n == 0:
            raise VisionError(f"no frames decoded from video {path}")
        return
    if not path.is_file():
        raise VisionError(f"file not found: {path}")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise VisionError(f"not a readable image or video: {path}")
    yield path.stem, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None


def segment_paths(pipe, paths: list[Path], out_dir: Path, every: int = 1,
                  on_error: Callable[[str], None] | None = None) -> tuple[int, int]:
    """Segment ``paths`` into ``out_dir``; returns (frames written, inputs that failed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = pipe.classes
    (out_dir / "labels.json").write_text(json.dumps({
        "classes": {str(i): n for i, n in enumerate(classes)},
        "instrument_ids": [i for i, n in enumerate(classes) if n in INSTRUMENT_CLASSES]},
        indent=1))
    written, failed = 0, 0
    used: set[str] = set()
    with open(out_dir / "predictions.jsonl", "w") as jf:
        for path in expand_inputs(paths):
            pipe.reset()
            video = path.suffix.lower() in VIDEO_EXT
            try:
                for stem, rgb, t in _frames(path, every):
                    res = pipe.process(rgb, timestamp_s=t)
                    name, k = stem, 2
                    while name in used:
                        name, k = f"{stem}_{k}", k + 1
                    used.add(name)
                    cv2.imwrite(str(out_dir / f"{name}.png"), full_label_map(res, rgb.shape[:2]))
                    jf.write(json.dumps(prediction_record(name, res, video)) + "\n")
                    jf.flush()
                    written += 1
            except VisionError as exc:
                failed += 1
                if on_error is not None:
                    on_error(str(exc))
    return written, failed
