"""benchmarks/speech_latency.py: the listener fed in real time, latency per utterance."""

from __future__ import annotations

import time

import pytest

from tests.fakes.speech import FakeASR


def test_paced_latency_times_each_utterance_from_its_last_spoken_sample():
    pytest.importorskip("onnxruntime")
    from benchmarks.speech_latency import paced_latency
    from speech.testset import TEST_VOICES, make_sample

    samples = [make_sample("copilot what phase are we in", TEST_VOICES[0], 20.0, 1),
               make_sample("copilot hide the overlays", TEST_VOICES[1], 20.0, 2)]
    asr = FakeASR(["copilot what phase are we in", "copilot hide the overlays"])
    t0 = time.perf_counter()
    r = paced_latency(asr, samples, gap_s=0.6)
    took = time.perf_counter() - t0
    each = r["each_ms"]
    assert r["utterances"] == 2 and r["transcripts"] == 2 and len(each) == 2
    # the VAD's hang-over and silero's lag: later than the last word, and not by seconds
    assert all(30.0 < x < 1500.0 for x in each), each
    assert r["speech_end_to_transcript_ms"]["max"] == max(each)
    # fed in real time: the run lasts at least as long as the audio
    assert took >= 0.95 * (sum(len(s.audio) for s in samples) / 16000 + 0.6)
    assert len(asr.finished) == 2
