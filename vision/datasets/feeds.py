"""Loader for the project's recorded synthetic feeds (docs/feed_format.md).

A feed folder holds ``video.mp4``, ``masks/NNNNNN.png`` (class ids) and ``truth.json``
(per-frame ``phase``, ``region``, ``cvs``, ``tools``). Frames are decoded with PyAV.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from vision.datasets.common import FrameBuilder, LabelledFrames, decode_video_frames
from vision.errors import VisionError
from vision.labels import CLASSES, IGNORE_INDEX


def read_truth(feed_dir: Path) -> dict:
    """Parse ``truth.json`` and check the keys the loader needs."""
    path = Path(feed_dir) / "truth.json"
    try:
        truth = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise VisionError(f"not a feed folder (no truth.json): {feed_dir}") from exc
    except ValueError as exc:
        raise VisionError(f"corrupt truth.json in {feed_dir}: {exc}") from exc
    for key in ("fps", "n_frames", "frame_labels"):
        if key not in truth:
            raise VisionError(f"truth.json in {feed_dir} lacks {key!r}")
    return truth


def find_feeds(paths: list[Path | str]) -> list[Path]:
    """Each path is a feed folder or a folder of feed folders; returns feed folders, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / "truth.json").is_file():
            out.append(p)
        elif p.is_dir():
            found = sorted(q.parent for q in p.glob("*/truth.json"))
            if not found:
                raise VisionError(f"no feed folders (with truth.json) in {p}")
            out.extend(found)
        else:
            raise VisionError(f"feed folder not found: {p}")
    return out


def _class_remap(truth_classes: list[str] | None) -> np.ndarray:
    """LUT from the feed's class ids to the current CLASSES ids (unknown -> ignore)."""
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    if not truth_classes:
        lut[: len(CLASSES)] = np.arange(len(CLASSES))
        return lut
    for i, name in enumerate(truth_classes):
        if name in CLASSES:
            lut[i] = CLASSES.index(name)
    return lut


def load_feed(feed_dir: Path | str, input_size: tuple[int, int], output_size: tuple[int, int],
              every: int = 1, max_frames: int | None = None, with_masks: bool = True,
              fov_crop: bool = True) -> LabelledFrames:
    """Decode every ``every``-th frame of a feed with its labels (see module docstring)."""
    feed_dir = Path(feed_dir)
    truth = read_truth(feed_dir)
    video = feed_dir / "video.mp4"
    if not video.is_file():
        raise VisionError(f"feed has no video.mp4: {feed_dir}")
    fl = truth["frame_labels"]
    n = int(truth["n_frames"])
    lut = _class_remap(truth.get("classes"))
    fps = float(truth["fps"])
    builder = FrameBuilder(str(feed_dir), fps, input_size, output_size, fov_crop)
    cholec = truth.get("scenario", "cholecystectomy") == "cholecystectomy"
    for i, rgb in decode_video_frames(video, keep=lambda i: i % every == 0 and i < n,
                                      max_frames=max_frames):
        mask = None
        if with_masks:
            mpath = feed_dir / "masks" / f"{i:06d}.png"
            m = cv2.imread(str(mpath), cv2.IMREAD_UNCHANGED)
            if m is None:
                raise VisionError(f"missing or unreadable mask {mpath}")
            if m.ndim == 3:
                m = m[..., 0]
            mask = lut[m]
        builder.add(
            rgb, mask, i / fps,
            phase=int(fl["phase"][i]) if "phase" in fl else -1,
            region=int(fl["region"][i]) if "region" in fl else -1,
            cvs=np.asarray(fl["cvs"][i], np.float32) if "cvs" in fl and cholec else None,
            tools=np.asarray(fl["tools"][i], np.float32) if "tools" in fl else None,
        )
    return builder.build()


def load_feeds(paths: list[Path | str], input_size: tuple[int, int],
               output_size: tuple[int, int], every: int = 1, progress: bool = False
               ) -> LabelledFrames:
    """Load several feeds (folders or parents of feed folders) into one set."""
    feeds = find_feeds(paths)
    it = feeds
    if progress:
        from tqdm import tqdm

        it = tqdm(feeds, desc="decode feeds", unit="feed")
    return LabelledFrames.concat([load_feed(f, input_size, output_size, every) for f in it])
