"""Loader for Endoscapes2023 (CVS criteria; segmentation subset).

Layout (see /work/shared/DATASETS.md)::

    ROOT/{train,val,test}/{video}_{frame}.jpg + annotation_ds_coco.json  (CVS per image)
    ROOT/{train,val,test}_seg/{video}_{frame}.jpg + annotation_coco.json
    ROOT/{train,val,test}_seg/semseg/{video}_{frame}.png  (class ids; also ROOT/semseg/)

The "seg201" layout of ``../shared/data/real/endoscapes-seg201`` is also read
(:func:`load_endoscapes_seg201`): ``images/{video}_{frame}.jpg``, ``masks/{video}_{frame}.png``
and ``matches.json`` (per frame ``folders`` with the official split and ``annotations[0].ds``).

CVS: each COCO image carries ``ds`` = [C1, C2, C3], each the mean of three annotators; a
criterion counts as met at >= 0.5. Semantic ids: 0 background, 1 cystic_plate,
2 calot_triangle (= ``hepatocystic_triangle``), 3 cystic_artery, 4 cystic_duct,
5 gallbladder, 6 tool, 255 not labelled. With ``raw_ids=False`` the five anatomy ids map onto
``vision.labels`` classes and tool / background (each the union of several of our classes)
become ``IGNORE_INDEX``; with ``raw_ids=True`` the masks keep the Endoscapes ids and
:data:`ENDOSCAPES_GROUPS` says which model classes each id covers (partial-label training).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np

from vision.datasets.common import FrameBuilder, LabelledFrames
from vision.errors import VisionError
from vision.labels import CLASS_ID, CLASSES, IGNORE_INDEX, INSTRUMENT_CLASSES, REGIONS

FPS = 25.0
ENDOSCAPES_CLASSES = ("background", "cystic_plate", "calot_triangle", "cystic_artery",
                      "cystic_duct", "gallbladder", "tool")
#: Endoscapes name -> vision.labels name where they are one class.
_SAME = {"cystic_plate": "cystic_plate", "calot_triangle": "hepatocystic_triangle",
         "cystic_artery": "cystic_artery", "cystic_duct": "cystic_duct",
         "gallbladder": "gallbladder"}
_NAME = re.compile(r"^(\d+)_(\d+)$")


def endoscapes_groups() -> tuple[tuple[str, ...], ...]:
    """Model classes each Endoscapes id covers: tool = every instrument class, background =
    every class Endoscapes does not annotate (liver, fat, abdominal wall, clips, ...)."""
    named = set(_SAME.values()) | set(INSTRUMENT_CLASSES)
    groups = [tuple(c for c in CLASSES if c not in named)]
    groups += [(_SAME[n],) for n in ENDOSCAPES_CLASSES[1:6]]
    groups.append(tuple(INSTRUMENT_CLASSES))
    return tuple(groups)


ENDOSCAPES_GROUPS = endoscapes_groups()
#: What Endoscapes labels teach a model, as its card lists it (``extra.real_taught``; "tool":
#: any instrument, its type not labelled).
ENDOSCAPES_TAUGHT: tuple[str, ...] = (*_SAME.values(), "tool")


def model_to_endoscapes_lut(classes: tuple[str, ...] = CLASSES) -> np.ndarray:
    """Model class id -> Endoscapes id (for scoring predictions against Endoscapes masks)."""
    lut = np.zeros(256, np.uint8)
    for e, group in enumerate(ENDOSCAPES_GROUPS):
        for name in group:
            if name in classes:
                lut[classes.index(name)] = e
    return lut


def semseg_lut(raw_ids: bool = False) -> np.ndarray:
    """Endoscapes semantic id -> vision.labels id (unknown -> ignore), or identity (raw)."""
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    for i, name in enumerate(ENDOSCAPES_CLASSES):
        if raw_ids:
            lut[i] = i
        elif name in _SAME:
            lut[i] = CLASS_ID[_SAME[name]]
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
                    fov_crop: bool = True, raw_ids: bool = False) -> LabelledFrames:
    """CVS-labelled frames of ``split`` and/or the segmentation subset ``{split}_seg``."""
    root = Path(root)
    if split not in ("train", "val", "test"):
        raise VisionError(f"Endoscapes split must be train, val or test, not {split!r}")
    builders: dict[str, FrameBuilder] = {}
    lut = semseg_lut(raw_ids)
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


def read_seg201_index(root: Path | str) -> dict[str, dict]:
    """``matches.json`` of the seg201 layout: stem -> {"split", "ds" (3 vote means)}."""
    path = Path(root) / "matches.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise VisionError(f"Endoscapes seg201 index not found: {path}") from exc
    except ValueError as exc:
        raise VisionError(f"corrupt {path}: {exc}") from exc
    out = {}
    for stem, item in raw.items():
        folders = item.get("folders", [])
        split = next((f for f in folders if f in ("train", "val", "test")), None)
        anns = item.get("annotations") or [{}]
        out[stem] = {"split": split, "ds": anns[0].get("ds"),
                     "file_name": item.get("file_name", f"{stem}.jpg")}
    return out


def load_endoscapes_seg201(root: Path | str, split: str, input_size: tuple[int, int],
                           output_size: tuple[int, int], raw_ids: bool = True,
                           fov_crop: bool = True, videos: set[str] | None = None
                           ) -> LabelledFrames:
    """Frames of the seg201 layout in official ``split`` (optionally only ``videos``), with
    masks (Endoscapes ids when ``raw_ids``) and CVS (vote means thresholded at 0.5)."""
    root = Path(root)
    index = read_seg201_index(root)
    lut = semseg_lut(raw_ids)
    builders: dict[str, FrameBuilder] = {}
    for stem in sorted(index, key=lambda s: (_time_of(s)[0], _time_of(s)[1])):
        item = index[stem]
        if item["split"] != split or (videos is not None and _time_of(stem)[0] not in videos):
            continue
        mpath = root / "masks" / f"{stem}.png"
        m = cv2.imread(str(mpath), cv2.IMREAD_UNCHANGED)
        if m is None:
            raise VisionError(f"missing or unreadable Endoscapes mask {mpath}")
        if m.ndim == 3:
            m = m[..., 0]
        c = cvs_from_ds(item["ds"]) if item["ds"] is not None else None
        _add_image(builders, root / "images" / item["file_name"], lut[m], c, input_size,
                   output_size, fov_crop)
    if not builders:
        raise VisionError(f"no Endoscapes seg201 frames for split {split!r} under {root}")
    return LabelledFrames.concat([b.build() for b in builders.values()])
