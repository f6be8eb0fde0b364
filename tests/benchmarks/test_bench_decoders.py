"""benchmarks.bench_decoders on tiny clips: real decoders, alternated rounds, ratios."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import bench_decoders as bd


def test_decoders_alternate_and_report(tmp_path: Path) -> None:
    res = bd.run(0.5, 3, sizes={"720p": (320, 240)}, workdir=tmp_path, progress=False)
    per = res["sizes"]["720p"]
    assert set(per) == set(bd.DECODERS)
    for d, v in per.items():
        assert v["all_frames"], d  # every decoder delivers all 15 frames
        assert v["frames"] == res["clips"]["720p"]["frames"] == 15
        assert len(v["fps_per_round"]) == 3 and min(v["fps_per_round"]) > 0
        assert v["ratio_to_pyav_per_round"] and v["ratio_to_pyav_median"] > 0
    assert per["pyav"]["ratio_to_pyav_median"] == 1.0
    rec = res["recommendation"]
    assert rec["default"] in bd.DECODERS and rec["reason"]
    record = {"command": "test", "rounds": 3, "machine": {"libs": {}}, **res}
    bd.write(record, tmp_path, "dec")
    assert json.loads((tmp_path / "dec.json").read_text())["sizes"]["720p"]["pyav"]
    md = (tmp_path / "dec.md").read_text()
    assert "| 720p | decord |" in md and "Default decoder by measurement" in md


def test_recommend_keeps_pyav_unless_better_everywhere() -> None:
    def entry(r: float, cpu: float) -> dict:
        return {"ratio_to_pyav_median": r, "cpu_ms_per_frame_median": cpu, "all_frames": True}

    mixed = {"720p": {"pyav": entry(1, 2.0), "opencv": entry(1.2, 2.5)},
             "1080p": {"pyav": entry(1, 4.0), "opencv": entry(0.9, 5.0)}}
    assert bd.recommend(mixed, ("pyav", "opencv"))["default"] == "pyav"
    better = {"720p": {"pyav": entry(1, 2.0), "opencv": entry(1.2, 1.5)},
              "1080p": {"pyav": entry(1, 4.0), "opencv": entry(1.1, 3.0)}}
    assert bd.recommend(better, ("pyav", "opencv"))["default"] == "opencv"
