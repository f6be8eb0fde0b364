"""benchmarks.summary: goals that a result file declares about itself."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import summary


def test_declared_goals_are_rendered_and_rechecked(tmp_path: Path) -> None:
    (tmp_path / "vision_real.json").write_text(json.dumps({
        "command": "python -m benchmarks.bench_vision_real",
        "goals": [
            {"issue": 18, "name": "real val mIoU", "target": ">= 0.45", "value": 0.41,
             "pass": True, "note": "10 patients"},
            {"issue": 18, "name": "tool IoU", "target": ">= 0.80", "value": 0.83, "pass": True},
            {"issue": 18, "name": "CVS claimed where surgeons disagree", "target": "0",
             "value": None, "pass": None},
        ],
    }))
    rows = {r["goal"]: r for r in summary.evaluate(tmp_path)}
    miou = rows["real val mIoU"]
    assert miou["pass"] is False and "overruled" in miou["note"]
    assert miou["source"] == "vision_real.json"
    assert rows["tool IoU"]["pass"] is True
    assert rows["CVS claimed where surgeons disagree"]["pass"] is None
    md = summary.render(list(rows.values()), "cmd")
    assert "| 18 | real val mIoU | >= 0.45 | 0.41 | **FAIL** |" in md


def test_check_target() -> None:
    assert summary.check_target(0.5, ">= 0.45") is True
    assert summary.check_target(300, "<= 300 ms") is True
    assert summary.check_target(301, "<= 300 ms") is False
    assert summary.check_target(0, "= 0") is True
    assert summary.check_target("PyAV", ">= 1") is None
    assert summary.check_target(True, ">= 1") is None
    assert summary.check_target(1.0, "no growth") is None
