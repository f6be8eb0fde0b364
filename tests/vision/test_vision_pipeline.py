"""Preprocessing, post-processing and the VisionPipeline on real ONNX Runtime sessions."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from vision_fixtures import scene

from vision.errors import VisionError
from vision.labels import CLASS_ID, CLASSES, PHASES, REGIONS
from vision.pipeline import VisionPipeline, VisionResult
from vision.postprocess import draw_overlay, structure_findings
from vision.preprocess import CropBox, find_fov, preprocess


def test_vision_fov_crop_finds_lit_circle() -> None:
    rgb, _ = scene(0.0, 320, 240, 0, np.random.default_rng(0))
    framed = np.zeros((240, 400, 3), np.uint8)
    framed[:, 40:360] = rgb  # letterbox bars left and right
    box = find_fov(framed)
    assert 32 <= box.x0 <= 48 and 352 <= box.x1 <= 368
    x, box2 = preprocess(framed, (128, 128))
    assert x.shape == (1, 3, 128, 128) and x.dtype == np.float32
    assert box2 == box
    dark = np.full((100, 100, 3), 5, np.uint8)
    assert find_fov(dark) == CropBox(0, 0, 100, 100)


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32),
                                 np.zeros((4, 4, 3), np.uint8)])
def test_vision_preprocess_rejects_bad_frames(bad) -> None:
    with pytest.raises(VisionError):
        preprocess(bad, (64, 64))


def test_vision_findings_geometry() -> None:
    labels = np.zeros((32, 32), np.uint8)
    labels[8:16, 4:12] = CLASS_ID["cystic_duct"]  # 8x8 block
    conf = np.full((32, 32), 0.8, np.float32)
    box = CropBox(100, 50, 100 + 320, 50 + 160)  # FOV box in a 640x360 frame
    fs = structure_findings(labels, conf, box, (360, 640))
    names = [f.name for f in fs]
    assert names == ["cystic_duct"]  # background is never a finding
    f = fs[0]
    assert f.area_fraction == pytest.approx(64 / 1024)
    assert f.confidence == pytest.approx(0.8)
    sx, sy = 10.0, 5.0
    assert f.centroid[0] == pytest.approx((100 + 8 * sx) / 640, abs=1e-6)
    assert f.centroid[1] == pytest.approx((50 + 12 * sy) / 360, abs=1e-6)
    poly = np.concatenate(f.polygons)
    assert poly[:, 0].min() >= 100 + 4 * sx - 1 and poly[:, 0].max() <= 100 + 12 * sx + 1
    assert poly[:, 1].min() >= 50 + 8 * sy - 1 and poly[:, 1].max() <= 50 + 16 * sy + 1
    full = f.full_mask((360, 640))
    assert full.sum() == pytest.approx(64 * sx * sy, rel=0.05)
    assert full[50 + 12 * 5, 100 + 8 * 10]
    out = draw_overlay(np.zeros((360, 640, 3), np.uint8), fs, ["phase: x"])
    assert out.shape == (360, 640, 3) and out[110, 180].any()


def test_vision_pipeline_process(tiny_model_dir) -> None:
    pipe = VisionPipeline.load(tiny_model_dir, runtime="onnxruntime", threads=1)
    rng = np.random.default_rng(1)
    results = []
    for k in range(4):
        rgb, _ = scene(k * 0.2, 200, 150, 1, rng)
        r = pipe.process(rgb, frame_id=100 + k, timestamp_s=k * 0.2)
        results.append(r)
    r = results[-1]
    assert isinstance(r, VisionResult) and r.frame_id == 103
    assert set(r.phase) == set(PHASES) and set(r.region) == set(REGIONS)
    assert sum(r.phase.values()) == pytest.approx(1.0, abs=1e-4)
    assert r.label_map.shape == (32, 32) and r.label_map.max() < len(CLASSES)
    assert r.phase_name in PHASES and r.region_name in REGIONS
    for f in r.findings:
        assert 0 < f.area_fraction <= 1 and 0 <= f.confidence <= 1
        assert 0 <= f.centroid[0] <= 1 and 0 <= f.centroid[1] <= 1
        for p in f.polygons:
            assert p[:, 0].max() <= 200 and p[:, 1].max() <= 150
    assert set(r.timing_ms) == {"preprocess", "inference", "postprocess", "total"}
    pipe.reset()
    assert pipe.process(rgb).frame_id == 0
    with pytest.raises(VisionError):
        pipe.process(np.zeros((20, 20), np.uint8))


def test_vision_pipeline_worker_thread(tiny_model_dir) -> None:
    pipe = VisionPipeline.load(tiny_model_dir)
    rgb, _ = scene(0.0, 120, 90, 0, np.random.default_rng(2))
    out: list[VisionResult] = []
    t = threading.Thread(target=lambda: out.extend(pipe.process(rgb) for _ in range(3)))
    t.start()
    t.join(30)
    assert len(out) == 3 and [r.frame_id for r in out] == [0, 1, 2]


def test_vision_pipeline_bad_model_dir(tmp_path) -> None:
    with pytest.raises(VisionError, match="not found"):
        VisionPipeline.load(tmp_path / "missing")
    with pytest.raises(VisionError, match="not a model directory"):
        VisionPipeline.load(tmp_path)


def test_vision_result_aliases_and_frame_label_map(tiny_model_dir) -> None:
    pipe = VisionPipeline.load(tiny_model_dir)
    rgb, _ = scene(0.0, 200, 100, 1, np.random.default_rng(3))  # FOV ellipse, black corners
    framed = np.zeros((100, 300, 3), np.uint8)
    framed[:, 50:250] = rgb
    r = pipe.process(framed)
    assert r.structures is r.findings
    assert r.phase_names == PHASES and r.phase_probs.shape == (len(PHASES),)
    assert r.region_names == REGIONS and r.region_probs.argmax() == REGIONS.index(r.region_name)
    full = r.frame_label_map()
    b = r.fov_box
    assert b.x0 >= 40 and b.x1 <= 260
    # stretched over the frame, the padded map has the label map's scale
    sx, sy = b.width / 32, b.height / 32
    assert abs(full.shape[1] * sx - 300) <= sx and abs(full.shape[0] * sy - 100) <= sy
    x0, y0 = round(b.x0 / sx), round(b.y0 / sy)
    h = min(32, full.shape[0] - y0)
    np.testing.assert_array_equal(full[y0:y0 + h, x0:x0 + 32], r.label_map[:h])
    assert (full[:, : max(0, x0 - 1)] == 0).all()
