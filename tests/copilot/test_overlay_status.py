"""The status line: drawn from a cached text layer, refreshed on health changes at once and
on changing numbers at most every STATUS_REFRESH_S of media."""

from __future__ import annotations

import numpy as np

from copilot.messages import VideoFrame
from copilot.overlay import Compositor, Status


def _frame(i: int, t: float) -> VideoFrame:
    img = np.full((720, 1280, 3), 200, np.uint8)
    return VideoFrame(t_ns=0, trace_id=f"f{i}", media_t_s=t, frame_id=i, image=img, fps=30.0)


def test_status_line_is_cached_and_refreshed():
    c = Compositor()
    ok = {"decode": "ok", "vision": "ok"}
    a = c.compose(_frame(0, 0.0), [], Status(fps=30.0, latency_ms=5.0, health=ok))
    bar = a[690:]
    assert np.abs(a[:680].astype(int) - 200).max() == 0  # nothing drawn above the bar
    assert bar.min() == 0 and (bar == 50).mean() > 0.5  # darkened to 1/4, with dark outlines
    assert (bar > 150).any()  # light text
    layer = c._status_cache["pixels"]
    b = c.compose(_frame(1, 0.1), [], Status(fps=29.0, latency_ms=6.0, health=ok))
    assert c._status_cache["pixels"] is layer  # numbers changed within 0.25 s: not redrawn
    assert np.array_equal(a[690:], b[690:])
    c.compose(_frame(2, 0.2), [], Status(fps=29.0, health={**ok, "vision": "hung"}))
    assert c._status_cache["pixels"] is not layer  # a stage went bad: drawn at once
    layer = c._status_cache["pixels"]
    d = c.compose(_frame(9, 0.5), [], Status(fps=28.0, health={**ok, "vision": "hung"}))
    assert c._status_cache["pixels"] is not layer and c._status_cache["numbers"][0] == "#9"
    red = (d[690:, :, 0] > 150) & (d[690:, :, 1] < 120)  # "vision:hung" is drawn in red
    assert red.any()


def test_status_line_on_a_strided_frame_matches_a_contiguous_one():
    """A frame that is a view (e.g. a crop of a larger buffer) gets the same status line."""
    st = Status(fps=30.0, latency_ms=5.0, health={"decode": "ok"})
    a = Compositor().compose(_frame(0, 0.0), [], st)
    big = np.full((720, 1400, 3), 200, np.uint8)
    view = big[:, 60:1340]
    assert not view.flags.c_contiguous
    f = VideoFrame(t_ns=0, trace_id="f0", media_t_s=0.0, frame_id=0, image=view, fps=30.0)
    b = Compositor().compose(f, [], st, in_place=True)
    assert np.array_equal(a, b) and np.array_equal(big[:, 60:1340], a)
