"""Synthetic OR audio: espeak-ng utterances in several voices over an OR soundscape.

Voices (``VOICES``; espeak-ng voice + variant, words per minute, pitch 0-99, amplitude):

| name | espeak-ng voice | speed (wpm) | pitch | who |
| --- | --- | --- | --- | --- |
| surgeon | en-us+m3 | 160 | 42 | the operating surgeon (the enrolled voice) |
| surgeon_fast | en-us+m3 | 190 | 42 | the same surgeon speaking quickly |
| surgeon_b | en-gb+m1 | 150 | 55 | a second surgeon |
| assistant | en-us+m7 | 175 | 32 | the assisting surgeon |
| nurse | en-us+f3 | 165 | 62 | the scrub nurse |
| anaesthetist | en-gb-scotland+f2 | 150 | 50 | the anaesthetist |

The soundscape (``render_soundscape``) is a continuous noise floor (pink noise + mains hum +
ventilation rumble) that never drops to digital silence, pulse-oximeter beeps at the heart
rate, suction bursts (band-passed hiss with gurgle), and electrocautery bursts (a buzzing
square wave with crackle). ``mix`` places utterances at given times at a speech level and
keeps the noise floor ``snr_db`` below it. Everything random is drawn from a seeded
``numpy.random.Generator``; espeak-ng itself is deterministic.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import asdict, dataclass

import numpy as np
import soundfile as sf
from scipy import signal

from speech.errors import SpeechError

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: ``voice`` (language+variant), speed in words/min, pitch 0-99."""

    voice: str
    speed: int
    pitch: int
    amplitude: int = 120

    def as_dict(self) -> dict:
        """The fields as a JSON-ready dict."""
        return asdict(self)


VOICES: dict[str, Voice] = {
    "surgeon": Voice("en-us+m3", 160, 42),
    "surgeon_fast": Voice("en-us+m3", 190, 42),
    "surgeon_b": Voice("en-gb+m1", 150, 55),
    "assistant": Voice("en-us+m7", 175, 32),
    "nurse": Voice("en-us+f3", 165, 62),
    "anaesthetist": Voice("en-gb-scotland+f2", 150, 50),
}


def espeak_available() -> bool:
    """True when the espeak-ng binary is on PATH."""
    return shutil.which("espeak-ng") is not None


def synthesize(text: str, voice: Voice | str = "surgeon", sample_rate: int = SAMPLE_RATE
               ) -> np.ndarray:
    """Speak ``text`` with espeak-ng; float32 mono at ``sample_rate`` Hz, leading/trailing
    silence trimmed, peak-normalised to 0.9."""
    if isinstance(voice, str):
        if voice not in VOICES:
            raise SpeechError(f"unknown voice {voice!r}; voices: {', '.join(VOICES)}")
        voice = VOICES[voice]
    if not text.strip():
        raise SpeechError("cannot synthesize empty text")
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SpeechError("espeak-ng is not installed (apt-get install espeak-ng)")
    cmd = [exe, "--stdout", "-v", voice.voice, "-s", str(voice.speed), "-p", str(voice.pitch),
           "-a", str(voice.amplitude), text]
    try:
        out = subprocess.run(cmd, capture_output=True, check=True, timeout=60).stdout
    except subprocess.CalledProcessError as exc:
        raise SpeechError(f"espeak-ng failed for voice {voice.voice!r}: "
                          f"{exc.stderr.decode(errors='replace').strip()}") from exc
    audio, sr = sf.read(io.BytesIO(out), dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if sr != sample_rate:
        g = np.gcd(int(sr), int(sample_rate))
        audio = signal.resample_poly(audio, sample_rate // g, int(sr) // g).astype(np.float32)
    nz = np.flatnonzero(np.abs(audio) > 1e-3)
    if nz.size:
        audio = audio[max(0, nz[0] - sample_rate // 50): nz[-1] + sample_rate // 20]
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 0:
        audio = audio / peak * 0.9
    return audio.astype(np.float32)


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    """Pink-ish noise (Paul Kellet's filter), unit RMS."""
    white = rng.standard_normal(n).astype(np.float32)
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1, -2.494956002, 2.017265875, -0.522189400]
    p = signal.lfilter(b, a, white).astype(np.float32)
    return p / (float(np.sqrt(np.mean(p ** 2))) + 1e-9)


def _band(rng: np.random.Generator, n: int, lo: float, hi: float, sr: int) -> np.ndarray:
    sos = signal.butter(4, [lo, hi], btype="band", fs=sr, output="sos")
    x = signal.sosfilt(sos, rng.standard_normal(n)).astype(np.float32)
    return x / (float(np.sqrt(np.mean(x ** 2))) + 1e-9)


def _env(n: int, sr: int, attack: float = 0.02, release: float = 0.05) -> np.ndarray:
    """Linear attack / release envelope of ``n`` samples (times in seconds)."""
    e = np.ones(n, np.float32)
    a = min(n, max(1, int(attack * sr)))
    r = min(n, max(1, int(release * sr)))
    e[:a] *= np.linspace(0, 1, a, dtype=np.float32)
    e[n - r:] *= np.linspace(1, 0, r, dtype=np.float32)
    return e


@dataclass
class Soundscape:
    """Parameters of the OR background; levels are RMS relative to full scale."""

    floor_rms: float = 0.008
    hum_hz: float = 50.0
    heart_rate_bpm: float = 72.0
    beep_hz: float = 880.0
    beep_rms: float = 0.03
    suction_rms: float = 0.05
    cautery_rms: float = 0.05

    def as_dict(self) -> dict:
        """The fields as a JSON-ready dict."""
        return asdict(self)


def render_soundscape(duration_s: float, seed: int, cautery: list[tuple[float, float]] = (),
                      suction: list[tuple[float, float]] = (), params: Soundscape | None = None,
                      sample_rate: int = SAMPLE_RATE, n_samples: int | None = None
                      ) -> np.ndarray:
    """The OR background for ``duration_s`` seconds (float32 mono).

    ``cautery`` / ``suction``: (start_s, end_s) intervals of those sounds.
    """
    p = params or Soundscape()
    sr = sample_rate
    n = int(round(duration_s * sr)) if n_samples is None else int(n_samples)
    if n <= 0:
        raise SpeechError(f"duration must be positive, got {duration_s!r}")
    rng = np.random.default_rng([seed, 303])
    t = np.arange(n, dtype=np.float32) / sr
    # noise floor: pink noise + ventilation rumble + mains hum with harmonics
    floor = _pink(rng, n) * 0.8
    rumble = signal.sosfilt(signal.butter(2, 180, fs=sr, output="sos"),
                            rng.standard_normal(n)).astype(np.float32)
    rumble /= float(np.sqrt(np.mean(rumble ** 2))) + 1e-9
    hum = (np.sin(2 * np.pi * p.hum_hz * t) + 0.5 * np.sin(2 * np.pi * 2 * p.hum_hz * t + 0.3)
           + 0.25 * np.sin(2 * np.pi * 3 * p.hum_hz * t + 1.1)).astype(np.float32)
    out = p.floor_rms * (floor + 0.6 * rumble + 0.25 * hum)
    # pulse oximeter: one short beep per heart beat, slight rate variability
    period = 60.0 / p.heart_rate_bpm
    tb = float(rng.uniform(0, period))
    blen = int(0.07 * sr)
    beep = np.sin(2 * np.pi * p.beep_hz * np.arange(blen) / sr).astype(np.float32)
    beep *= _env(blen, sr, 0.005, 0.03) * p.beep_rms * np.sqrt(2)
    while tb < duration_s:
        i = int(tb * sr)
        m = min(blen, n - i)
        if m > 0:
            out[i:i + m] += beep[:m]
        tb += period * float(rng.uniform(0.97, 1.03))
    for a, b in suction:
        i0, i1 = int(a * sr), min(n, int(b * sr))
        if i1 <= i0:
            continue
        m = i1 - i0
        hiss = _band(rng, m, 900, 5000, sr)
        gurgle = 1 + 0.6 * np.sin(2 * np.pi * rng.uniform(5, 11) * np.arange(m) / sr) * (
            rng.random(m) > 0.3)
        out[i0:i1] += hiss * gurgle.astype(np.float32) * _env(m, sr, 0.05, 0.1) * p.suction_rms
    for a, b in cautery:
        i0, i1 = int(a * sr), min(n, int(b * sr))
        if i1 <= i0:
            continue
        m = i1 - i0
        f0 = rng.uniform(380, 520)
        tt = np.arange(m, dtype=np.float32) / sr
        buzz = np.sign(np.sin(2 * np.pi * f0 * tt)) * 0.5 + np.sin(2 * np.pi * 2 * f0 * tt) * 0.3
        crackle = (rng.random(m) > 0.995).astype(np.float32) * rng.uniform(-3, 3, m)
        crackle = signal.lfilter([1.0], [1.0, -0.7], crackle).astype(np.float32)
        x = (buzz + crackle).astype(np.float32)
        x /= float(np.sqrt(np.mean(x ** 2))) + 1e-9
        out[i0:i1] += x * _env(m, sr, 0.01, 0.03) * p.cautery_rms
    return out.astype(np.float32)


def mix(background: np.ndarray, placed: list[tuple[float, np.ndarray, float]],
        sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Add utterances to ``background``: (start_s, audio, rms) each; returns a clipped copy.

    Each utterance is scaled to the given RMS level (over its voiced part).
    """
    out = background.astype(np.float32).copy()
    for start, audio, rms in placed:
        i0 = int(round(start * sample_rate))
        if i0 < 0 or i0 >= len(out):
            raise SpeechError(f"utterance at {start:.2f} s is outside the audio")
        voiced = audio[np.abs(audio) > 0.02]
        level = float(np.sqrt(np.mean(voiced ** 2))) if voiced.size else 1.0
        seg = audio * (rms / max(level, 1e-6))
        m = min(len(seg), len(out) - i0)
        out[i0:i0 + m] += seg[:m]
    return np.clip(out, -1.0, 1.0)


def write_wav(path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write float audio in [-1, 1] as 16-bit PCM mono."""
    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)
    sf.write(str(path), pcm, sample_rate, subtype="PCM_16")
