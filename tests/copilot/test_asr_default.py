"""Issue 19: ``copilot run`` listens with the measured default recogniser (speech.defaults),
says which one runs, and says why when the default's extra is missing (no silent fallback);
a recogniser the user named that cannot load is one error line."""

from __future__ import annotations

import json

import pytest

from tests.copilot.fallback_support import run_and_check_fallback
from tests.reliability.conftest import (  # noqa: F401 - fixtures
    FEED_SECONDS,
    assert_clean_error,
    feed,
    run_main,
)
from tests.reliability.conftest import start_record as _start


def test_run_config_default_is_the_measured_recogniser() -> None:
    from copilot.run_config import RunConfig
    from copilot.ui import UIConfig

    assert RunConfig(source="x.mp4").asr == "default"
    assert UIConfig(source="x.mp4").asr == "default"


def test_default_listens_with_the_hybrid_and_records_it(feed, tmp_path):  # noqa: F811
    pytest.importorskip("onnxruntime")
    from copilot.app import Copilot, RunConfig
    from speech.defaults import DEFAULT_ASR, asr_available

    if asr_available(DEFAULT_ASR):
        pytest.skip(f"the default recogniser cannot load here: {asr_available(DEFAULT_ASR)}")
    out = tmp_path / "out"
    app = Copilot(RunConfig(source=str(feed), out=out, vision="none"))
    app.compose()
    assert (app.asr_backend, app.asr_backend_reason) == (DEFAULT_ASR, None)
    res = app.run()
    assert res.asr_backend == DEFAULT_ASR and res.asr_backend_reason is None
    start = _start(out)
    assert start["asr_backend"] == DEFAULT_ASR and start["config"]["asr"] == "default"
    assert f"Speech recogniser: {DEFAULT_ASR}" in (out / "report.html").read_text()
    heard = [json.loads(x) for x in (out / "session.jsonl").read_text().splitlines()]
    said = [r["text"] for r in heard if r["type"] == "transcript"]
    truth = json.loads((feed / "truth.json").read_text())
    commands = [u["text"] for u in truth["utterances"]
                if u["text"].lower().startswith("copilot") and u.get("t_s", 0) < FEED_SECONDS]
    assert len(said) >= 1 and len(said) <= len(commands), (said, commands)


def _no_moonshine(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if Moonshine's wheel were not installed."""
    from speech import defaults

    real = defaults.asr_available
    monkeypatch.setattr(defaults, "asr_available", lambda name: (
        "Moonshine's weights are not installed: pip install '.[moonshine]'"
        if name.startswith(("moonshine", "hybrid")) else real(name)))


def test_missing_default_extra_falls_back_and_says_why(feed, tmp_path, monkeypatch):  # noqa: F811
    _no_moonshine(monkeypatch)
    run_and_check_fallback(feed, tmp_path / "out", "asr", "pocketsphinx",
                           "pocketsphinx instead of hybrid", "Moonshine's weights")


def test_named_recogniser_that_cannot_load_is_one_error_line(feed, tmp_path, run_main,  # noqa: F811
                                                             monkeypatch):
    _no_moonshine(monkeypatch)
    r = run_main("run", str(feed), "--out", str(tmp_path / "o"), "--asr", "hybrid")
    assert_clean_error(r, "--asr hybrid cannot load")
