"""``copilot train`` / ``copilot export`` on tiny feeds, through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner
from vision_fixtures import write_feed

from copilot.cli_vision import register
from vision import modelio
from vision.pipeline import VisionPipeline


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()
    register(a)
    return a


def test_vision_cli_train_and_export(app: typer.Typer, tmp_path: Path) -> None:
    for seed in (1, 2):
        write_feed(tmp_path / "train" / f"c{seed}", seed, n_frames=16)
    write_feed(tmp_path / "train" / "b1", 3, n_frames=16, scenario="bowel-survey")
    write_feed(tmp_path / "val" / "c9", 9, n_frames=16)
    out = tmp_path / "model"
    res = CliRunner().invoke(app, [
        "train", "--feeds", str(tmp_path / "train"), "--val-feeds", str(tmp_path / "val"),
        "--out", str(out), "--steps", "6", "--batch-size", "4", "--size", "64",
        "--every", "2", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "val phase_acc" in res.output
    for name in (modelio.CONFIG, modelio.WEIGHTS, modelio.ONNX, modelio.TEMPORAL,
                 modelio.REGION_TEMPORAL, modelio.METRICS, modelio.CARD):
        assert (out / name).is_file(), name
    metrics = json.loads((out / modelio.METRICS).read_text())
    assert metrics["train_steps"] == 6 and metrics["val_frames"] == 8
    assert 0 <= metrics["val"]["phase_acc"] <= 1
    card = (out / modelio.CARD).read_text()
    assert "synthetic" in card and "seed 9" in card
    (out / modelio.ONNX).unlink()
    res = CliRunner().invoke(app, ["export", str(out), "--format", "onnx"])
    assert res.exit_code == 0, res.output
    assert "verified" in res.output and (out / modelio.ONNX).is_file()
    r = VisionPipeline.load(out).process(np.full((60, 80, 3), 90, np.uint8))
    assert r.label_map.shape == (32, 32)
    # fine-tune from the model just written: keeps its architecture and input size
    res = CliRunner().invoke(app, [
        "train", "--feeds", str(tmp_path / "train"), "--val-feeds", str(tmp_path / "val"),
        "--out", str(tmp_path / "tuned"), "--steps", "2", "--batch-size", "2", "--size", "128",
        "--init", str(out), "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert modelio.load_config(tmp_path / "tuned").input_size == (64, 64)
    card_info = json.loads((tmp_path / "tuned" / modelio.METRICS).read_text())["card_info"]
    assert card_info["init_from"] == str(out)
    # refit both causal filters from truth.json and re-validate
    from vision.train import refit_temporal

    m = refit_temporal(out, [tmp_path / "train"], [tmp_path / "val"])
    assert m["temporal"]["fitted_on"] == "train truth.json" and "phase_acc" in m["val"]
    pipe = VisionPipeline.load(out)
    assert pipe.region_filter is not None
    r1 = pipe.process(np.full((60, 80, 3), 90, np.uint8), timestamp_s=0.0)
    assert set(r1.region_frame) == set(r1.region)


@pytest.mark.skipif(not Path("copilot/cli.py").is_file(), reason="copilot CLI not present")
def test_vision_cli_errors_are_one_line(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "copilot.cli", "export", str(tmp_path / "missing"),
           "--format", "onnx"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().startswith("error: model directory not found")
    assert "Traceback" not in p.stderr


@pytest.mark.skipif(not __import__("vision.backbone", fromlist=["x"]).DEEPLAB_VOC.is_file(),
                    reason="../shared pretrained weights missing")
@pytest.mark.parametrize("recipe", [[], ["--full-finetune"]], ids=["cached", "full"])
def test_vision_cli_train_on_endoscapes_layout(app: typer.Typer, tmp_path: Path,
                                                recipe: list[str]) -> None:
    """copilot train --endoscapes on a tiny seg201-layout fixture (6 patients) + feeds, with
    the shipped recipe (cached features) and the full fine-tune (one batch loss for both)."""
    import cv2
    from vision_fixtures import scene

    from vision.offlabel import OFFLABEL

    root = tmp_path / "endo"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    index = {}
    for k in range(12):
        stem = f"{k % 6 + 1}_{100 * (k + 1)}"
        cv2.imwrite(str(root / "images" / f"{stem}.jpg"), scene(k, 96, 64, k, rng)[0])
        sem = np.zeros((64, 96), np.uint8)
        sem[20:40, 20:50] = 5
        sem[40:44, 30:60] = 4 if k % 2 else 3
        sem[5:15, 70:90] = 6
        cv2.imwrite(str(root / "masks" / f"{stem}.png"), sem)
        index[stem] = {"file_name": f"{stem}.jpg", "folders": ["semseg", "train"],
                       "annotations": [{"ds": [float(k % 2), float(k % 3 == 0), 0.0]}]}
    (root / "matches.json").write_text(json.dumps(index))
    write_feed(tmp_path / "feeds" / "c1", 1, n_frames=8)
    write_feed(tmp_path / "vfeeds" / "c9", 9, n_frames=8)
    out = tmp_path / "real_model"
    res = CliRunner().invoke(app, [
        "train", "--endoscapes", str(root), "--feeds", str(tmp_path / "feeds"),
        "--val-feeds", str(tmp_path / "vfeeds"), "--out", str(out), "--input", "64x64",
        "--epochs", "2", "--minutes", "1", "--threads", "1", *recipe])
    assert res.exit_code == 0, res.output
    assert "held-out train patients" in res.output
    for name in (modelio.CONFIG, modelio.WEIGHTS, modelio.ONNX, OFFLABEL, modelio.CARD):
        assert (out / name).is_file(), name
    pipe = VisionPipeline.load(out, threads=1)
    r = pipe.process(scene(0, 96, 64, 0, rng)[0])
    assert 0 <= r.in_domain <= 1 and len(r.cvs) == 3
    assert "Endoscapes" in pipe.validated_on and pipe.cvs_claim_allowed is False
