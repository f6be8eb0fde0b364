"""speech.synth: espeak-ng voices, the OR soundscape, mixing, WAV output."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech.errors import SpeechError
from speech.synth import (
    SAMPLE_RATE,
    VOICES,
    mix,
    render_soundscape,
    synthesize,
    write_wav,
)

pytestmark = pytest.mark.skipif(__import__("shutil").which("espeak-ng") is None,
                                reason="espeak-ng not installed")


def _pitch(x: np.ndarray) -> float:
    """Rough fundamental (Hz) from the autocorrelation of the voiced part."""
    v = x[np.abs(x) > 0.1][: SAMPLE_RATE]
    ac = np.correlate(v[:4000], v[:4000], "full")[3999:]
    lo, hi = SAMPLE_RATE // 400, SAMPLE_RATE // 60
    return SAMPLE_RATE / (lo + int(np.argmax(ac[lo:hi])))


def test_voices_differ():
    text = "copilot, outline the cystic duct in red"
    out = {v: synthesize(text, v) for v in VOICES}
    for a in out.values():
        assert a.dtype == np.float32 and 1.0 < len(a) / SAMPLE_RATE < 5.0
        assert 0.85 < np.abs(a).max() <= 0.9001
    assert len(out["surgeon_fast"]) < len(out["surgeon"])  # faster speech is shorter
    assert _pitch(out["nurse"]) > _pitch(out["assistant"])  # female variant, higher pitch
    assert np.array_equal(out["surgeon"], synthesize(text, "surgeon"))  # deterministic


def test_synthesize_errors():
    with pytest.raises(SpeechError, match="unknown voice"):
        synthesize("hello", "robot")
    with pytest.raises(SpeechError, match="empty"):
        synthesize("  ")


def test_soundscape_floor_beeps_and_bursts():
    bg = render_soundscape(6.0, 3, cautery=[(1.0, 2.0)], suction=[(3.0, 4.0)])
    assert len(bg) == 6 * SAMPLE_RATE and bg.dtype == np.float32
    w = bg.reshape(-1, 160)  # 10 ms windows: never digital silence
    assert (np.sqrt((w ** 2).mean(1)) > 1e-3).all()
    rms = lambda a, b: float(np.sqrt(np.mean(bg[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)] ** 2)))  # noqa: E731
    quiet = rms(4.5, 6.0)
    assert rms(1.1, 1.9) > 2 * quiet and rms(3.1, 3.9) > 2 * quiet
    spec = np.abs(np.fft.rfft(bg[int(4.5 * SAMPLE_RATE):]))
    f = np.fft.rfftfreq(len(bg[int(4.5 * SAMPLE_RATE):]), 1 / SAMPLE_RATE)
    assert spec[(f > 870) & (f < 890)].mean() > 3 * spec[(f > 1000) & (f < 1500)].mean()
    assert np.array_equal(bg, render_soundscape(6.0, 3, [(1.0, 2.0)], [(3.0, 4.0)]))
    with pytest.raises(SpeechError):
        render_soundscape(0.0, 1)


def test_mix_and_wav(tmp_path):
    bg = render_soundscape(4.0, 1)
    say = synthesize("copilot, mark this moment", "surgeon")
    out = mix(bg, [(1.0, say, 0.1)])
    seg = out[SAMPLE_RATE: SAMPLE_RATE + len(say)]
    assert np.sqrt(np.mean(seg ** 2)) > 4 * np.sqrt(np.mean(bg ** 2))
    p = tmp_path / "a.wav"
    write_wav(p, out)
    back, sr = sf.read(str(p), dtype="float32")
    assert sr == 16000 and back.ndim == 1 and len(back) == len(out)
    assert sf.info(str(p)).subtype == "PCM_16"
    with pytest.raises(SpeechError):
        mix(bg, [(9.0, say, 0.1)])


def test_speech_synth_is_a_leaf():
    import speech.synth as mod

    tree = ast.parse(Path(mod.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] not in ("vision", "kg_reasoning", "copilot")
        elif isinstance(node, ast.Import):
            for a in node.names:
                assert a.name.split(".")[0] not in ("vision", "kg_reasoning", "copilot")
