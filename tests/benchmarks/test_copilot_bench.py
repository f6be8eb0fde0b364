"""``copilot bench``: real runs on two fresh tiny feeds, report schema, plots, Ray == local;
plus the trace / session analysis on hand-made records (runtime-logic tests)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from benchmarks import copilot_bench as bench
from copilot.errors import CopilotError

#: Accuracy numbers that do not depend on thread timing (same frames, same audio).
DETERMINISTIC = ("segmentation_miou", "vision_phase_accuracy", "vision_bowel_segment_accuracy",
                 "cvs_macro_f1", "asr_command_accuracy", "asr_false_accepts_per_hour")


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from copilot.feeds import make_feed

    root = tmp_path_factory.mktemp("bench_feeds")
    return [
        make_feed(root / "chole", "cholecystectomy", seconds=6, seed=5711, size=(320, 240),
                  fps=15, events=["bleeding@3"]),
        make_feed(root / "bowel", "bowel-survey", seconds=8, seed=5712, size=(320, 240),
                  fps=15, events=["large_vessel@2"], route="upper"),
    ]


@pytest.fixture(scope="module")
def local_report(feeds: list[Path], tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[dict, Path, str]:
    app = typer.Typer()
    from copilot.cli_bench import register

    register(app)
    app.command("noop")(lambda: None)  # keep "bench" a sub-command
    out = tmp_path_factory.mktemp("bench_out")
    res = CliRunner().invoke(app, [
        "bench", *map(str, feeds), "--out", str(out), "--fast", "--workers", "0",
        "--vision-frames", "30", "--rounds", "1", "--no-progress",
    ])
    assert res.exit_code == 0, res.output
    return json.loads((out / "report.json").read_text()), out, res.output


@pytest.mark.slow
def test_bench_two_fresh_feeds_writes_the_three_outputs(local_report: tuple[dict, Path, str],
                                                        feeds: list[Path]) -> None:
    report, out, output = local_report
    assert "report.json" in output
    bench.validate_report(report)  # the documented schema
    assert "## Latency" in (out / "report.md").read_text()
    assert "## The copilot's voice per variant" in (out / "report.md").read_text()
    for name in ("latency_cdf", "stage_bars", "timeline"):
        path = out / report["plots"][name]
        assert path.stat().st_size > 5000
        img = np.asarray(Image.open(path).convert("L"))
        assert img.shape[0] > 200 and img.std() > 5, name  # something is drawn
    # real measurements of the real runs
    base = report["variants"][0]["key"]
    for f, feed in zip(report["feeds"], feeds, strict=True):
        truth = json.loads((feed / "truth.json").read_text())
        (run,) = f["runs"]
        assert run["ok"], run.get("error")
        assert run["voice_backend"] in ("piper", "espeak")  # the voice that spoke, recorded
        assert run["frames_out"] == run["frames_in"] == truth["n_frames"]  # fast: lossless
        assert run["latency"]["decode"]["n"] == truth["n_frames"]
        assert run["cpu_percent"] > 0 and run["peak_rss_mb"] > 100
        vis = f["components"]["vision"]["backends"]["onnxruntime"]
        assert vis["timing"]["inference"]["p50"] > 0
        assert vis["accuracy"]["anatomy_miou"] > 0.3
        asr = f["components"]["asr"]["backends"]["default"]  # the copilot's recogniser
        assert asr["commands"]["commands"] == sum(u["addressed"] for u in truth["utterances"])
        assert 0 < asr["rtf"] < 5
    lat = report["latency"][base]
    assert lat["overlay"]["p50"] <= lat["frame_to_overlay"]["p99"]
    assert {r["axis"] for r in report["ratios"]} >= {"loop", "backend"}


@pytest.mark.slow
def test_ray_gives_the_same_per_feed_accuracy(local_report: tuple[dict, Path, str],
                                              feeds: list[Path], tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="ray extra not installed")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        cfg = bench.BenchConfig(feeds=feeds[:1], out=tmp_path, mode="fast", ray="auto",
                                max_seconds=2.0,
                                vision_frames=30, decoder_rounds=1, loop_check=False,
                                progress=False)
        report = bench.run_bench(cfg)
    finally:
        ray.shutdown()
    bench.validate_report(report)
    assert report["executor"] == "ray:auto"
    assert all(f["pid"] != os.getpid() for f in report["feeds"])  # ran in Ray workers
    local = {r["feed"]: r for r in local_report[0]["accuracy"]["per_feed"]}
    for row in report["accuracy"]["per_feed"]:
        for key in DETERMINISTIC:
            assert row[key] == local[row["feed"]][key], (row["feed"], key)
        assert any(row[k] is not None for k in DETERMINISTIC)


def test_config_errors_are_one_line() -> None:
    with pytest.raises(CopilotError, match="unknown --backends tflite"):
        bench.parse_list("onnxruntime,tflite", bench.BACKENDS, "--backends")
    with pytest.raises(CopilotError, match="feed not found"):
        bench.BenchConfig(feeds=[Path("/nonexistent/feed")], out=Path("x")).check()
    cfg = bench.BenchConfig(feeds=[], out=Path("x"))
    with pytest.raises(CopilotError, match="at least one FEED"):
        cfg.check()


def test_variants_vary_one_axis_at_a_time() -> None:
    cfg = bench.BenchConfig(feeds=[], out=Path("x"), backends=["onnxruntime", "torch"],
                            decoders=["pyav", "decord", "opencv"], asr=["pocketsphinx"])
    keys = [v.key for v in cfg.variants()]
    assert keys == ["onnxruntime/pyav/pocketsphinx", "torch/pyav/pocketsphinx",
                    "onnxruntime/decord/pocketsphinx", "onnxruntime/opencv/pocketsphinx"]
    cfg = bench.BenchConfig(feeds=[], out=Path("x"), asr=["default", "pocketsphinx"],
                            voices=["default", "espeak"])
    assert [v.key for v in cfg.variants()] == [
        "onnxruntime/pyav/default", "onnxruntime/pyav/pocketsphinx",
        "onnxruntime/pyav/default/espeak"]
    with pytest.raises(CopilotError, match="unknown --voices robot"):
        bench.parse_list("default,robot", bench.VOICES, "--voices")


# ----------------------------------------------------------------------------- analysis logic
def _span(stage: str, name: str, tid: str, t0_ms: float, t1_ms: float, **kw: object) -> dict:
    return {"stage": stage, "name": name, "trace_id": tid, "t0_ns": int(t0_ms * 1e6),
            "t1_ns": int(t1_ms * 1e6), "dur_ms": t1_ms - t0_ms, **kw}


TRUTH = {
    "fps": 10.0, "n_frames": 100, "duration_s": 10.0, "scenario": "cholecystectomy",
    "phase_names": ["Preparation", "CalotTriangleDissection"], "regions": ["abdominal_cavity"],
    "frame_labels": {"phase": [0] * 50 + [1] * 50, "region": [0] * 100},
    "events": [
        {"kind": "bleeding_onset", "time_s": 2.0, "frame": 20},
        {"kind": "clip_applied", "time_s": 4.0, "frame": 40, "cvs_reached": False},
        {"kind": "clip_applied", "time_s": 4.2, "frame": 42, "cvs_reached": False},
        {"kind": "clip_applied", "time_s": 7.0, "frame": 70, "cvs_reached": True},
        {"kind": "cautery", "time_s": 1.0, "frame": 10},
    ],
    "utterances": [
        {"start_s": 5.0, "end_s": 6.0, "addressed": True, "text": "copilot, what phase are we in?",
         "intent": "current_phase", "slots": {}, "expected_facts": ["CalotTriangleDissection"]},
        {"start_s": 8.0, "end_s": 9.0, "addressed": False, "text": "chatter", "intent": None,
         "slots": None, "expected_facts": []},
    ],
}


def test_scripted_events_group_clips_and_skip_natural_events() -> None:
    evs = bench.scripted_events(TRUTH)
    assert [(e["kind"], e["time_s"]) for e in evs] == [("bleeding_onset", 2.0),
                                                       ("clip_applied", 4.0)]


def test_trace_latencies_join_on_one_clock() -> None:
    trace = [
        _span("decode", "frame", "f20", 2000, 2005, frame_id=20),
        _span("overlay", "compose", "f20", 2005, 2007, frame_id=20),
        _span("alert", "raise", "a1", 2105, 2105, rule="bleeding", media_t_s=2.1, frame_id=21),
        _span("tts", "first_audio", "a1", 2150, 2150),
        _span("speech", "utterance", "u1", 5000, 6000, accepted=True),
        _span("brain", "answer", "u1", 6010, 6020),
        _span("tts", "first_audio", "u1", 6300, 6300),
    ]
    s, detail = bench.trace_latencies(trace, TRUTH)
    assert s["decode"] == [5] and s["overlay"] == [2]
    assert s["event_to_alert"] == [100] and s["event_to_alert_audio"] == [145]
    assert s["speech_end_to_answer_audio"] == [300]
    assert sorted(s["tts_first_audio"]) == [45, 280]
    assert detail["alert_matches"] == 1


def test_answer_latency_starts_at_the_last_spoken_sample() -> None:
    """Issue 20: the utterance is closed 300 ms after its last spoken sample (the VAD's
    end-of-speech wait); the answer latency includes that wait and the wait is reported."""
    trace = [  # the audio clock: media 0 s = 1000 ms on the trace clock
        _span("speech", "utterance", "u1", 6000, 7300, accepted=True, start_s=5.0,
              end_s=6.3),
        _span("speech", "final", "u1", 7300, 7350),
        _span("brain", "answer", "u1", 7360, 7370),
        _span("tts", "first_audio", "u1", 7400, 7400),
    ]
    s, _ = bench.trace_latencies(trace, TRUTH)  # truth: the command's voice ends at 6.0 s
    assert s["end_of_speech_wait"] == [pytest.approx(300)]
    assert s["vad_end_to_answer_audio"] == [pytest.approx(100)]
    assert s["speech_end_to_answer_audio"] == [pytest.approx(400)]
    assert s["last_sample_to_transcript"] == [pytest.approx(350)]
    s2, _ = bench.trace_latencies(trace, None)  # no truth: only from the VAD's close
    assert s2["speech_end_to_answer_audio"] == [pytest.approx(100)]
    assert "end_of_speech_wait" not in s2


def test_session_accuracy_against_truth() -> None:
    session = [
        {"type": "obs", "kind": "phase", "name": "Preparation", "frame_id": 10, "t_s": 1.0},
        {"type": "obs", "kind": "phase", "name": "Preparation", "frame_id": 60, "t_s": 6.0},
        {"type": "alert", "rule": "bleeding", "media_t_s": 2.3, "text": "Bleeding"},
        {"type": "alert", "rule": "bleeding", "media_t_s": 9.5, "text": "Bleeding again"},
        {"type": "transcript", "text": "copilot what phase are we in", "start_s": 5.1,
         "end_s": 5.9},
        {"type": "answer", "question": "what phase are we in", "media_t_s": 6.2,
         "text": "We are in the Calot triangle dissection phase."},
    ]
    acc = bench.session_accuracy(session, TRUTH)
    assert acc["phase_accuracy"] == 0.5
    assert acc["alerts"]["recall"] == 0.5 and acc["alerts"]["precision"] == 0.5
    assert acc["alerts"]["missed"] == ["clip_applied@4.0"]
    assert acc["alerts"]["media_latency_s"]["p50"] == pytest.approx(300, abs=1e-6)
    assert acc["answers"]["accuracy"] == 1.0
    assert acc["commands"]["commands"] == 1 and acc["commands"]["false_accepts"] == 0
    assert acc["commands"]["accuracy"] == 1.0  # parsed by the shared catalogue
    assert acc["chatter_triggered"] == 0


def test_command_accuracy_counts_false_accepts_per_hour() -> None:
    cmds = [{"start_s": 8.2, "end_s": 8.8, "intent": "bookmark", "slots": {}}]
    acc = bench.command_accuracy(TRUTH["utterances"], cmds, 3600.0)
    assert acc["accuracy"] == 0.0 and acc["false_accepts"] == 1
    assert acc["false_accepts_per_hour"] == 1.0


def test_stats_and_ratios() -> None:
    s = bench.stats_ms(range(1, 101))
    assert s["n"] == 100 and s["min"] == 1 and s["max"] == 100 and 98 < s["p99"] <= 100
    assert bench.stats_ms([]) is None
    assert bench.median_ratio([2, 4, 9], [1, 2, 3]) == 2.0


def test_cli_bad_input_is_one_line_exit_2() -> None:
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "copilot.cli", "bench", "/nonexistent/feed"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip() == "error: feed not found: /nonexistent/feed"


def test_missing_backend_is_reported_not_replaced() -> None:
    try:
        import tensorrt  # noqa: F401

        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    why = bench.backend_unavailable("tensorrt")
    assert why and "tensorrt" in why  # no silent fallback to ONNX Runtime under its name
    assert bench.backend_unavailable("onnxruntime") is None
