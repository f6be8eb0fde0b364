"""The surgeon's CVS call end to end: ``copilot run`` on a feed whose audio confirms the
critical view (espeak-ng speech through the real recogniser, real vision and decode)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from copilot.app import RunConfig, run_copilot
from copilot.feed_edit import add_utterance
from copilot.feeds import load_truth, make_feed

pytestmark = pytest.mark.slow


def _records(out: Path, kind: str) -> list[dict]:
    lines = (out / "session.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


@pytest.fixture(scope="module")
def feeds(tmp_path_factory) -> tuple[Path, Path]:
    """The same 24 s cholecystectomy feed (clip applied at 16 s; OR sounds, no scripted
    speech) twice: as made, and with "copilot, critical view confirmed" spoken before the
    clip."""
    base = tmp_path_factory.mktemp("cvs")
    plain = make_feed(base / "plain", "cholecystectomy", 24.0, seed=5417, size=(320, 240),
                      fps=15.0, events=["clip_before_cvs@16"], audio=False)
    said = Path(shutil.copytree(plain, base / "said"))
    rec = add_utterance(said, "copilot critical view confirmed", 10.5, "confirm_cvs")
    assert rec["end_s"] < 16.0
    truth = load_truth(said)
    assert truth["cvs_confirmations"] == [{"t_s": rec["end_s"], "confirmed": True}]
    return plain, said


def test_without_confirmation_the_clip_applier_prompts(feeds, tmp_path):
    plain, _ = feeds
    res = run_copilot(RunConfig(source=str(plain), out=tmp_path, cvs="surgeon"))
    assert res.exit_code == 0
    start = _records(tmp_path, "start")[0]
    assert start["procedure"] == "cholecystectomy" and start["cvs_source"] == "surgeon"
    rules = [a["rule"] for a in _records(tmp_path, "alert")]
    assert "cvs_confirm_prompt" in rules and "clip_before_cvs" not in rules
    html = (tmp_path / "report.html").read_text()
    assert "Critical view of safety called by: surgeon" in html


def test_spoken_confirmation_is_logged_and_silences_the_prompt(feeds, tmp_path):
    _, said = feeds
    res = run_copilot(RunConfig(source=str(said), out=tmp_path, cvs="surgeon"))
    assert res.exit_code == 0
    conf = _records(tmp_path, "cvs_confirmation")
    truth_t = load_truth(said)["cvs_confirmations"][0]["t_s"]
    assert len(conf) == 1 and conf[0]["confirmed"] is True
    assert abs(conf[0]["media_t_s"] - truth_t) < 1.5
    rules = [a["rule"] for a in _records(tmp_path, "alert")]
    assert "cvs_confirm_prompt" not in rules and "clip_before_cvs" not in rules
    assert "surgeon: critical view confirmed" in (tmp_path / "report.html").read_text()
