"""The shipped default model: present, small, documented, and runs on a real feed frame."""

from __future__ import annotations

import json

import numpy as np
from vision_fixtures import scene

from vision import modelio
from vision.labels import CLASSES, PHASES, REGIONS
from vision.pipeline import VisionPipeline

D = modelio.DEFAULT_MODEL_DIR


def test_vision_default_model_files_and_size() -> None:
    for name in (modelio.CONFIG, modelio.WEIGHTS, modelio.ONNX, modelio.TEMPORAL,
                 modelio.METRICS, modelio.CARD):
        assert (D / name).is_file(), name
    total = sum(p.stat().st_size for p in D.iterdir() if p.is_file())
    assert total <= 25 * 1024 * 1024
    cfg = modelio.load_config(D)
    assert tuple(cfg.classes) == CLASSES and tuple(cfg.phases) == PHASES
    assert tuple(cfg.regions) == REGIONS and tuple(cfg.input_size) == (256, 256)
    card = (D / modelio.CARD).read_text()
    assert "synthetic scenes only" in card and "Training on real data" in card
    metrics = json.loads((D / modelio.METRICS).read_text())
    assert metrics["val"]["anatomy_miou"] is not None


def test_vision_default_model_loads_and_runs() -> None:
    pipe = VisionPipeline.load(None)  # None = the shipped default
    assert pipe.runtime.model_dir == D and pipe.input_size == (256, 256)
    rgb, _ = scene(0.0, 320, 240, 1, np.random.default_rng(0))
    r = pipe.process(rgb, frame_id=7, timestamp_s=0.0)
    assert r.frame_id == 7 and r.label_map.shape == (128, 128)
    assert abs(sum(r.phase.values()) - 1) < 1e-4
    assert r.laparoscopic == (r.region_name == "abdominal_cavity")
