"""Audio of a synthetic feed: the scripted lines (``Line``) placed without overlaps,
spoken by ``speech.synth`` over the OR soundscape, mixed into audio.wav; the utterances and
the noise description go into the truth. Times are seconds from the start of the feed,
levels RMS of samples in [-1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from copilot.feed_truth import round_s

AUDIO_RATE = 16000  # Hz
#: Speech level (RMS) of lines spoken to the copilot and of background chatter.
ADDRESSED_RMS = 0.1
CHATTER_RMS = 0.06


@dataclass
class Line:
    """A scripted utterance: wanted start time, who, what, and the expected parse.

    ``facts`` computes the expected facts from the truth at the end of the utterance.
    """

    at_s: float
    speaker: str
    text: str
    addressed: bool
    intent: str | None = None
    slots: dict = field(default_factory=dict)
    facts: Callable[[float], list[str]] | list[str] = field(default_factory=list)
    voice: str | None = None  # speech.synth.VOICES name; defaults to the speaker's name
    priority: int = 1  # 0 = tied to an event, placed first; 2 = chatter, placed last


def _place(lines: list[Line], audio: list[np.ndarray], duration: float, gap: float = 0.6
           ) -> list[tuple[Line, np.ndarray, float]]:
    """Start times without overlaps: by priority, each line at the first free slot at or
    after its wanted time; lines that would run past the end are dropped."""
    order = sorted(range(len(lines)), key=lambda i: (lines[i].priority, lines[i].at_s, i))
    busy: list[tuple[float, float]] = []
    out = []
    for i in order:
        ln, a = lines[i], audio[i]
        dur = len(a) / AUDIO_RATE
        start = max(ln.at_s, 0.25)
        for b0, b1 in sorted(busy):
            if start + dur + gap <= b0:
                break
            if start < b1 + gap:
                start = max(start, b1 + gap)
        if start + dur > duration - 0.2:
            continue
        busy.append((start, start + dur))
        out.append((ln, a, start))
    out.sort(key=lambda x: x[2])
    return out


def write_audio(out: Path, truth: dict, fps: float, seed: int, script: list[Line] | None
                ) -> None:
    """Write ``out``/audio.wav (soundscape + the ``script`` spoken; None: no speech) and
    fill ``truth["utterances"]`` and ``truth["noise"]``."""
    from speech.synth import VOICES, Soundscape, mix, render_soundscape, synthesize, write_wav

    n = int(round(truth["n_frames"] / fps * AUDIO_RATE))
    cautery = [(e["time_s"], e["time_s"] + e["duration_s"]) for e in truth["events"]
               if e["kind"] == "cautery"]
    suction = [(e["time_s"], e["time_s"] + e["duration_s"]) for e in truth["events"]
               if e["kind"] == "suction"]
    params = Soundscape()
    bg = render_soundscape(truth["duration_s"], seed, cautery, suction, params,
                           AUDIO_RATE, n_samples=n)
    floor_rms = float(np.sqrt(np.mean(render_soundscape(
        min(truth["duration_s"], 5.0), seed, (), (), params, AUDIO_RATE) ** 2)))
    placed: list[tuple[Line, np.ndarray, float]] = []
    if script is not None:
        voices = [synthesize(ln.text, ln.voice or ln.speaker) for ln in script]
        placed = _place(script, voices, truth["duration_s"])
    audio = mix(bg, [(s, a, ADDRESSED_RMS if ln.addressed else CHATTER_RMS)
                     for ln, a, s in placed], AUDIO_RATE)
    write_wav(out / "audio.wav", audio, AUDIO_RATE)
    utts = []
    for ln, a, s in placed:
        end = s + len(a) / AUDIO_RATE
        facts = ln.facts(end) if callable(ln.facts) else list(ln.facts)
        utts.append({
            "start_s": round_s(s), "end_s": round_s(end), "speaker": ln.speaker,
            "voice": {"name": ln.voice or ln.speaker, **VOICES[ln.voice or ln.speaker].as_dict()},
            "text": ln.text, "addressed": ln.addressed,
            "intent": ln.intent if ln.addressed else None,
            "slots": dict(ln.slots) if ln.addressed else None,
            "expected_facts": facts if ln.addressed else [],
        })
    truth["utterances"] = utts
    truth["noise"] = {
        "snr_db": round_s(20 * math.log10(ADDRESSED_RMS / max(floor_rms, 1e-9))),
        "chatter_snr_db": round_s(20 * math.log10(CHATTER_RMS / max(floor_rms, 1e-9))),
        "floor_rms": round_s(floor_rms),
        "sources": ["noise_floor", "mains_hum", "ventilation", "monitor_beeps",
                    *(["cautery"] if cautery else []), *(["suction"] if suction else []),
                    *(["staff_chatter"] if any(not u["addressed"] for u in utts) else [])],
        "params": params.as_dict(),
        "sample_rate": AUDIO_RATE,
    }

