"""The report: built from a real brain session, opened in headless Chromium (screenshot, the
timeline image rendered), rebuilt by ``copilot report`` (also from a cut session)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from brain_support import cached_run

from copilot.report import build_report, latency_summary
from copilot.session import read_session

COPILOT = [sys.executable, "-m", "copilot.cli"]
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    _, run, session = cached_run("chole")
    out = tmp_path_factory.mktemp("report") / "report.html"
    trace = out.with_name("trace.jsonl")
    # a small trace in the runtime's format: one answered utterance, one spoken alert
    alert_tid = read_session(session).first("alert")["trace_id"]
    spans = [
        {"stage": "speech", "name": "utterance", "trace_id": "u1", "frame_id": None,
         "t0_ns": 0, "t1_ns": 1_000_000_000, "dur_ms": 1000.0},
        {"stage": "tts", "name": "first_audio", "trace_id": "u1", "frame_id": None,
         "t0_ns": 1_420_000_000, "t1_ns": 1_420_000_000, "dur_ms": 0.0},
        {"stage": "decode", "name": "frame", "trace_id": "f30", "frame_id": 30,
         "t0_ns": 2_000_000_000, "t1_ns": 2_004_000_000, "dur_ms": 4.0},
        {"stage": "alert", "name": "raise", "trace_id": alert_tid, "frame_id": 30,
         "t0_ns": 2_100_000_000, "t1_ns": 2_100_000_000, "dur_ms": 0.0},
        {"stage": "tts", "name": "first_audio", "trace_id": alert_tid, "frame_id": None,
         "t0_ns": 2_254_000_000, "t1_ns": 2_254_000_000, "dur_ms": 0.0},
    ]
    import json

    trace.write_text("\n".join(json.dumps(s) for s in spans) + "\n")
    return build_report(session, out, trace_path=trace), run


def test_report_lists_alerts_answers_bookmarks_and_latency(report):
    path, run = report
    html = path.read_text()
    assert html.startswith("<!doctype html>") and "src='data:image/png;base64," in html
    for a in run.alerts:
        assert a.text.replace("'", "&#x27;") in html
    # the outline answer says what was found (issue 21)
    assert ("Outlined the cystic duct in red, detection" in html
            or "I do not see the cystic duct now" in html)
    assert "reasoning steps" in html and "Bookmarks (1)" in html
    assert "speech_end-&gt;answer_audio" in html and "event-&gt;alert_audio" in html
    assert "looks a bit short today" not in html  # chatter is never recorded
    lat = latency_summary(path.with_name("trace.jsonl"), read_session(cached_run("chole")[2]))
    assert lat["speech_end->answer_audio"]["p50"] == 420.0
    assert lat["event->alert_audio"]["p50"] == 250.0


@pytest.mark.browser
def test_report_renders_in_headless_chromium(report, tmp_path):
    from playwright.sync_api import sync_playwright

    path, _ = report
    shot = tmp_path / "report.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(path.as_uri(), wait_until="domcontentloaded")
            page.wait_for_selector("img#timeline")
            page.wait_for_function("document.getElementById('timeline').complete")
            width = page.evaluate("document.getElementById('timeline').naturalWidth")
            rows = page.locator("#alerts tr").count()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert width > 0
    assert rows >= 2
    assert shot.stat().st_size > 10_000


def test_cli_rebuilds_the_report_from_a_cut_session(tmp_path):
    _, _, session = cached_run("chole")
    cut = tmp_path / "session.jsonl"
    data = session.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])  # killed mid-run: no end line, cut line
    r = subprocess.run([*COPILOT, "report", str(cut)], capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "report.html"
    assert out.is_file() and "cut short" in out.read_text()
    r = subprocess.run([*COPILOT, "report", str(tmp_path / "missing.jsonl")],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "not found" in r.stderr
