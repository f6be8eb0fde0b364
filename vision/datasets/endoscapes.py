"""Loader for Endoscapes2023 (CVS criteria; segmentation subset).

Layout (see /work/shared/DATASETS.md)::

    ROOT/{train,val,test}/{video}_{frame}.jpg + annotation_ds_coco.json  (CVS per image)
    ROOT/{train,val,test}_seg/{video}_{frame}.jpg + annotation_coco.json
    ROOT/{train,val,test}_seg/semseg/{video}_{frame}.png  (class ids; also ROOT/semseg/)

CVS: each COCO image carries ``ds`` = [C1, C2, C3], each the mean of three annotators; a
criterion counts as met at >= 0.5. Semantic ids (inferred, unverified): 0 background,
1 cystic_plate, 2 calot_triangle, 3 cystic_artery, 4 cystic_duct, 5 gallbladder, 6 tool.
Only cystic artery, cystic duct and gallbladder map onto ``vision.labels`` classes; the
rest (including background, which covers many of our classes) become ``IGNORE_INDEX``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np

from vision.datasets.common import FrameBuilder, LabelledFrames
from vision.errors import VisionError
from vision.labels import CLASS_ID, IGNORE_INDEX, REGIONS

FPS = 25.0
ENDOSCAPES_CLASSES = ("background", "cystic_plate", "calot_triangle", "cystic_artery",
                      "cystic_duct", "gallbladder", "tool")
_NAME = re.compile(r"^(\d+)_(\d+)$")


def semseg_lut() -> np.ndarray:
    """Endoscapes semantic id -> vision.labels id (unknown -> ignore)."""
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    for i, name in enumerate(ENDOSCAPES_CLASSES):
        if name in CLASS_ID and name != "background":
            lut[i] = CLASS_ID[name]
    return lut


def read_coco(path: Path) -> dict:
    """Parse a COCO json and index images by id."""
    try:
        coco = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise VisionError(f"Endoscapes annotation not found: {path}") from exc
    except ValueError as exc:
        raise VisionError(f"corrupt COCO json {path}: {exc}") from exc
    if "images" not in coco:
        raise VisionError(f"{path}: not a COCO file (no 'images')")
    return coco


def cvs_from_ds(ds) -> np.ndarray:
    """Annotator-mean [C1, C2, C3] -> 0/1 at >= 0.5."""
    a = np.asarray(ds, np.float32).reshape(-1)
    if a.size != 3:
        raise VisionError(f"Endoscapes 'ds' must hold 3 values, got {ds!r}")
    return (a >= 0.5).astype(np.float32)


def _time_of(stem: str) -> tuple[str, float]:
    m = _NAME.match(stem)
    return (m.group(1), int(m.group(2)) / FPS) if m else (stem, 0.0)


def _find_semseg(root: Path, split: str, stem: str) -> Path | None:
    for d in (root / f"{split}_seg" / "semseg", root / split / "semseg", root / "semseg"):
        p = d / f"{stem}.png"
        if p.is_file():
            return p
    return None


def _add_image(builders: dict, img_path: Path, mask: np.ndarray | None, cvs, input_size,
               output_size, fov_crop: bool) -> None:
    bgr = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise VisionError(f"unreadable Endoscapes image {img_path}")
    video, t = _time_of(img_path.stem)
    b = builders.setdefault(video, FrameBuilder(f"endoscapes/{video}", FPS, input_size,
                                                output_size, fov_crop))
    b.add(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), mask, t,
          region=REGIONS.index("abdominal_cavity"), cvs=cvs)


def load_endoscapes(root: Path | str, split: str, input_size: tuple[int, int],
                    output_size: tuple[int, int], cvs: bool = True, seg: bool = True,
                    fov_crop: bool = True) -> LabelledFrames:
    """CVS-labelled frames of ``split`` and/or the segmentation subset ``{split}_seg``."""
    root = Path(root)
    if split not in ("train", "val", "test"):
        raise VisionError(f"Endoscapes split must be train, val or test, not {split!r}")
    builders: dict[str, FrameBuilder] = {}
    lut = semseg_lut()
    if cvs:
        coco = read_coco(root / split / "annotation_ds_coco.json")
        for im in coco["images"]:
            if "ds" not in im:
                continue
            _add_image(builders, root / split / im["file_name"], None, cvs_from_ds(im["ds"]),
                       input_size, output_size, fov_crop)
    if seg and (root / f"{split}_seg").is_dir():
        coco = read_coco(root / f"{split}_seg" / "annotation_coco.json")
        for im in coco["images"]:
            stem = Path(im["file_name"]).stem
            mpath = _find_semseg(root, split, stem)
            if mpath is None:
                continue
            m = cv2.imread(str(mpath), cv2.IMREAD_UNCHANGED)
            if m is None:
                raise VisionError(f"unreadable Endoscapes mask {mpath}")
            if m.ndim == 3:
                m = m[..., 0]
            c = cvs_from_ds(im["ds"]) if "ds" in im else None
            _add_image(builders, root / f"{split}_seg" / im["file_name"], lut[m], c,
                       input_size, output_size, fov_crop)
    if not builders:
        raise VisionError(f"no Endoscapes images found for split {split!r} under {root}")
    return LabelledFrames.concat([b.build() for b in builders.values()])
