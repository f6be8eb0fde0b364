"""Session fixtures for the speech tests: a few espeak-ng commands in OR noise, the recogniser."""

from __future__ import annotations

import io
import os
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

    Tests download nothing (issue 20): the wheel is read from ``$COPILOT_PYANNOTE_WHEEL``
    (a file, or a folder holding it; fetch it once with ``pip download --no-deps
    pyannote.audio -d DIR``); skipped when it is not there.
    """
    from speech.audio import audio_from_bytes

    given = os.environ.get("COPILOT_PYANNOTE_WHEEL", "")
    p = Path(given) if given else None
    wheel = None
    if p is not None and p.is_file():
        wheel = p
    elif p is not None and p.is_dir():
        wheel = next(iter(sorted(p.glob("pyannote*audio*.whl"))), None)
    if wheel is None:
        pytest.skip("sample.wav: set COPILOT_PYANNOTE_WHEEL to a pyannote.audio wheel "
                    "(tests download nothing)")
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
