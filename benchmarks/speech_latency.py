"""Last spoken sample -> transcript through the real listener, fed in real time.

    python -m benchmarks.speech_latency [--split dev|test] [--asr default|hybrid-sync|...]

The listener (silero VAD, early end, the recogniser) gets the utterances one 32 ms chunk at a
time at the pace a microphone delivers them (a chunk is pushed once its last sample has
"arrived"); a transcript's latency is the wall time from the moment its last spoken sample
arrived to the moment ``Listener.push`` returned it. Whatever the recogniser does in the
background (a speculative decode in another thread) therefore counts exactly as it would
live, and a decode slower than the audio shows as backlog. Dev: the natural-voice dev
voices and sentences (choices are made here); test: the voices ``bench_speech`` reports on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from copilot.listening import AUDIO_CHUNK as CHUNK
from copilot.stats import percentile
from speech.audio import SAMPLE_RATE as RATE


def paced_latency(asr, samples: list, gap_s: float = 0.6) -> dict:  # noqa: ANN001 - ASR
    """Latency of each utterance in ``samples`` (``speech.testset.Sample``) fed in real time
    with ``gap_s`` of their own noise between them (ms: p50 / p95 / max and each value)."""
    from speech.listener import Listener
    from speech.vad import Segmenter, SileroVAD

    lis = Listener(Segmenter(SileroVAD()), asr, None)
    parts, ends, off = [], [], 0
    for s in samples:
        parts.append(s.audio)
        ends.append(off + int(round(s.speech_end_s * RATE)))
        off += len(s.audio)
    audio = np.concatenate(parts + [np.zeros(int(gap_s * RATE), np.float32)])
    n = len(audio) // CHUNK
    got: list[tuple[float, float, bool]] = []  # (end_s of the transcript, wall, accepted)
    t0 = time.perf_counter()
    behind = 0.0
    for k in range(n):
        due = t0 + (k + 1) * CHUNK / RATE
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        else:
            behind = max(behind, now - due)
        for tr in lis.push(audio[k * CHUNK:(k + 1) * CHUNK]):
            got.append((tr.end_s, time.perf_counter(), bool(tr.accepted)))
    for tr in lis.flush():
        got.append((tr.end_s, time.perf_counter(), bool(tr.accepted)))
    lat = []
    for e in ends:
        # the transcript closing this utterance: the first one that ends after its speech
        later = [(w, a) for end_s, w, a in got if end_s * RATE >= e - CHUNK]
        if later:
            w, _ = later[0]
            lat.append(w - (t0 + e / RATE))
    ms = [round(x * 1e3, 1) for x in lat]
    return {"speech_end_to_transcript_ms": {
                "p50": round(percentile(lat, 50) * 1e3, 1) if lat else None,
                "p95": round(percentile(lat, 95) * 1e3, 1) if lat else None,
                "max": max(ms) if ms else None},
            "each_ms": ms, "utterances": len(samples), "transcripts": len(got),
            "accepted": sum(int(a) for _, _, a in got), "early_ends": lis.stats.early_ends,
            "most_behind_ms": round(behind * 1e3, 1),
            "definition": "wall time from the arrival of the last spoken sample (audio fed "
                          "in real time, 32 ms chunks) to Listener.push returning its "
                          "transcript"}


def samples_for(split: str, n: int = 18, snr: float = 15.0) -> list:
    """``n`` commands of ``split``: its sentences in its Piper joe and espeak-ng voices."""
    from benchmarks.speech_natural import split_sentences
    from kg_reasoning.catalogue import load_catalogue
    from speech.natural import natural_sample, voices

    sents = split_sentences(load_catalogue(), split)
    vs = [*voices("piper-joe", split), *voices("espeak-heldout", split)]
    seed = {"dev": 78000, "test": 88000}[split]
    return [natural_sample(sents[i % len(sents)][0], vs[i % len(vs)], snr, seed + i)
            for i in range(n)]


def build(name: str):  # noqa: ANN201 - an ASR
    """The recogniser ``name`` as ``copilot run`` builds it (``copilot.cli_speech``)."""
    from copilot.cli_speech import build_listener

    return build_listener(asr=name).asr


def main(argv: list[str] | None = None) -> int:
    """CLI: print the paced latency of each recogniser named on ``split`` as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="dev", choices=("dev", "test"))
    ap.add_argument("--asr", default="default", help="comma-separated build_listener names")
    ap.add_argument("--n", type=int, default=18)
    ap.add_argument("--snr", type=float, default=15.0)
    a = ap.parse_args(argv)
    samples = samples_for(a.split, a.n, a.snr)
    out = {"split": a.split, "snr_db": a.snr, "load_avg_at_start": os.getloadavg()}
    for name in a.asr.split(","):
        asr = build(name)
        if hasattr(asr, "warm_up"):
            asr.warm_up(samples[0].audio)
        out[name] = paced_latency(asr, samples)
        print(name, out[name]["speech_end_to_transcript_ms"], file=sys.stderr)
    out["load_avg_at_end"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
