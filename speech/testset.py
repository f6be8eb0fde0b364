"""Synthetic speech test sets: espeak-ng voices mixed with operating-room noise at a set SNR.

Voices are deliberately not the feed generator's (``speech/synth.py`` uses en-us+m3, en-gb+m1,
en-us+m7, en-us+f3, en-gb-scotland+f2): other espeak-ng variants over US, GB and RP English,
each at its own speed and pitch (``TEST_VOICES``; chatter: ``CHATTER_VOICES``).

OR noise (``or_noise``) is a sum of: pink noise (ventilation / room tone), a pulse-oximeter
beep (~880-1000 Hz, 120 ms every 0.8-1.1 s), suction hiss bursts (band-passed white noise,
1-3 s), electrosurgical buzz bursts (harmonics of 100-120 Hz, 0.5-2 s), and instrument
clicks. SNR is defined over the speech's active samples (|x| above 2 % of peak) against the
noise RMS over the same span.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speech.audio import SAMPLE_RATE
from speech.tts import EspeakTTS


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice setting: voice name (with variant), speed in wpm, pitch 0-99."""

    voice: str
    speed: int
    pitch: int

    @property
    def label(self) -> str:
        """Short id used in reports."""
        return f"{self.voice}@{self.speed}wpm/p{self.pitch}"


#: Test voices (variants; none is a bare default ``en``/``en-us`` voice).
TEST_VOICES: tuple[Voice, ...] = (
    Voice("en-us+m2", 150, 45),
    Voice("en-gb+f4", 165, 60),
    Voice("en-us+m5", 175, 35),
    Voice("en-gb-x-rp+m6", 140, 50),
    Voice("en-us+f2", 160, 65),
    Voice("en-gb+m4", 185, 40),
)

#: Voices for non-command chatter (other people in the room).
CHATTER_VOICES: tuple[Voice, ...] = (
    Voice("en-us+m8", 170, 40),
    Voice("en-gb+f1", 160, 70),
    Voice("en-us+m6", 185, 30),
    Voice("en-gb-x-rp+f5", 150, 55),
    Voice("en-029+m1", 165, 45),
)

#: Development voices (neither test, chatter nor feed voices): the recogniser's settings
#: (beams, denoiser floor and SNR switch, end-of-utterance rules) were chosen on these, with
#: ``cat.expand(max_per_intent=8)`` commands at 15 / 5 dB (seeds 7000+) and STAFF_CHATTER in
#: DEV_CHATTER_VOICES (seeds 7600+ and 8000+), never on the benchmark's test set.
DEV_VOICES: tuple[Voice, ...] = (
    Voice("en-us+Andy", 155, 50),
    Voice("en-gb+steph", 170, 55),
    Voice("en-us+mike", 165, 40),
    Voice("en-gb+edward", 150, 45),
    Voice("en-us+linda", 160, 60),
    Voice("en-gb+paul", 180, 40),
)
DEV_CHATTER_VOICES: tuple[Voice, ...] = (
    Voice("en-us+john", 170, 45),
    Voice("en-gb+Annie", 160, 65),
    Voice("en-us+max", 180, 35),
    Voice("en-gb+david", 150, 50),
)

#: Staff chatter in the theatre (not addressed to the copilot; some share its vocabulary).
STAFF_CHATTER: tuple[str, ...] = (
    "can I have the suction please",
    "pressure is at twelve millimetres of mercury",
    "pass me the clip applier",
    "the patient's blood pressure is stable",
    "let me know when you want the camera moved",
    "we are going to need another port here",
    "could you turn the lights down a little",
    "I think the cystic duct is quite short in this patient",
    "the gallbladder looks inflamed",
    "is anyone getting the next patient ready",
    "irrigation please",
    "how long has the case been going",
    "the anaesthetist wants to know how much longer",
    "let's take a look at the liver first",
    "we need more retraction on the fundus",
    "that bleeding has stopped now",
    "the scrub nurse is changing over in five minutes",
    "can you zoom out a bit",
    "the diathermy pad is on the left thigh",
    "what time is the next case scheduled",
    "I will clip the artery first and then the duct",
    "the critical view looks good to me",
    "hold the camera steady please",
    "turn up the insufflation",
    "we should send this for histology",
    "count the swabs before we close",
    "the bowel looks healthy all the way along",
    "check the small bowel for any injury",
    "give me the hook again",
    "the monitor keeps beeping",
    "okay let's move on to the dissection",
    "please mark the time for the record",
    "did anyone page the registrar",
    "the duodenum is stuck to the gallbladder here",
    "show me the other side",
    "that is the common bile duct do not touch it",
    "stop the insufflation for a moment",
    "I need a new clip",
    "what is the heart rate now",
    "where is the retrieval bag",
    "this is going to be a difficult one",
    "keep the camera on the triangle",
    "can someone call the pharmacy",
    "the trocar is slipping out",
    "remind me to write the operation note",
    "the coffee machine on the ward is broken again",
    "we finished the last case early yesterday",
    "his wife is waiting outside",
    "the light cable is too hot",
    "put the patient slightly head up",
)


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    pink = np.fft.irfft(spec / np.sqrt(f), n)
    return pink / (np.std(pink) + 1e-12)


def _band_noise(n: int, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    sos = butter(4, [lo, hi], btype="band", fs=SAMPLE_RATE, output="sos")
    x = sosfilt(sos, rng.standard_normal(n))
    return x / (np.std(x) + 1e-12)


def or_noise(duration_s: float, seed: int = 0) -> np.ndarray:
    """Operating-room noise at 16 kHz, unit RMS (float32). See the module docstring."""
    rng = np.random.default_rng(seed)
    n = max(1, int(round(duration_s * SAMPLE_RATE)))
    t = np.arange(n) / SAMPLE_RATE
    x = 0.6 * _pink(n, rng)
    # pulse oximeter beeps
    period = rng.uniform(0.8, 1.1)
    freq = rng.uniform(880, 1000)
    phase0 = rng.uniform(0, period)
    gate = (((t + phase0) % period) < 0.12).astype(np.float64)
    x += 0.5 * gate * np.sin(2 * np.pi * freq * t)
    # suction hiss and diathermy buzz bursts
    for _ in range(max(1, int(duration_s / 4))):
        start = int(rng.uniform(0, max(1, n - 1)))
        length = int(rng.uniform(1.0, 3.0) * SAMPLE_RATE)
        seg = slice(start, min(n, start + length))
        m = seg.stop - seg.start
        if m <= 0:
            continue
        env = np.hanning(m)
        if rng.random() < 0.5:
            x[seg] += 0.7 * env * _band_noise(m, 1500, 6000, rng)
        else:
            f0 = rng.choice([100.0, 120.0])
            tt = np.arange(m) / SAMPLE_RATE
            buzz = sum(np.sign(np.sin(2 * np.pi * f0 * k * tt)) / k for k in (1, 3, 5))
            x[seg] += 0.25 * env * buzz
    # instrument clicks
    for _ in range(int(duration_s * 0.7)):
        i = int(rng.uniform(0, n))
        k = min(n - i, 160)
        click = np.exp(-np.arange(k) / 20.0) * rng.standard_normal(k)
        x[i : i + k] += rng.uniform(0.5, 1.5) * click
    x -= x.mean()
    return (x / (np.std(x) + 1e-12)).astype(np.float32)


def active_rms(speech: np.ndarray) -> float:
    """RMS over samples where |x| exceeds 2 % of the peak (speech-active part)."""
    if speech.size == 0:
        return 0.0
    peak = float(np.max(np.abs(speech)))
    act = speech[np.abs(speech) > 0.02 * peak]
    return float(np.sqrt(np.mean(act.astype(np.float64) ** 2))) if act.size else 0.0


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, lead_s: float = 0.5,
               tail_s: float = 0.8, level: float = 0.25) -> tuple[np.ndarray, float, float]:
    """Place ``speech`` after ``lead_s`` of noise, add noise so SNR = ``snr_db``.

    Returns (mix, speech_start_s, speech_end_s). The speech's active RMS is scaled to
    ``level``; the mix is clipped to [-1, 1].
    """
    lead = int(lead_s * SAMPLE_RATE)
    tail = int(tail_s * SAMPLE_RATE)
    n = lead + len(speech) + tail
    if len(noise) < n:
        noise = np.tile(noise, int(np.ceil(n / max(1, len(noise)))))
    s = speech * (level / (active_rms(speech) + 1e-12))
    nz = noise[:n] / (np.sqrt(np.mean(noise[:n].astype(np.float64) ** 2)) + 1e-12)
    nz = nz * level / (10 ** (snr_db / 20.0))
    out = nz.astype(np.float32).copy()
    out[lead : lead + len(s)] += s
    return np.clip(out, -1, 1), lead / SAMPLE_RATE, (lead + len(s)) / SAMPLE_RATE


def trim_silence(x: np.ndarray, thresh: float = 0.01) -> np.ndarray:
    """Remove leading / trailing samples below ``thresh`` (espeak-ng pads its output)."""
    idx = np.nonzero(np.abs(x) > thresh)[0]
    if idx.size == 0:
        return x
    return x[idx[0] : idx[-1] + 1]


def speak(text: str, voice: Voice) -> np.ndarray:
    """espeak-ng speech for ``text`` in ``voice``, 16 kHz float32, silence trimmed."""
    tts = EspeakTTS(voice=voice.voice, speed=voice.speed, pitch=voice.pitch)
    return trim_silence(tts.synthesize(text).at_16k())


@dataclass
class Sample:
    """One test utterance: audio (16 kHz), the spoken text, and where the speech lies (s)."""

    audio: np.ndarray
    text: str
    voice: Voice
    snr_db: float
    speech_start_s: float
    speech_end_s: float
    truth: object = None


def make_sample(text: str, voice: Voice, snr_db: float, seed: int, truth: object = None
                ) -> Sample:
    """Speak ``text`` in ``voice`` and mix it with OR noise at ``snr_db``."""
    sp = speak(text, voice)
    noise = or_noise(len(sp) / SAMPLE_RATE + 1.5, seed=seed)
    mix, a, b = mix_at_snr(sp, noise, snr_db)
    return Sample(mix, text, voice, snr_db, a, b, truth)
