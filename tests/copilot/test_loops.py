"""copilot.loops: the status line's frame rate and latency (OutputMeter)."""

from __future__ import annotations

import pytest

from copilot.loops import OutputMeter

MS = 1_000_000  # ns


def test_output_meter_counts_frames_over_its_sliding_window():
    m = OutputMeter(window_s=2.0)
    assert m.fps == 0.0 and m.latency_ms is None
    m.note(0, 40 * MS)
    assert m.fps == 0.0  # one frame: no interval yet
    assert m.latency_ms == 40.0 and m.last_out_ns == 40 * MS
    for k in range(1, 31):  # 30 fps for 1 s
        m.note(k * 33 * MS, k * 33 * MS + 5 * MS)
    assert m.fps == pytest.approx(30 / (0.995 - 0.040), rel=1e-6)  # 31 frames in 0.955 s
    assert m.latency_ms == 5.0
    m.note(10_000 * MS, 10_000 * MS)  # after a pause: only this frame is in the window
    assert m.fps == pytest.approx(30 / 0.955, rel=1e-6)  # kept until two are in


def test_output_meter_rate_is_frames_per_second_within_the_window():
    m = OutputMeter(window_s=1.0)
    for k in range(50):  # 10 fps for 5 s
        m.note(k * 100 * MS, k * 100 * MS)
    assert m.fps == pytest.approx(10.0)
