"""copilot.outputs: an earlier run's session log is set aside, never overwritten."""

from __future__ import annotations

import os
from pathlib import Path

from copilot.clock import ManualClock
from copilot.outputs import latency_summary, set_aside
from copilot.tracing import Tracer


def test_set_aside_renames_an_earlier_session_by_its_time(tmp_path: Path):
    p = tmp_path / "session.jsonl"
    assert set_aside(p) is None  # nothing there
    p.write_text("")
    assert set_aside(p) is None and p.exists()  # empty: nothing to keep
    p.write_text("{}\n")
    os.utime(p, (0, 0))
    first = set_aside(p)
    assert first == tmp_path / "session.19700101T000000Z.jsonl" and not p.exists()
    p.write_text("{}\n")
    os.utime(p, (0, 0))
    assert set_aside(p) == tmp_path / "session.19700101T000000Z-1.jsonl"
    assert first.read_text() == "{}\n"


def test_latency_summary_rounds_the_percentiles_of_every_span():
    tr = Tracer(None, ManualClock())
    for ms in (1, 2, 3):
        tr.span("overlay", "compose", "-", 0, ms * 1_000_000)
    got = latency_summary(tr)
    assert list(got) == ["overlay.compose"]
    assert got["overlay.compose"]["p50"] == 2.0 and got["overlay.compose"]["n"] == 3
