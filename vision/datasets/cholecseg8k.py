"""Loader for CholecSeg8k (frames + masks; segmentation only).

Layout (see /work/shared/DATASETS.md)::

    ROOT/videoXX/videoXX_NNNNN/frame_N_endo.png
                              frame_N_endo_watershed_mask.png   (labels are read from this)
                              frame_N_endo_color_mask.png       (not used: sources disagree)
                              frame_N_endo_mask.png             (meaning unverified; not used)

Labels are decoded from the watershed mask's grey levels (1 or 3 channels); grey 255 (FOV
border) and 0 (unannotated) and any unknown level become ``IGNORE_INDEX``. Frames count as
laparoscopic views (region ``abdominal_cavity``); phase, tools and CVS are unknown.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from vision.datasets.common import FrameBuilder, LabelledFrames
from vision.errors import VisionError
from vision.labels import IGNORE_INDEX, REGIONS

#: Watershed grey level -> CholecSeg8k class id (= vision.labels id for 0-12).
WATERSHED_GREY: dict[int, int] = {
    50: 0, 11: 1, 21: 2, 13: 3, 12: 4, 31: 5, 23: 6, 24: 7, 25: 8, 32: 9, 22: 10, 33: 11, 5: 12,
}
FPS = 25.0
_FRAME = re.compile(r"frame_(\d+)_endo\.png$")


def watershed_to_ids(mask: np.ndarray) -> np.ndarray:
    """Grey-level watershed mask ([H, W] or [H, W, 3]) -> class ids, unknown -> ignore."""
    if mask.ndim == 3:
        mask = mask[..., 0]
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    for grey, cid in WATERSHED_GREY.items():
        lut[grey] = cid
    return lut[mask]


def list_frames(root: Path | str) -> list[tuple[str, int, Path, Path]]:
    """(video name, frame number, image path, watershed mask path), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise VisionError(f"CholecSeg8k folder not found: {root}")
    out = []
    for img in root.glob("video*/video*_*/frame_*_endo.png"):
        m = _FRAME.search(img.name)
        if not m:
            continue
        ws = img.with_name(img.name.replace("_endo.png", "_endo_watershed_mask.png"))
        if ws.is_file():
            out.append((img.parent.parent.name, int(m.group(1)), img, ws))
    if not out:
        raise VisionError(f"no CholecSeg8k frames (videoXX/videoXX_NNNNN/frame_N_endo.png "
                          f"with a watershed mask) under {root}")
    return sorted(out, key=lambda r: (r[0], r[1]))


def load_cholecseg8k(root: Path | str, input_size: tuple[int, int],
                     output_size: tuple[int, int], videos: set[str] | None = None,
                     every: int = 1, fov_crop: bool = True) -> LabelledFrames:
    """Load CholecSeg8k frames (optionally only ``videos`` such as {"video01"})."""
    frames = [r for r in list_frames(root) if videos is None or r[0] in videos]
    parts: dict[str, FrameBuilder] = {}
    for k, (video, num, img_path, ws_path) in enumerate(frames):
        if k % every:
            continue
        bgr = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        ws = cv2.imread(str(ws_path), cv2.IMREAD_UNCHANGED)
        if bgr is None or ws is None:
            raise VisionError(f"unreadable CholecSeg8k frame {img_path}")
        b = parts.setdefault(video, FrameBuilder(f"cholecseg8k/{video}", FPS, input_size,
                                                 output_size, fov_crop))
        b.add(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), watershed_to_ids(ws), num / FPS,
              region=REGIONS.index("abdominal_cavity"))
    return LabelledFrames.concat([b.build() for b in parts.values()])
