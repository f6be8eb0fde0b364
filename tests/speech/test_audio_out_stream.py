"""AudioOut plays a message while the TTS is still producing it (first audio = first chunk)."""

from __future__ import annotations

import pytest

from speech.audio_out import AudioOut, Priority
from tests.fakes import FakeClock, wait_until
from tests.fakes.speech import FakeSink, FakeTTS


@pytest.mark.timeout(120)  # wait_idle times out on the fake clock, which stands still
def test_first_block_plays_before_the_tts_has_finished():
    # 10 chunks of 0.1 s, each costing 50 ms of the fake clock that AudioOut times with
    clock = FakeClock()
    tts = FakeTTS(chunks=10, chunk_s=0.1, rate=16000, clock=clock, chunk_cost_s=0.05)
    produced_at_write: list[int] = []
    sink = FakeSink(on_write=lambda block: produced_at_write.append(tts.produced))
    out = AudioOut(tts, sink, clock=clock.monotonic, sleep=clock.sleep)
    try:
        out.say("a long answer", Priority.ANSWER)
        assert out.wait_idle(5.0)
    finally:
        out.close()
    assert tts.finished.is_set() and sink.writes
    assert produced_at_write[0] == 1  # ~9 chunks were still to come
    assert sum(n for n, _ in sink.writes) == 16000  # every sample played once
    assert out.history[-1].outcome == "done" and 0 < out.history[-1].first_audio_s < 0.3


def test_a_cut_message_closes_the_stream():
    tts, sink = FakeTTS(chunks=10, pause_after=1), FakeSink()
    out = AudioOut(tts, sink)
    try:
        out.say("a long answer", Priority.ANSWER)
        wait_until(lambda: sink.writes, 5.0, what="the first block")
        out.stop()
        tts.release()
        assert out.wait_idle(5.0)
    finally:
        out.close()
    assert tts.closed.is_set() and not tts.finished.is_set()
    assert out.history[-1].outcome == "stopped"
