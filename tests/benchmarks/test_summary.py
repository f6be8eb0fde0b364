"""benchmarks.summary: goals read from result JSONs, pass / fail / not measured."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import summary


def test_summary_reads_results_and_marks_missing(tmp_path: Path) -> None:
    (tmp_path / "loop.json").write_text(json.dumps({
        "command": "python -m benchmarks.bench_loop",
        "fast": {"ratio_median": 0.95, "ratio_per_round": [0.9, 0.95, 1.0]},
        "realtime": {"frame_ms": 33.3, "with_model": {"video.frame_to_overlay": {"p99": 40.0}}},
    }))
    (tmp_path / "vision_latency_synthetic_model.json").write_text(
        json.dumps({"ratio_ort_over_torch": 0.6}))
    rows = {r["goal"]: r for r in summary.evaluate(tmp_path)}
    assert len(rows) == len(summary.GOALS)
    loop = rows["`--fast` passthrough+overlay / raw decoder fps at 720p"]
    assert loop["value"] == 0.95 and loop["pass"] is True
    assert rows["`--realtime` overlay added latency p99 (ms)"]["pass"] is False
    assert rows["ONNX Runtime / PyTorch eager latency"]["pass"] is False
    soak = rows["soak: peak RSS growth after warm-up (%)"]
    assert soak["pass"] is None and "no results/soak.json" in soak["note"]
    md = summary.render(list(rows.values()), "cmd")
    assert "raw decoder fps at 720p | >= 0.9 | 0.95 | pass |" in md


def test_summary_of_the_committed_results_is_readable() -> None:
    """Every goal whose result file is committed is measured: a value, a pass / fail, and
    no "-" where the reader looked for a key that the file does not have (issue 20: the
    soak row read key names that did not exist and showed "trend -")."""
    rows = summary.evaluate()
    committed = [r for r in rows if not str(r["note"]).startswith("no results/")]
    assert committed
    for r in committed:
        note = str(r["note"])
        assert not note.startswith("unreadable"), (r["goal"], note)
        assert r["value"] is not None or r["pass"] is None, (r["goal"], note)
        assert " - " not in f" {note} ", (r["goal"], note)  # "-": a key it did not find


def test_a_missing_key_shows_in_the_row(tmp_path: Path) -> None:
    """The check above can fail: a soak result without the trend key leaves a "-"."""
    (tmp_path / "soak.json").write_text(json.dumps({"command": "x", "analysis": {
        "rss_peak_growth_pct": 1.0, "pass_rss": True}, "feed": {}}))
    rows = {r["goal"]: r for r in summary.evaluate(tmp_path)}
    note = rows["soak: peak RSS growth after warm-up (%)"]["note"]
    assert " - " in f" {note} "
