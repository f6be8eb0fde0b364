"""End-to-end runs of ``copilot run`` on MP4 files the tests make (real decode and encode)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from copilot.app import RunConfig, run_copilot
from copilot.tracing import read_trace
from vision.writer import write_test_clip

COPILOT = [sys.executable, "-m", "copilot.cli"]


def probe(path: Path) -> tuple[int, float, int, int]:
    """(decoded frame count, fps, width, height) of an MP4."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return n, float(s.average_rate), s.codec_context.width, s.codec_context.height


def cli(*args: str, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*COPILOT, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_test_clip(tmp_path_factory.mktemp("run") / "clip.mp4", seconds=3.0, fps=30,
                           size=(320, 240), seed=11)


def test_run_fast_writes_every_frame_same_size_and_fps(clip, tmp_path):
    out = tmp_path / "out.mp4"
    r = cli("run", str(clip), "--fast", "--out", str(out), "--trace", str(tmp_path / "t.jsonl"))
    assert r.returncode == 0, r.stderr
    assert probe(out) == (90, 30.0, 320, 240)
    assert "frames: 90 in, 90 out, 0 dropped" in r.stdout
    spans = read_trace(tmp_path / "t.jsonl")
    names = {f"{s['stage']}.{s['name']}" for s in spans}
    assert {"decode.frame", "overlay.compose", "sink.write", "vision.process"} <= names
    # one clock: every frame's overlay span starts after its decode span ends
    dec = {s["frame_id"]: s for s in spans if s["name"] == "frame" and s["stage"] == "decode"}
    for s in spans:
        if s["stage"] == "overlay":
            assert s["t0_ns"] >= dec[s["frame_id"]]["t1_ns"]


def test_passthrough_draws_only_the_status_line(clip, tmp_path):
    out = tmp_path / "pass.mp4"
    # a coloured test pattern is not the inside of a patient: shown only with anonymising off
    res = run_copilot(RunConfig(source=str(clip), out=out, vision="none", anonymise=False))
    assert res.exit_code == 0 and res.frames_out == 90
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        fa = next(a.decode(video=0)).to_ndarray(format="rgb24").astype(int)
        fb = next(b.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    bar = 240 - 30
    assert np.abs(fa[:bar] - fb[:bar]).mean() < 3  # the picture is untouched above the bar
    assert np.abs(fa[bar:] - fb[bar:]).mean() > 20  # the status line is drawn


@pytest.mark.parametrize("fault", ["vision:hang", "vision:raise", "vision:slow"])
def test_faulty_analysis_stage_never_costs_a_frame(clip, tmp_path, fault):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("hang_s: 0.3\nvision: heuristic\n")
    out = tmp_path / "f.mp4"
    r = cli("run", str(clip), "--fast", "--out", str(out), "--config", str(cfg),
            "--inject-fault", f"{fault}:0.1")
    assert r.returncode == 0, r.stderr
    assert probe(out)[0] == 90
    assert "Traceback" not in r.stderr
    if fault == "vision:raise":
        assert "stage vision" in r.stdout  # the summary names the unhealthy stage


def test_hung_stage_is_marked_and_the_picture_keeps_flowing(tmp_path):
    clip = write_test_clip(tmp_path / "long.mp4", seconds=4.0, fps=30, size=(160, 120))
    res = run_copilot(RunConfig(source=str(clip), out=tmp_path / "o.mp4", vision="heuristic",
                                mode="realtime", speed=4.0, hang_s=0.3,
                                faults=["vision:hang:0.2"]))
    assert res.exit_code == 0 and res.frames_in == 120
    h = res.health["vision"]
    assert h["hangs"] >= 1 and h["state"] == "hung"


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("missing", lambda d: d / "missing.mp4"),
        ("zero", lambda d: (d / "zero.mp4").write_bytes(b"") or d / "zero.mp4"),
        ("random", lambda d: (d / "random.mp4").write_bytes(np.random.default_rng(2).bytes(60_000))
         or d / "random.mp4"),
        ("url", lambda d: "http://127.0.0.1:9/feed.mp4"),
    ],
)
def test_bad_sources_one_line_exit_2(tmp_path, name, make):
    r = cli("run", str(make(tmp_path)), "--fast", "--out", str(tmp_path / "o.mp4"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_truncated_file_writes_decodable_frames_and_exits_2(tmp_path):
    long = write_test_clip(tmp_path / "long.mp4", seconds=4.0, fps=30, size=(320, 240))
    data = long.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "o.mp4"
    r = cli("run", str(cut), "--fast", "--out", str(out), "--vision", "none")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cut or corrupt" in lines[0], r.stderr
    n = probe(out)[0]
    assert 10 < n < 120 and f"wrote the {n} decodable frames" in lines[0]


def test_bad_options_exit_2(clip, tmp_path):
    for args in (["--inject-fault", "vision:explode"], ["--inject-fault", "nosuch:raise"],
                 ["--vision", "magic"], ["--decoder", "vlc"]):
        r = cli("run", str(clip), "--out", str(tmp_path / "x.mp4"), *args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("vision: [unclosed\n")
    r = cli("run", str(clip), "--config", str(bad))
    assert r.returncode == 2 and "bad.yaml line" in r.stderr


def test_unknown_command_or_option_is_a_usage_error_not_a_traceback(tmp_path):
    for args in (["speech", "transcribe", "x.wav"], ["transcribe", "x.wav", "--bogus"]):
        r = cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()  # one line (issue 20), not click's four
        assert len(lines) == 1 and lines[0].startswith("error: No such"), r.stderr


def test_run_with_an_unknown_denoiser_exits_2(clip, tmp_path):
    r = cli("run", str(clip), "--out", str(tmp_path / "x.mp4"), "--speech", "on",
            "--audio", str(clip), "--denoiser", str(tmp_path / "none"))
    assert r.returncode == 2, r.stderr
    assert "unknown denoiser" in r.stderr and "Traceback" not in r.stderr


def test_realtime_paces_at_source_fps(clip, tmp_path):
    from copilot.app import Copilot

    t0 = time.perf_counter()
    app = Copilot(RunConfig(source=str(clip), out=tmp_path / "rt.mp4", mode="realtime",
                            vision="heuristic", max_seconds=1.5, trace=tmp_path / "t.jsonl"))
    res = app.run()
    wall = time.perf_counter() - t0
    assert res.exit_code == 0
    assert res.frames_in == 45
    assert wall >= 1.4  # paced, not as fast as possible
    assert res.frames_out + res.dropped == res.frames_in
    # read on the run's own clock (its trace), so a stall of a loaded machine only delays:
    spans = read_trace(tmp_path / "t.jsonl")
    dec = sorted((s for s in spans if (s["stage"], s["name"]) == ("decode", "frame")),
                 key=lambda s: s["frame_id"])
    assert len(dec) == 45
    # paced: no frame is released before its media time after the first frame was decoded
    # (released = decoded + paced_ms; media_t_s is rounded to 0.1 ms)
    t_dec0, media0 = dec[0]["t1_ns"], dec[0]["media_t_s"]
    early_ms = [(s["media_t_s"] - media0) * 1e3 - (s["t1_ns"] - t_dec0) / 1e6 - s["paced_ms"]
                for s in dec]
    assert max(early_ms) <= 0.2, max(early_ms)
    # the status line's fps: frames out over the last 2 s (window) on the run's clock (less
    # what a loaded machine dropped), never the inflated mean of 1/interval
    outs = [s["t1_ns"] for s in spans if (s["stage"], s["name"]) == ("video", "frame_to_overlay")]
    assert len(outs) == res.frames_out
    window = [t for t in outs if outs[-1] - t <= app.meter.window_s * 1e9]
    counted = (len(window) - 1) / ((outs[-1] - window[0]) / 1e9)
    fps = app.status().fps
    assert fps == pytest.approx(counted, rel=1e-9), (fps, counted)


def test_help_on_every_command():
    for cmd in ([], ["run"], ["demo"], ["feed", "make"]):
        r = cli(*cmd, "--help")
        assert r.returncode == 0 and "Usage" in r.stdout


def test_alerts_carry_an_evidence_thumbnail_and_are_spoken(tmp_path):
    """A plain feed with a large vessel: the model alerts, the alert's session line carries a JPEG
    thumbnail of the analysed frame (kept in the analysis worker), the report shows it, and
    the voice says it although nothing is listening (--speech off)."""
    import base64
    import json

    import cv2

    from copilot.feeds import make_feed

    feed = make_feed(tmp_path / "feed", "cholecystectomy", 4.0, 5321, size=(320, 240), fps=10.0,
                     events=["large_vessel@1.0"], audio=False)
    out = tmp_path / "run"
    res = run_copilot(RunConfig(source=str(feed), out=out, vision="model", speech="off"))
    assert res.exit_code == 0 and res.frames_out == 40
    recs = [json.loads(x) for x in (out / "session.jsonl").read_text().splitlines()]
    alerts = [r for r in recs if r["type"] == "alert"]
    assert any(a.get("rule") == "large_vessel" for a in alerts), alerts
    thumbs = [a["thumbnail"] for a in alerts if a.get("thumbnail")]
    assert thumbs, alerts
    th = thumbs[0]
    raw = base64.b64decode(th["jpeg_b64"])
    img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[1] == 192
    assert "class='thumb'" in (out / "report.html").read_text()
    speech, rate = __import__("soundfile").read(str(out / "copilot_speech.wav"))
    assert rate == 16000 and np.abs(speech).max() > 0.05  # the alert was spoken


def test_second_run_into_the_same_folder_starts_a_fresh_session(clip, tmp_path):
    """The earlier run's session.jsonl is set aside (renamed, not lost), so the new report and
    any benchmark reading the folder see one session, not two appended."""
    import json

    out = tmp_path / "run"
    for _ in range(2):
        res = run_copilot(RunConfig(source=str(clip), out=out, vision="none", speech="off"))
        assert res.exit_code == 0
    starts = [r for r in map(json.loads, (out / "session.jsonl").read_text().splitlines())
              if r["type"] == "start"]
    assert len(starts) == 1
    old = sorted(out.glob("session.*.jsonl"))
    assert len(old) == 1 and '"type":"start"' in old[0].read_text()
