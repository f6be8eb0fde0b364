"""The copilot's speech time line is spooled to disk: long runs keep only an index in RAM."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from speech.audio import SAMPLE_RATE
from speech.audio_out import TimelineWavWriter
from speech.errors import SpeechError


def test_timeline_spools_to_disk_and_streams_the_same_audio(tmp_path):
    w = TimelineWavWriter(block_s=0.7)  # blocks that straddle utterances
    rng = np.random.default_rng(5301)
    placed = []
    for k in range(200):  # 200 utterances of 0.25 s, one every 2 s: 400 s of time line
        x = rng.uniform(-0.5, 0.5, SAMPLE_RATE // 4).astype(np.float32)
        placed.append((w.add(2.0 * k, x), x))
    assert w.end_s == pytest.approx(398.25)
    p = w.save(tmp_path / "copilot_speech.wav", 400.0)
    # nothing but a small index stays in memory: no arrays are held
    assert len(w.items) == 200 and all(isinstance(v, int) for it in w.items for v in it)
    y, rate = sf.read(str(p), dtype="float32")
    assert rate == SAMPLE_RATE and len(y) == 400 * SAMPLE_RATE
    for t, x in placed[::37]:
        a = int(round(t * SAMPLE_RATE))
        assert np.max(np.abs(y[a : a + len(x)] - x)) < 2e-4
        assert not np.any(y[a + len(x) : a + len(x) + 100])  # silence between utterances
    assert np.array_equal(np.round(w.render(400.0) * 32768), np.round(y * 32768))
    assert not (tmp_path / "copilot_speech.wav.part").exists()
    w.close()


def test_timeline_blocks_of_one_message_are_contiguous_and_mix_under_the_feed(tmp_path):
    w = TimelineWavWriter()
    start = w.add(1.0, np.zeros(0, np.float32))  # reserve the start of a message
    for _ in range(5):  # a message arrives in blocks of 0.1 s at 22.05 kHz
        w.add(w.end_s, np.full(2205, 0.2, np.float32), rate=22050)
    assert start == 1.0 and w.end_s == pytest.approx(1.5, abs=1e-3)
    under = np.full(3 * SAMPLE_RATE, 0.1, np.float32)
    y, _ = sf.read(str(w.save(tmp_path / "mix.wav", under=under)), dtype="float32")
    assert len(w.items) == 1  # the five blocks went through one resampler, contiguous
    assert len(y) == 3 * SAMPLE_RATE
    assert y[SAMPLE_RATE // 2] == pytest.approx(0.05, abs=1e-3)  # feed audio at half gain
    assert y[int(1.2 * SAMPLE_RATE)] == pytest.approx(0.25, abs=2e-3)  # speech over it
    with pytest.raises(SpeechError):
        w.add(-1.0, np.zeros(10, np.float32))
    short = TimelineWavWriter(max_duration_s=1.0)
    with pytest.raises(SpeechError, match="longer than its limit"):
        short.add(0.9, np.zeros(SAMPLE_RATE, np.float32))


def test_blockwise_resampling_leaves_no_clicks_at_block_edges(tmp_path):
    """A 440 Hz tone at 22.05 kHz (espeak-ng's rate) fed in 50 ms blocks comes out as the
    same smooth tone at 16 kHz: no dips where the blocks meet."""
    rate = 22050
    t = np.arange(int(1.0 * rate)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    w = TimelineWavWriter()
    w.add(0.5, np.zeros(0, np.float32), rate)
    for i in range(0, len(tone), rate // 20):
        w.add(w.end_s, tone[i : i + rate // 20], rate)
    y = w.render(2.0)
    seg = y[int(0.55 * SAMPLE_RATE) : int(1.45 * SAMPLE_RATE)]  # away from the tone's ends
    ref = 0.5 * np.sin(2 * np.pi * 440 * (np.arange(len(seg)) / SAMPLE_RATE + 0.05))
    assert np.max(np.abs(seg - ref)) < 0.01
