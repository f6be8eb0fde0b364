"""Loaders on tiny fixtures written in each dataset's own layout."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from vision_fixtures import scene, write_feed, write_mp4

from vision.datasets.cholec80 import load_cholec80, official_split, read_phase_file
from vision.datasets.cholecseg8k import WATERSHED_GREY, load_cholecseg8k, watershed_to_ids
from vision.datasets.endoscapes import load_endoscapes
from vision.datasets.feeds import find_feeds, load_feed, load_feeds
from vision.errors import VisionError
from vision.labels import CLASS_ID, IGNORE_INDEX, PHASES, REGIONS, TOOLS

IN, OUT = (64, 48), (32, 24)


def test_vision_feed_loader(tmp_path: Path) -> None:
    feed = write_feed(tmp_path / "f1", seed=3, n_frames=12)
    data = load_feed(feed, IN, OUT, every=3)
    assert len(data) == 4
    assert data.images.shape == (4, 48, 64, 3) and data.masks.shape == (4, 24, 32)
    np.testing.assert_allclose(data.times, [0, 3 / 8, 6 / 8, 9 / 8])
    truth = json.loads((feed / "truth.json").read_text())
    assert list(data.phase) == [truth["frame_labels"]["phase"][i] for i in (0, 3, 6, 9)]
    assert data.cvs_valid.all() and data.tools_valid.all()
    # the FOV crop removed the black border: background is rare after cropping
    assert (data.masks == CLASS_ID["liver"]).any() and (data.masks == CLASS_ID["gallbladder"]).any()
    write_feed(tmp_path / "f2", seed=4, n_frames=8, scenario="bowel-survey")
    assert [p.name for p in find_feeds([tmp_path])] == ["f1", "f2"]
    both = load_feeds([tmp_path], IN, OUT, every=4)
    assert len(both) == 3 + 2 and set(both.video) == {0, 1}
    assert not both.cvs_valid[both.video == 1].any()  # no CVS truth outside cholecystectomy
    with pytest.raises(VisionError, match="truth.json"):
        load_feed(tmp_path / "nope", IN, OUT)
    with pytest.raises(VisionError):
        find_feeds([tmp_path / "f1" / "masks"])


def _cholecseg8k(root: Path) -> np.ndarray:
    """Two videos x 2 frames; returns the expected class ids of the first frame."""
    rng = np.random.default_rng(0)
    grey_of = {cid: g for g, cid in WATERSHED_GREY.items()}
    expected = None
    for v, start in (("video01", 80), ("video12", 15100)):
        d = root / v / f"{v}_{start:05d}"
        d.mkdir(parents=True)
        for k in range(2):
            n = start + k
            rgb, ids = scene(k, 96, 64, 0, rng)
            ws = np.vectorize(lambda c: grey_of.get(int(c), 0))(ids).astype(np.uint8)
            ws[:, :2] = 255  # FOV border level -> ignore
            cv2.imwrite(str(d / f"frame_{n}_endo.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(d / f"frame_{n}_endo_watershed_mask.png"),
                        np.dstack([ws] * 3) if k else ws)  # 1- and 3-channel masks occur
            cv2.imwrite(str(d / f"frame_{n}_endo_color_mask.png"), np.zeros((64, 96, 3)))
            cv2.imwrite(str(d / f"frame_{n}_endo_mask.png"), np.zeros((64, 96)))
            if expected is None:
                expected = np.where(ws == 255, IGNORE_INDEX, ids).astype(np.uint8)
    return expected


def test_vision_cholecseg8k_loader(tmp_path: Path) -> None:
    grey = np.array([[50, 11, 21, 13], [255, 0, 5, 33]], np.uint8)
    np.testing.assert_array_equal(watershed_to_ids(grey),
                                  [[0, 1, 2, 3], [IGNORE_INDEX, IGNORE_INDEX, 12, 11]])
    expected = _cholecseg8k(tmp_path)
    data = load_cholecseg8k(tmp_path, (96, 64), (96, 64), fov_crop=False)
    assert len(data) == 4 and data.sources == ["cholecseg8k/video01", "cholecseg8k/video12"]
    np.testing.assert_array_equal(data.masks[0], expected)
    assert (data.region == REGIONS.index("abdominal_cavity")).all()
    assert (data.phase == -1).all() and not data.tools_valid.any() and not data.cvs_valid.any()
    only = load_cholecseg8k(tmp_path, IN, OUT, videos={"video12"})
    assert len(only) == 2 and only.times[0] == pytest.approx(15100 / 25)
    with pytest.raises(VisionError, match="no CholecSeg8k frames"):
        load_cholecseg8k(tmp_path / "video01", IN, OUT)


def test_vision_cholec80_loader(tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    (tmp_path / "phase_annotations").mkdir()
    (tmp_path / "tool_annotations").mkdir()
    rng = np.random.default_rng(0)
    n = 60  # 2.4 s at 25 fps
    write_mp4(tmp_path / "videos" / "video41.mp4",
              [scene(i / 25, 96, 64, 0, rng)[0] for i in range(n + 2)], 25)  # 2 extra frames
    phases = ["Preparation"] * 30 + ["CalotTriangleDissection"] * 30
    (tmp_path / "phase_annotations" / "video41-phase.txt").write_text(
        "Frame\tPhase\n" + "".join(f"{i}\t{p}\n" for i, p in enumerate(phases)))
    # columns deliberately in another order: matched by header name
    cols = ["Frame", "Hook", "Grasper", "Bipolar", "Scissors", "Clipper", "Irrigator",
            "SpecimenBag"]
    rows = ["\t".join(cols)] + [f"{i}\t1\t{int(i == 25)}\t0\t0\t0\t0\t0" for i in (0, 25, 50)]
    (tmp_path / "tool_annotations" / "video41-tool.txt").write_text("\n".join(rows) + "\n")
    assert read_phase_file(tmp_path / "phase_annotations" / "video41-phase.txt")[45] == 1
    data = load_cholec80(tmp_path, IN, OUT)
    assert len(data) == 3  # frames 0, 25, 50 (extra decoded frames dropped)
    assert list(data.phase) == [0, 0, 1]
    hook, grasper = TOOLS.index("Hook"), TOOLS.index("Grasper")
    assert data.tools[:, hook].tolist() == [1, 1, 1]
    assert data.tools[:, grasper].tolist() == [0, 1, 0]
    assert (data.masks == IGNORE_INDEX).all()
    assert official_split("video41") == "test" and official_split("video07") == "train"
    (tmp_path / "phase_annotations" / "video41-phase.txt").write_text("Frame\tPhase\n0\tFoo\n")
    with pytest.raises(VisionError, match="phase"):
        load_cholec80(tmp_path, IN, OUT)
    assert PHASES[1] == "CalotTriangleDissection"


def test_vision_endoscapes_loader(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "train_seg"):
        (tmp_path / split).mkdir()
    imgs = []
    for k, (ds) in enumerate([[0.0, 0.33, 1.0], [0.67, 0.67, 0.33]]):
        name = f"120_{(k + 1) * 125}.jpg"
        cv2.imwrite(str(tmp_path / "train" / name), scene(k, 96, 64, 0, rng)[0])
        imgs.append({"id": k + 1, "file_name": name, "width": 96, "height": 64, "ds": ds})
    (tmp_path / "train" / "annotation_ds_coco.json").write_text(json.dumps(
        {"images": imgs, "annotations": [], "categories": []}))
    (tmp_path / "train_seg" / "semseg").mkdir()
    cv2.imwrite(str(tmp_path / "train_seg" / "7_500.jpg"), scene(0, 96, 64, 0, rng)[0])
    sem = np.zeros((64, 96), np.uint8)
    sem[10:20, 10:30] = 5  # gallbladder
    sem[30:40, 40:50] = 4  # cystic duct
    sem[40:50, 60:70] = 6  # tool -> ignore
    cv2.imwrite(str(tmp_path / "train_seg" / "semseg" / "7_500.png"), np.dstack([sem] * 3))
    (tmp_path / "train_seg" / "annotation_coco.json").write_text(json.dumps(
        {"images": [{"id": 1, "file_name": "7_500.jpg", "width": 96, "height": 64}],
         "annotations": [], "categories": []}))
    data = load_endoscapes(tmp_path, "train", (96, 64), (96, 64), fov_crop=False)
    assert len(data) == 3
    cvs = data.cvs[data.cvs_valid]
    np.testing.assert_array_equal(cvs, [[0, 0, 1], [1, 1, 0]])  # met at >= 0.5
    assert data.times[0] == pytest.approx(125 / 25)
    seg = data.masks[~data.cvs_valid][0]
    assert seg[15, 20] == CLASS_ID["gallbladder"] and seg[35, 45] == CLASS_ID["cystic_duct"]
    assert seg[45, 65] == IGNORE_INDEX and seg[0, 0] == IGNORE_INDEX
    with pytest.raises(VisionError, match="split"):
        load_endoscapes(tmp_path, "dev", IN, OUT)
    with pytest.raises(VisionError, match="not found"):
        load_endoscapes(tmp_path, "val", IN, OUT)


def test_vision_endoscapes_seg201_loader(tmp_path: Path) -> None:
    from vision.datasets.endoscapes import load_endoscapes_seg201

    rng = np.random.default_rng(1)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    index = {}
    for stem, split, ds in (("4_100", "train", [1.0, 0.33, 0.67]), ("4_200", "train", None),
                            ("126_50", "val", [0.0, 0.0, 0.0])):
        cv2.imwrite(str(tmp_path / "images" / f"{stem}.jpg"), scene(0, 96, 64, 0, rng)[0])
        sem = np.zeros((64, 96), np.uint8)
        sem[10:20, 10:30] = 5
        sem[30:40, 40:50] = 2  # hepatocystic triangle
        sem[40:50, 60:70] = 6  # tool
        sem[0:4, :] = 255
        cv2.imwrite(str(tmp_path / "masks" / f"{stem}.png"), sem)
        ann = [{"file_name": f"{stem}.jpg", "ds": ds}] if ds is not None else [{}]
        index[stem] = {"file_name": f"{stem}.jpg", "folders": ["semseg", split],
                       "annotations": ann}
    (tmp_path / "matches.json").write_text(json.dumps(index))
    raw = load_endoscapes_seg201(tmp_path, "train", (96, 64), (48, 32), fov_crop=False)
    assert len(raw) == 2 and raw.sources == ["endoscapes/4"]
    m = raw.masks[0]
    assert m[7, 10] == 5 and m[17, 22] == 2 and m[22, 32] == 6 and m[0, 0] == IGNORE_INDEX
    np.testing.assert_array_equal(raw.cvs_valid, [True, False])
    np.testing.assert_array_equal(raw.cvs[0], [1, 0, 1])
    mapped = load_endoscapes_seg201(tmp_path, "val", (96, 64), (48, 32), raw_ids=False,
                                    fov_crop=False)
    mm = mapped.masks[0]
    assert mm[7, 10] == CLASS_ID["gallbladder"]
    assert mm[17, 22] == CLASS_ID["hepatocystic_triangle"]
    assert mm[22, 32] == IGNORE_INDEX and mm[30, 5] == IGNORE_INDEX  # tool, background
    with pytest.raises(VisionError, match="no Endoscapes seg201"):
        load_endoscapes_seg201(tmp_path, "test", (96, 64), (48, 32))
    (tmp_path / "masks" / "4_200.png").unlink()
    with pytest.raises(VisionError, match="mask"):
        load_endoscapes_seg201(tmp_path, "train", (96, 64), (48, 32))
