"""``copilot segment``: images, a folder, a video (--every), a broken file -> exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner
from vision_fixtures import scene

from copilot.cli_vision import register
from vision.labels import INSTRUMENT_CLASSES


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()
    register(a)
    return a


def _write_video(path: Path, n: int, w: int = 96, h: int = 64) -> None:
    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            rgb = scene(i / 10, w, h, i % 2, rng)[0]
            for p in s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_vision_segment_images_video_and_broken(app, tiny_model_dir, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for k, (w, h) in enumerate([(120, 80), (90, 70)]):
        cv2.imwrite(str(imgs / f"f{k}.png"), scene(k, w, h, k, rng)[0][..., ::-1])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    video = tmp_path / "clip.mp4"
    _write_video(video, 7)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["segment", str(imgs), str(broken), str(video), "--out",
                                   str(out), "--every", "3", "--model", str(tiny_model_dir),
                                   "--threads", "1"])
    assert res.exit_code == 2, res.output
    assert res.output.count("error:") == 1 and "broken.jpg" in res.output
    labels = json.loads((out / "labels.json").read_text())
    cls = labels["classes"]
    assert cls["0"] == "background"
    assert sorted(cls[str(i)] for i in labels["instrument_ids"]) == sorted(
        c for c in INSTRUMENT_CLASSES if c in cls.values())
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    stems = [r["image"] for r in lines]
    assert stems == ["f0", "f1", "clip_000000", "clip_000003", "clip_000006"]
    for r in lines:
        m = cv2.imread(str(out / f"{r['image']}.png"), cv2.IMREAD_UNCHANGED)
        assert m.dtype == np.uint8 and m.max() < len(cls)
        assert len(r["cvs"]) == 3 and all(0 <= p <= 1 for p in r["cvs"])
        assert 0 <= r["in_domain"] <= 1 and isinstance(r["off_label"], bool)
        assert isinstance(r["phase"], str) and set(r["tools"]) >= {"Grasper", "Hook"}
    assert cv2.imread(str(out / "f0.png"), cv2.IMREAD_UNCHANGED).shape == (80, 120)
    assert cv2.imread(str(out / "f1.png"), cv2.IMREAD_UNCHANGED).shape == (70, 90)
    assert cv2.imread(str(out / "clip_000003.png"), cv2.IMREAD_UNCHANGED).shape == (64, 96)


def test_vision_segment_all_good_exits_zero(app, tiny_model_dir, tmp_path: Path) -> None:
    p = tmp_path / "a.jpg"
    cv2.imwrite(str(p), scene(0, 64, 48, 0, np.random.default_rng(0))[0])
    res = CliRunner().invoke(app, ["segment", str(p), "--out", str(tmp_path / "o"),
                                   "--model", str(tiny_model_dir), "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "wrote 1 label maps" in res.output
