"""Session fixtures for the speech tests: a few espeak-ng commands in OR noise, the recogniser."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from speech.testset import CHATTER_VOICES, TEST_VOICES, make_sample

#: (text, intent, slots) spoken in the tests; intents cover slots of every kind.
COMMANDS = [
    ("copilot outline the cystic duct in red", "outline_structure",
     {"structure": "cystic_duct", "colour": "red"}),
    ("copilot mute alerts for five minutes", "mute_alerts", {"minutes": 5}),
    ("copilot is the critical view of safety reached", "cvs_status", {}),
    ("copilot where is the common bile duct", "locate_structure",
     {"structure": "common_bile_duct"}),
]
CHATTER = [
    "can I have the suction please",
    "the patient's blood pressure is stable",
    "could you turn the lights down a little",
]


@pytest.fixture(scope="session")
def catalogue():
    from kg_reasoning.catalogue import load_catalogue

    return load_catalogue()


@pytest.fixture(scope="session")
def grammar():
    from copilot.cli_speech import catalogue_grammar

    return catalogue_grammar()


@pytest.fixture(scope="session")
def asr(grammar):
    """Default recogniser: the wake word competes with chatter's first words in the grammar."""
    from speech.asr import PocketsphinxASR

    a = PocketsphinxASR(grammar)
    a.warm_up(make_sample("we are going to need another port here", CHATTER_VOICES[3], 15.0,
                          seed=77).audio)
    return a


@pytest.fixture(scope="session")
def asr_ptt():
    """Push-to-talk recogniser: no wake check in the grammar (wake word optional)."""
    from copilot.cli_speech import catalogue_grammar
    from speech.asr import PocketsphinxASR

    a = PocketsphinxASR(catalogue_grammar(wake_optional=True, competitors=False))
    a.warm_up(make_sample("we are going to need another port here", CHATTER_VOICES[3], 15.0,
                          seed=77).audio)
    return a


@pytest.fixture(scope="session")
def command_samples():
    """Commands at 15 dB SNR OR noise, two voices."""
    return [make_sample(t, TEST_VOICES[i % 2], 15.0, seed=i, truth=(intent, slots))
            for i, (t, intent, slots) in enumerate(COMMANDS)]


@pytest.fixture(scope="session")
def chatter_samples():
    return [make_sample(t, CHATTER_VOICES[i % len(CHATTER_VOICES)], 15.0, seed=50 + i)
            for i, t in enumerate(CHATTER)]


@pytest.fixture(scope="session")
def pyannote_sample(tmp_path_factory) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """The real two-speaker sample.wav (+ its RTTM) from the pyannote.audio wheel.

    Downloaded with ``pip download --no-deps`` (nothing installed); skipped if that fails.
    """
    from speech.audio import audio_from_bytes

    d = tmp_path_factory.mktemp("pyannote")
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                        "pyannote.audio", "-d", str(d)], check=True, timeout=180,
                       capture_output=True)
        wheel = next(Path(d).glob("*.whl"))
    except Exception as exc:  # no registry access
        pytest.skip(f"cannot download the pyannote.audio wheel for sample.wav: {exc}")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        wav = next(n for n in names if n.endswith("sample/sample.wav"))
        rttm = next((n for n in names if n.endswith("sample/sample.rttm")), None)
        audio = audio_from_bytes(z.read(wav))
        turns = []
        if rttm:
            for line in io.StringIO(z.read(rttm).decode()):
                f = line.split()
                if len(f) >= 8 and f[0] == "SPEAKER":
                    turns.append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    return audio, turns
