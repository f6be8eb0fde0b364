"""Loader for Cholec80 (phase and tool-presence annotations per video).

Layout (see /work/shared/DATASETS.md)::

    ROOT/videos/videoXX.mp4
    ROOT/phase_annotations/videoXX-phase.txt   "Frame<TAB>Phase", one row per frame (25 fps)
    ROOT/tool_annotations/videoXX-tool.txt     "Frame<TAB>Grasper<TAB>...", every 25th frame

Phases are mapped by name (sources order the last three differently). Frames are sampled
where a tool row exists (1 fps) unless ``every_s`` asks for sparser sampling; decoded
frames beyond the annotations (ffmpeg may add a couple) are dropped. Segmentation and CVS
are unknown; region is ``abdominal_cavity``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vision.datasets.common import FrameBuilder, LabelledFrames, decode_video_frames
from vision.errors import VisionError
from vision.labels import PHASES, REGIONS, TOOLS

FPS = 25.0


def read_phase_file(path: Path) -> dict[int, int]:
    """Frame index -> PHASES index."""
    out: dict[int, int] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise VisionError(f"cannot read phase annotations {path}: {exc}") from exc
    for ln, line in enumerate(lines):
        parts = line.strip().split()
        if not parts or (ln == 0 and parts[0].lower() == "frame"):
            continue
        if len(parts) != 2 or parts[1] not in PHASES:
            raise VisionError(f"{path}:{ln + 1}: expected '<frame>\\t<phase>', got {line!r}")
        out[int(parts[0])] = PHASES.index(parts[1])
    return out


def read_tool_file(path: Path) -> dict[int, np.ndarray]:
    """Frame index -> [7] float 0/1 in TOOLS order (columns matched by header name)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise VisionError(f"cannot read tool annotations {path}: {exc}") from exc
    if not lines:
        raise VisionError(f"empty tool annotations {path}")
    header = lines[0].split()
    if header[0].lower() != "frame" or any(t not in header for t in TOOLS):
        raise VisionError(f"{path}: header must be 'Frame' + {list(TOOLS)}")
    cols = [header.index(t) for t in TOOLS]
    out = {}
    for ln, line in enumerate(lines[1:], start=2):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(header):
            raise VisionError(f"{path}:{ln}: expected {len(header)} columns")
        out[int(parts[0])] = np.array([float(parts[c]) for c in cols], np.float32)
    return out


def list_videos(root: Path | str) -> list[str]:
    """Video ids ("video01", ...) that have a video and a phase file."""
    root = Path(root)
    if not (root / "videos").is_dir():
        raise VisionError(f"Cholec80 folder has no videos/: {root}")
    ids = []
    for v in sorted((root / "videos").glob("video*.mp4")):
        if (root / "phase_annotations" / f"{v.stem}-phase.txt").is_file():
            ids.append(v.stem)
    if not ids:
        raise VisionError(f"no Cholec80 videos with phase annotations under {root}")
    return ids


def official_split(video_id: str) -> str:
    """'train' for videos 1-40, 'test' for 41-80 (the usual convention)."""
    m = re.search(r"(\d+)", video_id)
    return "train" if m and int(m.group(1)) <= 40 else "test"


def load_cholec80(root: Path | str, input_size: tuple[int, int], output_size: tuple[int, int],
                  videos: list[str] | None = None, every_s: float = 1.0,
                  fov_crop: bool = True) -> LabelledFrames:
    """Decode annotated frames (every ``every_s`` seconds) of the given (or all) videos."""
    root = Path(root)
    parts = []
    region = REGIONS.index("abdominal_cavity")
    step = max(1, int(round(every_s * FPS)))
    for vid in videos or list_videos(root):
        phases = read_phase_file(root / "phase_annotations" / f"{vid}-phase.txt")
        tool_path = root / "tool_annotations" / f"{vid}-tool.txt"
        tools = read_tool_file(tool_path) if tool_path.is_file() else {}
        b = FrameBuilder(f"cholec80/{vid}", FPS, input_size, output_size, fov_crop)
        keep = set(k for k in phases if k % step == 0)
        for i, rgb in decode_video_frames(root / "videos" / f"{vid}.mp4",
                                          keep=keep.__contains__):
            b.add(rgb, None, i / FPS, phase=phases[i], region=region, tools=tools.get(i))
        parts.append(b.build())
    return LabelledFrames.concat(parts)
