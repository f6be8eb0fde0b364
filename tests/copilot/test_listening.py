"""copilot.listening: a recogniser's transcript as a runtime message with its spans."""

from __future__ import annotations

from copilot.clock import ManualClock
from copilot.listening import transcript_message
from copilot.tracing import Tracer
from speech.asr import Transcript


def _clock_tracer() -> tuple[ManualClock, Tracer]:
    clock = ManualClock(start_ns=3_000_000_000)
    return clock, Tracer(None, clock)


def test_an_accepted_transcript_keeps_its_text_and_times_its_utterance():
    clock, tracer = _clock_tracer()
    tr = Transcript("copilot what phase", 0.8, nbest=[("copilot what phase", 0.8)],
                    start_s=1.0, end_s=2.5, speaker_score=0.7)
    msg = transcript_message(tr, clock, tracer, lambda s: int(s * 1e9))  # paced: known
    assert msg.text == "copilot what phase" and msg.accepted and msg.confidence == 0.8
    assert (msg.start_s, msg.end_s, msg.media_t_s, msg.t_ns) == (1.0, 2.5, 2.5, 3_000_000_000)
    assert msg.nbest == [("copilot what phase", 0.8)] and msg.speaker_score == 0.7
    assert msg.trace_id.startswith("u1000-")
    assert tracer.percentiles("speech.utterance")["p50"] == 1500.0  # 1.0 .. 2.5 s
    assert tracer.percentiles("speech.final")["p50"] == 500.0  # audio end .. now


def test_a_rejected_transcript_hides_its_text_and_unknown_audio_times_write_no_span():
    clock, tracer = _clock_tracer()
    tr = Transcript("maybe words", 0.2, nbest=[("maybe words", 0.2)], start_s=1.0, end_s=2.0,
                    accepted=False, reason="out of grammar")
    msg = transcript_message(tr, clock, tracer, lambda s: None)  # fast mode: unknown
    assert msg.text == "" and msg.nbest == [] and not msg.accepted
    assert msg.reason == "out of grammar"
    assert tracer.keys() == []
