"""No data lost: a run killed with SIGKILL leaves a readable session log, and
``copilot report`` rebuilds the report from it; the annotated MP4 is never half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.reliability.conftest import REPO, cli


def test_sigkill_mid_run_leaves_a_readable_session(feed: Path, tmp_path: Path):
    from copilot.session import read_session

    out = tmp_path / "run"
    session = out / "session.jsonl"
    env = {**os.environ, "COPILOT_LOG": "ERROR"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "copilot.cli", "run", str(feed), "--out", str(out),
         "--realtime", "--vision", "heuristic"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # wait until the run is well under way: perception lines after the start line
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if session.exists() and session.read_text(errors="replace").count("\n") >= 4:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    s = read_session(session)
    assert s.first("start") is not None and s.first("end") is None  # killed, not ended
    assert s.skipped <= 1  # at most the line being written when it died
    assert len(s.records) >= 4
    assert not (out / "annotated.mp4").exists()  # only the .partial file: never a broken MP4
    # the report is rebuilt from what the session holds
    r = cli("report", str(session))
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.returncode == 0, r.stderr[-800:]
    report = out / "report.html"
    assert report.exists() and report.stat().st_size > 1000
    assert "<html" in report.read_text(encoding="utf-8").lower()


def test_report_from_a_session_cut_mid_line(feed: Path, tmp_path: Path):
    """A power cut can leave half a line: the tolerant reader skips it."""
    from copilot.app import RunConfig, run_copilot
    from copilot.session import read_session

    out = tmp_path / "run"
    res = run_copilot(RunConfig(source=str(feed), out=out, vision="heuristic", speech="off",
                                max_seconds=1.0, report=False))
    assert res.exit_code == 0
    data = (out / "session.jsonl").read_bytes()
    cut = tmp_path / "cut" / "session.jsonl"
    cut.parent.mkdir()
    cut.write_bytes(data[: len(data) - 40])  # the end line, cut in the middle
    s = read_session(cut)
    assert s.skipped == 1 and s.first("end") is None and s.first("start") is not None
    r = cli("report", str(cut), "--out", str(tmp_path / "cut" / "r.html"))
    assert "Traceback" not in r.stderr and r.returncode == 0, r.stderr[-800:]
    assert (tmp_path / "cut" / "r.html").stat().st_size > 1000
