"""Issue 20: every bad input is one ``error:`` line and exit 2; no silent vision fallback.

Bad inputs: an impossible port, NaN / negative / out-of-range question times, unknown or
unavailable runtimes, a model folder that does not exist, usage errors (click's four lines
are one). The vision backend that actually runs, and why, is in the session start record,
the status line, the report and the run summary; an explicit model or runtime that cannot
load is an error, not a silent heuristic run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.conftest import assert_clean_error, start_record


@pytest.mark.parametrize("args,must", [
    (("ui", "--port", "99999"), "--port 99999"),
    (("ui", "--port", "-1"), "--port -1"),
    (("ui", "--speed", "nan"), "--speed"),
    (("ask", "--at", "nan", "what phase are we in"), "--at nan"),
    (("ask", "--at", "-3", "what phase are we in"), "--at -3"),
    (("ask", "--at", "inf", "what phase are we in"), "--at inf"),
    (("run",), "Missing argument"),
    (("run", "x.mp4", "--no-such-option"), "No such option"),
    (("ask",), "Missing argument"),
    (("no-such-command",), "No such command"),
    (("run", "x.mp4", "--speed", "abc"), "--speed"),
])
def test_bad_input_is_one_error_line(run_main, args, must):
    assert_clean_error(run_main(*args), must)


def test_question_time_after_the_session_is_an_error(tmp_path, run_main):
    s = tmp_path / "s.jsonl"
    s.write_text(json.dumps({"type": "observation", "t_s": 12.0, "frame_id": 300,
                             "kind": "phase", "name": "Preparation", "score": 0.9}) + "\n")
    assert_clean_error(run_main("ask", "--session", str(s), "--at", "99",
                                "what phase are we in"), "after the session's last")
    ok = run_main("ask", "--session", str(s), "--at", "12", "--no-semantic",
                  "what phase are we in")
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("extra,must", [
    (("--runtime", "magic"), "unknown --runtime 'magic'"),
    (("--runtime", "magic", "--vision", "none"), "unknown --runtime"),
    (("--model-dir", "/nope/model"), "/nope/model"),
    (("--vision", "model", "--model-dir", "/nope/model"), "cannot load"),
])
def test_explicit_model_or_runtime_that_cannot_load_exits_2(feed, tmp_path, run_main, extra,
                                                            must):
    out = tmp_path / "out"
    assert_clean_error(run_main("run", str(feed), "--out", str(out), *extra), must)


def test_unavailable_runtime_is_not_silently_replaced(feed, tmp_path, run_main):
    pytest.importorskip("onnxruntime")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    r = run_main("run", str(feed), "--out", str(tmp_path / "o"), "--runtime", "tensorrt")
    assert_clean_error(r, "tensorrt")


def _start(out: Path) -> dict:
    return start_record(out)


def test_the_backend_that_runs_is_recorded(feed, tmp_path, run_main):
    out = tmp_path / "out"
    r = run_main("run", str(feed), "--out", str(out), "--max-seconds", "1")
    assert r.returncode == 0, r.stderr[-1500:]
    start = _start(out)
    assert start["vision_backend"] == "model" and start["vision_backend_reason"] is None
    assert "vision: model" in r.stdout
    assert "Vision: model" in (out / "report.html").read_text()


def test_auto_fallback_says_which_backend_and_why(feed, tmp_path, monkeypatch):
    """--vision auto with a default model that fails to load: the heuristic stage runs and
    every output says so (no silent fallback)."""
    from copilot import stages
    from copilot.app import Copilot, RunConfig

    def broken(*_a, **_k):
        raise RuntimeError("weights truncated")

    monkeypatch.setattr(stages, "load_vision_pipeline", broken)
    out = tmp_path / "out"
    app = Copilot(RunConfig(source=str(feed), out=out, max_seconds=1.0, speech="off"))
    app.compose()
    assert app.vision_backend == "heuristic"
    assert app.vision_backend_reason == "model failed to load: weights truncated"
    assert "model failed to load" in app.status().extra
    res = app.run()
    assert res.vision_backend == "heuristic" and "weights truncated" in res.vision_backend_reason
    start = _start(out)
    assert start["vision_backend"] == "heuristic"
    assert "weights truncated" in start["vision_backend_reason"]
    assert "model failed to load: weights truncated" in (out / "report.html").read_text()
