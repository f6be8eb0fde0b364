"""The shipped default model: present, small, documented, and runs on a real feed frame."""

from __future__ import annotations

import json

import numpy as np
from vision_fixtures import scene

from vision import modelio
from vision.labels import CLASSES, PHASES, REGIONS
from vision.offlabel import OFFLABEL
from vision.pipeline import VisionPipeline
from vision.probes import generated_probes

D = modelio.DEFAULT_MODEL_DIR


def test_vision_default_model_files_and_size() -> None:
    for name in (modelio.CONFIG, modelio.WEIGHTS, modelio.ONNX, modelio.TEMPORAL,
                 modelio.METRICS, modelio.CARD, OFFLABEL):
        assert (D / name).is_file(), name
    total = sum(p.stat().st_size for p in D.iterdir() if p.is_file())
    assert total <= 25 * 1024 * 1024
    cfg = modelio.load_config(D)
    assert tuple(cfg.classes) == CLASSES and tuple(cfg.phases) == PHASES
    assert tuple(cfg.regions) == REGIONS and cfg.arch == "mnv2"
    extra = cfg.extra
    assert 0 < extra["in_domain_threshold"] < 1 and "Endoscapes" in extra["validated_on"]
    cvs = extra["cvs_validation"]
    assert isinstance(cvs["claim_allowed"], bool)
    if "per_criterion" in cvs:  # written by benchmarks.bench_vision_real --update-model
        ok = all(v["balanced_accuracy"] >= 0.80 for v in cvs["per_criterion"].values())
        assert cvs["claim_allowed"] == ok
    card = (D / modelio.CARD).read_text()
    assert "non-commercial research use" in card and "CC BY-NC-SA 4.0" in card
    assert "(x - 128) / 128" in card and "Retraining" in card
    metrics = json.loads((D / modelio.METRICS).read_text())
    assert metrics["train"]["best_dev_miou"] > 0


def test_vision_default_model_loads_and_runs() -> None:
    pipe = VisionPipeline.load(None)  # None = the shipped default
    assert pipe.runtime.model_dir == D and pipe.offlabel is not None
    w, h = pipe.input_size
    rgb, _ = scene(0.0, 320, 240, 1, np.random.default_rng(0))
    r = pipe.process(rgb, frame_id=7, timestamp_s=0.0)
    assert r.frame_id == 7 and r.label_map.shape == (h // 2, w // 2)
    assert abs(sum(r.phase.values()) - 1) < 1e-4
    assert r.laparoscopic == (r.region_name == "abdominal_cavity")
    assert 0.0 <= r.in_domain <= 1.0 and r.off_label == (r.in_domain < pipe.in_domain_threshold)
    pipe.reset()
    blank = pipe.process(generated_probes(320, 240)["colour_bars"])
    assert blank.off_label and blank.in_domain < 0.5
