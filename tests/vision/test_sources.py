"""Real decode of MP4 files the tests make, through every file backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vision.errors import VisionError
from vision.sources import FILE_BACKENDS, open_source
from vision.writer import Mp4Writer, write_test_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_test_clip(tmp_path_factory.mktemp("src") / "clip.mp4", seconds=2.0, fps=25,
                           size=(320, 240), seed=3)


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory, clip) -> Path:
    p = tmp_path_factory.mktemp("cut") / "cut.mp4"
    long = write_test_clip(p.with_name("long.mp4"), seconds=4.0, fps=30, size=(320, 240))
    data = long.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


@pytest.mark.parametrize("backend", FILE_BACKENDS)
def test_every_backend_decodes_every_frame_in_order(clip, backend):
    with open_source(clip, backend) as src:
        info = src.info
        frames = list(src)
    assert (info.width, info.height, info.fps) == (320, 240, 25.0)
    assert len(frames) == 50 and src.truncated is None
    ids = [i for i, _, _ in frames]
    times = [t for _, t, _ in frames]
    assert ids == list(range(50))
    assert np.allclose(times, np.arange(50) / 25, atol=1e-3)
    img = frames[10][2]
    assert img.shape == (240, 320, 3) and img.dtype == np.uint8
    assert 60 < img.mean() < 220  # real picture content, not zeros


def test_backends_agree_on_pixels(clip):
    first = {}
    for b in FILE_BACKENDS:
        with open_source(clip, b) as src:
            first[b] = next(iter(src))[2].astype(np.int16)
    # different colour conversion code paths: allow small differences only
    assert np.abs(first["pyav"] - first["opencv"]).mean() < 3
    assert np.abs(first["pyav"] - first["decord"]).mean() < 3


def test_cut_file_keeps_its_decodable_frames(cut_clip):
    with open_source(cut_clip, "pyav") as src:
        n = sum(1 for _ in src)
    assert 10 < n < 120
    assert src.truncated and "cut or corrupt" in src.truncated


def test_writer_round_trip_odd_size(tmp_path):
    p = tmp_path / "odd.mp4"
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (81, 121, 3), dtype=np.uint8) for _ in range(5)]
    with Mp4Writer(p, 10, (121, 81)) as w:
        for f in frames:
            w.write(f)
    with open_source(p) as src:
        out = list(src)
    assert len(out) == 5 and out[0][2].shape == (81, 121, 3)
    assert not list(tmp_path.glob("*.part*"))  # written atomically


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.mp4", "not found"),
        (lambda d: (d / "zero.mp4").write_bytes(b"") or d / "zero.mp4", "empty"),
        (lambda d: (d / "rand.mp4").write_bytes(np.random.default_rng(1).bytes(50_000))
         or d / "rand.mp4", "cannot open"),
        (lambda d: d, "folder"),
    ],
)
def test_bad_files_raise_one_line_errors(tmp_path, make, message):
    with pytest.raises(VisionError) as err:
        open_source(make(tmp_path))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unreachable_url_fails_fast():
    with pytest.raises(VisionError, match="cannot open"):
        open_source("rtsp://127.0.0.1:9/none", timeout_s=2.0)
