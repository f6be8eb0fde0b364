"""Teaching by example end to end: ``copilot run`` on a generated feed whose audio teaches a
concept (espeak-ng speech through the real recogniser, real vision features and decode),
then a second run that loads the saved concepts with ``--taught``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from copilot.app import RunConfig, run_copilot
from copilot.feed_edit import add_utterance
from copilot.feeds import load_truth, make_feed

pytestmark = pytest.mark.slow
PROVENANCE = "not part of my validated knowledge"


def _records(out: Path, kind: str) -> list[dict]:
    lines = (out / "session.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


@pytest.fixture(scope="module")
def feeds(tmp_path_factory) -> tuple[Path, Path]:
    """A 24 s cholecystectomy feed (clip applier in view from 14 s) as made, and with
    "copilot, this is the accessory duct" said while the instrument is in view, then "where is
    the accessory duct" and "what have you learned"."""
    base = tmp_path_factory.mktemp("teach")
    plain = make_feed(base / "plain", "cholecystectomy", 24.0, seed=5417, size=(320, 240),
                      fps=15.0, events=["clip_before_cvs@14"], audio=False)
    plain_q = Path(shutil.copytree(plain, base / "plain_q"))
    add_utterance(plain_q, "copilot where is the accessory duct", 6.0, "locate_taught",
                  {"name": "accessory duct"})
    said = Path(shutil.copytree(plain, base / "said"))
    add_utterance(said, "copilot this is the accessory duct", 14.6, "teach_concept",
                  {"name": "accessory duct"})
    add_utterance(said, "copilot where is the accessory duct", 18.0, "locate_taught",
                  {"name": "accessory duct"})
    add_utterance(said, "copilot what have you learned", 21.0, "list_taught")
    return plain_q, said


def test_spoken_teaching_is_learned_answered_saved_and_reported(feeds, tmp_path):
    plain_q, said = feeds
    res = run_copilot(RunConfig(source=str(said), out=tmp_path / "a"))
    assert res.exit_code == 0, res.error
    out = tmp_path / "a"
    truth = load_truth(said)["teaching"]
    taught = _records(out, "taught")
    assert [r["name"] for r in taught] == ["accessory duct"] and taught[0]["event"] == "teach"
    assert abs(taught[0]["media_t_s"] - truth[0]["t_s"]) < 1.5
    answers = {a["intent"]: a["text"] for a in _records(out, "answer")}
    assert "taught by you at" in answers["locate_taught"] and PROVENANCE in \
        answers["locate_taught"]
    assert "accessory duct" in answers["list_taught"]
    assert not [a for a in _records(out, "alert") if "accessory duct" in json.dumps(a)]
    summary = _records(out, "taught_summary")
    assert summary[0]["name"] == "accessory duct" and summary[0]["examples"] == 1
    assert (out / "taught.npz").is_file() and res.outputs["taught"] == out / "taught.npz"
    html = (out / "report.html").read_text()
    assert "Taught by the surgeon" in html and "the accessory duct: taught at" in html
    # the next case: loaded with --taught, the name is known from the start
    res2 = run_copilot(RunConfig(source=str(plain_q), out=tmp_path / "b",
                                 taught=out / "taught.npz"))
    assert res2.exit_code == 0, res2.error
    assert _records(tmp_path / "b", "taught_loaded")[0]["names"] == ["accessory duct"]
    ans = [a for a in _records(tmp_path / "b", "answer") if a["intent"] == "locate_taught"]
    assert ans and PROVENANCE in ans[0]["text"]


def test_bad_taught_file_is_one_error(feeds, tmp_path):
    from copilot.errors import CopilotError

    bad = tmp_path / "x.npz"
    bad.write_text("not prototypes")
    with pytest.raises(CopilotError) as err:  # the CLI prints it as one "error:" line, exit 2
        run_copilot(RunConfig(source=str(feeds[0]), out=tmp_path / "o", taught=bad))
    assert "not a taught-concepts file" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(CopilotError, match="--taught file not found"):
        RunConfig(source=str(feeds[0]), taught=tmp_path / "missing.npz").check()
