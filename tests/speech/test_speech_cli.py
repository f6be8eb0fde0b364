"""The speech CLI commands: transcribe, say, enroll (listen needs a microphone)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from speech.audio import write_wav
from speech.testset import TEST_VOICES, speak


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from copilot.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory, command_samples):
    d = tmp_path_factory.mktemp("cli")
    s = command_samples[0]
    write_wav(d / "cmd.wav", s.audio)
    # the same command at 48 kHz stereo and at 8 kHz
    from scipy.signal import resample_poly

    x48 = resample_poly(s.audio, 3, 1)
    sf.write(d / "cmd48.wav", np.stack([x48, x48], axis=1), 48000)
    sf.write(d / "cmd8.wav", resample_poly(s.audio, 1, 2), 8000)
    sf.write(d / "silence.wav", np.zeros(16000, np.float32), 16000)
    (d / "zero.wav").write_bytes(b"")
    (d / "junk.wav").write_bytes(np.random.default_rng(1).bytes(3000))
    return d


def test_speech_cli_transcribe_json(files):
    r = _cli("transcribe", str(files / "cmd.wav"), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout.strip().splitlines()[0])
    assert d["intent"] == "outline_structure"
    assert d["slots"] == {"structure": "cystic_duct", "colour": "red"}
    assert d["accepted"] and d["end_s"] > d["start_s"]


def test_speech_cli_bad_audio(files):
    for name, rc, needle in [("zero.wav", 2, "zero length"), ("junk.wav", 2, "cannot decode")]:
        r = _cli("transcribe", str(files / name))
        assert r.returncode == rc
        assert r.stderr.strip().startswith("error:") and needle in r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_speech_cli_rates_silence_say_enroll(files, tmp_path):
    from typer.testing import CliRunner

    from copilot.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["transcribe", str(files / "silence.wav")])
    assert r.exit_code == 0 and "no speech" in r.output
    for name in ("cmd48.wav", "cmd8.wav"):
        r = runner.invoke(app, ["transcribe", str(files / name), "--all"])
        assert r.exit_code == 0 and r.exception is None, r.output
        assert "copilot" in r.output or "rejected" in r.output
    out = tmp_path / "said.wav"
    r = runner.invoke(app, ["say", "the cystic duct is outlined in red", "--out", str(out),
                            "--voice", "en-gb+f3"])
    assert r.exit_code == 0 and out.exists() and sf.info(out).duration > 1.0
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    write_wav(a, speak("copilot show the coverage map", TEST_VOICES[4]))
    write_wav(b, speak("copilot what phase are we in", TEST_VOICES[4]))
    vp = tmp_path / "vp.npz"
    r = runner.invoke(app, ["enroll", str(a), str(b), "--name", "surgeon", "--out", str(vp)])
    assert r.exit_code == 0 and vp.exists(), r.output
    r = runner.invoke(app, ["transcribe", str(files / "cmd.wav"), "--json", "--voice-print",
                            str(vp)])
    assert r.exit_code == 0
    d = json.loads(r.output.strip().splitlines()[-1])
    assert -1.0 <= d["speaker_score"] <= 1.0
