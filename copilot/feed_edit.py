"""Edit a made feed: add a spoken line to its audio and its truth.

Used for scenarios the generator's scripts do not speak, e.g. the surgeon confirming the
critical view of safety before clipping (``copilot.validity``)::

    add_utterance(feed_dir, "copilot, critical view confirmed", at_s=12.0,
                  intent="confirm_cvs")

The line is synthesised with espeak-ng (``speech.synth``), mixed into ``audio.wav`` at the
generator's level for addressed speech, and appended to ``truth.json`` ``utterances`` (kept
in time order); a CVS statement is also listed under ``truth["cvs_confirmations"]``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from copilot.errors import CopilotError
from copilot.feeds import ADDRESSED_RMS, load_truth

#: intents of kg_reasoning/data/teaching.yaml recorded under truth["teaching"]
TEACHING_INTENTS = frozenset({"teach_concept", "teach_negative", "forget_concept",
                              "list_taught", "locate_taught", "outline_taught", "hide_taught"})


def add_utterance(feed_dir: str | Path, text: str, at_s: float, intent: str,
                  slots: dict[str, Any] | None = None, expected_facts: list[str] | None = None,
                  voice: str = "surgeon", gap_s: float = 0.4) -> dict[str, Any]:
    """Speak ``text`` starting at ``at_s`` (media s, moved later past any line it would
    overlap, ``gap_s`` apart). Returns the truth record added."""
    import soundfile as sf

    from speech.synth import VOICES, mix, synthesize, write_wav

    feed = Path(feed_dir)
    truth = load_truth(feed)
    wav = feed / "audio.wav"
    if not wav.is_file():
        raise CopilotError(f"{feed} has no audio.wav to speak into")
    audio, rate = sf.read(wav, dtype="float32")
    line = synthesize(text, voice, sample_rate=rate)
    dur = len(line) / rate
    start = float(at_s)
    for u in sorted(truth["utterances"], key=lambda u: u["start_s"]):
        if start < u["end_s"] + gap_s and start + dur + gap_s > u["start_s"]:
            start = u["end_s"] + gap_s
    if start + dur > len(audio) / rate:
        raise CopilotError(f"no room for {text!r} at or after {at_s:.1f} s in {feed}")
    write_wav(wav, mix(np.asarray(audio), [(start, line, ADDRESSED_RMS)], rate), rate)
    rec = {"start_s": round(start, 4), "end_s": round(start + dur, 4), "speaker": voice,
           "voice": {"name": voice, **VOICES[voice].as_dict()}, "text": text,
           "addressed": True, "intent": intent, "slots": dict(slots or {}),
           "expected_facts": list(expected_facts or [])}
    truth["utterances"] = sorted([*truth["utterances"], rec], key=lambda u: u["start_s"])
    if intent in TEACHING_INTENTS:  # teaching by example (copilot.teaching)
        truth.setdefault("teaching", []).append(
            {"t_s": rec["end_s"], "intent": intent, "name": (slots or {}).get("name")})
    if intent in ("confirm_cvs", "deny_cvs"):
        truth.setdefault("cvs_confirmations", []).append(
            {"t_s": rec["end_s"], "confirmed": intent == "confirm_cvs"})
    (feed / "truth.json").write_text(json.dumps(truth, indent=1))
    return rec
