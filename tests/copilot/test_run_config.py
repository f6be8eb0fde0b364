"""copilot.run_config: SOURCE and --out resolved to paths, the configuration's checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copilot.errors import CopilotError
from copilot.run_config import RunConfig, jsonable, resolve_out, resolve_source


def test_a_feed_folder_gives_its_video_audio_truth_and_scenario(tmp_path: Path):
    feed = tmp_path / "feed"
    feed.mkdir()
    with pytest.raises(CopilotError, match="without video.mp4"):
        resolve_source(str(feed))
    (feed / "video.mp4").write_bytes(b"")
    (feed / "audio.wav").write_bytes(b"")
    (feed / "truth.json").write_text(json.dumps({"scenario": "cholecystectomy"}))
    src = resolve_source(str(feed))
    assert src.video == str(feed / "video.mp4") and src.audio == feed / "audio.wav"
    assert src.truth == feed / "truth.json" and src.scenario == "cholecystectomy"
    assert not src.live
    (feed / "truth.json").write_text("{not json")
    with pytest.raises(CopilotError, match="not readable JSON"):
        resolve_source(str(feed))


def test_cameras_and_streams_are_live_and_missing_files_are_errors(tmp_path: Path):
    cam = resolve_source("0")
    assert cam.video == 0 and cam.live
    assert resolve_source("rtsp://host/stream").live
    with pytest.raises(CopilotError, match="source not found"):
        resolve_source(str(tmp_path / "none.mp4"))
    with pytest.raises(CopilotError, match="audio file not found"):
        resolve_source(str(tmp_path), audio=tmp_path / "none.wav")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    assert resolve_source(f"file://{clip}").video == str(clip)


def test_out_is_a_folder_or_an_mp4(tmp_path: Path):
    assert resolve_out(None) == (None, None)
    assert resolve_out(tmp_path / "a" / "x.mp4") == (None, tmp_path / "a" / "x.mp4")
    assert (tmp_path / "a").is_dir()
    assert resolve_out(tmp_path / "run") == (tmp_path / "run", tmp_path / "run" / "annotated.mp4")
    (tmp_path / "file").write_text("")
    with pytest.raises(CopilotError, match="not a folder"):
        resolve_out(tmp_path / "file")


@pytest.mark.parametrize("kw, msg", [
    ({"mode": "slow"}, "unknown mode"), ({"speed": float("nan")}, "--speed"),
    ({"runtime": "tflite"}, "unknown --runtime"), ({"vision": "x"}, "unknown --vision"),
    ({"speech": "x"}, "unknown --speech"), ({"max_seconds": 0}, "--max-seconds"),
    ({"analyse_every": -1}, "--analyse-every"), ({"cvs": "x"}, "unknown --cvs"),
    ({"taught": Path("/nonexistent/t.npz")}, "--taught file not found"),
])
def test_check_names_the_bad_option(kw: dict, msg: str):
    with pytest.raises(CopilotError, match=msg):
        RunConfig(source="x", **kw).check()
    RunConfig(source="x").check()  # the defaults are consistent


def test_jsonable_keeps_plain_values_and_paths_as_text():
    got = jsonable({"a": Path("/x"), "b": 1, "c": None, "d": [Path("/y"), 2], "e": object()})
    assert got == {"a": "/x", "b": 1, "c": None, "d": ["/y", "2"]}
