"""The rooms of the feed generator: placing the scripted lines (copilot.feed_audio) and the
phase / segment intervals of the truth (copilot.feed_truth)."""

from __future__ import annotations

import numpy as np

from copilot.feed_audio import AUDIO_RATE, Line, _place
from copilot.feed_truth import _intervals, round_s


def _audio(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * AUDIO_RATE)), np.float32)


def test_place_keeps_lines_apart_by_priority_and_drops_what_runs_past_the_end() -> None:
    lines = [Line(1.0, "nurse", "chatter", False, priority=2),
             Line(1.2, "surgeon", "question", True, priority=0),
             Line(9.5, "surgeon", "too late", True, priority=1)]
    placed = _place(lines, [_audio(2.0), _audio(1.0), _audio(1.0)], duration=10.0)
    starts = {ln.text: s for ln, _, s in placed}
    assert set(starts) == {"chatter", "question"}  # 9.5 + 1.0 s runs past 10 - 0.2 s
    assert starts["question"] == 1.2  # the event-tied line keeps its wanted time
    assert starts["chatter"] >= 1.2 + 1.0 + 0.6  # the chatter waits for it, with a gap
    assert [s for _, _, s in placed] == sorted(s for _, _, s in placed)


def test_place_never_starts_before_a_quarter_second() -> None:
    placed = _place([Line(0.0, "surgeon", "first", True)], [_audio(0.5)], duration=5.0)
    assert placed[0][2] == 0.25


def test_intervals_from_per_frame_indices() -> None:
    names = ["a", "b", "c"]
    values = [0, 0, -1, 1, 1, 1, 0]
    out = _intervals(values, 2.0, names, {"b": (1.4, 3.1)})
    assert [(o["name"], o["start_frame"], o["end_frame"]) for o in out] == [
        ("a", 0, 2), ("b", 3, 6), ("a", 6, 7)]
    assert (out[0]["start_s"], out[0]["end_s"]) == (0.0, 1.0)  # from the frames at 2 fps
    assert (out[1]["start_s"], out[1]["end_s"]) == (1.4, 3.1)  # the plan's own times
    assert round_s(1 / 3) == 0.3333
