"""benchmarks.speech_oracle: the ceiling of any rule over the recognisers' hypotheses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.speech_oracle import oracle
from kg_reasoning.catalogue import load_catalogue

TRUTH = ["hide_overlay", {}]


def _rec(ps: str, tiny: str, base: str | None = None, snr: float = 10.0) -> dict:
    r = {"family": "f", "snr": snr, "truth": TRUTH, "ms_v": 2, "ps": {"text": ps},
         "tiny": {"cmd": tiny}}
    if base is not None:
        r["base"] = {"cmd": base}
    return r


def test_the_ceiling_counts_a_command_right_when_any_recogniser_has_it() -> None:
    parse = load_catalogue().parse
    right = "copilot hide the outline"
    assert parse(right).intent == TRUTH[0]
    recs = [_rec(right, ""), _rec("", right), _rec("", "", base=right), _rec("", ""),
            {"family": "f", "snr": 10.0, "truth": None, "ms_v": 2}]  # a negative: not counted
    row = oracle(recs, parse)[("f", 10.0)]
    assert row["n"] == 4 and row["pocketsphinx"] == 0.25 and row["tiny"] == 0.25
    assert row["pocketsphinx or tiny"] == 0.5
    assert row["n_base"] == 1 and row["base"] == 1.0


def test_it_refuses_test_records(tmp_path: Path) -> None:
    path = tmp_path / "records_test.jsonl"
    path.write_text(json.dumps(_rec("", "")) + "\n")
    r = subprocess.run([sys.executable, "-m", "benchmarks.speech_oracle", "--records",
                        str(path), "--out", str(tmp_path / "o.md")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: ")
    assert not (tmp_path / "o.md").exists()
