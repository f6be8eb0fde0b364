"""AudioOut plays a message while the TTS is still producing it (first audio = first chunk)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np

from speech.audio_out import AudioOut, Priority


class SlowStreamTTS:
    """Yields 0.1 s chunks, one every 50 ms; records when the last chunk was produced."""

    name = "slow"
    rate = 16000

    def __init__(self) -> None:
        self.finished_at: float | None = None
        self.closed = threading.Event()

    def stream(self, text: str) -> Iterator[np.ndarray]:
        try:
            for _ in range(10):
                time.sleep(0.05)
                yield np.full(1600, 0.1, np.float32)
            self.finished_at = time.monotonic()
        finally:
            self.closed.set()


class RecordingSink:
    def __init__(self) -> None:
        self.writes: list[tuple[float, int]] = []

    def write(self, block: np.ndarray, rate: int) -> None:
        self.writes.append((time.monotonic(), len(block)))

    def close(self) -> None:
        pass


def test_first_block_plays_before_the_tts_has_finished():
    tts, sink = SlowStreamTTS(), RecordingSink()
    out = AudioOut(tts, sink)
    try:
        out.say("a long answer", Priority.ANSWER)
        assert out.wait_idle(5.0)
    finally:
        out.close()
    assert tts.finished_at is not None and sink.writes
    assert sink.writes[0][0] < tts.finished_at - 0.3  # ~9 chunks were still to come
    assert sum(n for _, n in sink.writes) == 16000  # every sample played once
    assert out.history[-1].outcome == "done" and 0 < out.history[-1].first_audio_s < 0.3


def test_a_cut_message_closes_the_stream():
    tts, sink = SlowStreamTTS(), RecordingSink()
    out = AudioOut(tts, sink)
    try:
        out.say("a long answer", Priority.ANSWER)
        deadline = time.monotonic() + 5
        while not sink.writes and time.monotonic() < deadline:
            time.sleep(0.01)
        out.stop()
        assert out.wait_idle(5.0)
    finally:
        out.close()
    assert tts.closed.is_set() and tts.finished_at is None
    assert out.history[-1].outcome == "stopped"
