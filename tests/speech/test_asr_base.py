"""speech.asr_base: the interface every recogniser implements, and speech.asr registering
every backend."""

from __future__ import annotations

import numpy as np
import pytest

from speech.asr_base import ASR, Transcript, Utterance
from speech.errors import SpeechError


class _Counting(ASR):
    """Reports how many samples it was fed."""

    name = "counting"

    def start(self, start_s: float = 0.0) -> Utterance:
        asr = self

        class _U(Utterance):
            def __init__(self) -> None:
                self.n = 0

            def feed(self, chunk: np.ndarray) -> None:
                assert chunk.dtype == np.float32
                self.n += len(chunk)

            def finish(self) -> Transcript:
                return Transcript(str(self.n), 1.0, start_s=start_s,
                                  end_s=start_s + self.n / 16000, backend=asr.name)

        return _U()


def test_transcribe_is_start_feed_finish():
    tr = _Counting().transcribe(np.zeros(8000, np.float64), start_s=2.0)
    assert tr.text == "8000" and tr.backend == "counting"
    assert tr.duration_s == pytest.approx(0.5)
    assert _Counting().start().partial() is None  # no partial results by default


def test_speech_asr_registers_every_backend():
    from speech.asr import ASR_BACKENDS, create_asr

    assert set(ASR_BACKENDS.names()) >= {"pocketsphinx", "faster-whisper", "hybrid",
                                          "moonshine", "moonshine-tiny", "moonshine-base"}
    with pytest.raises(SpeechError, match="unknown ASR backend"):
        create_asr("no-such-backend")
