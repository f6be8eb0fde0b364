"""A live stream that drops mid-stream is reopened with backoff; the run ends cleanly.

No RTSP server is installed here, so the stream is MPEG-TS over HTTP from a socket server the
test starts (``streams.DroppingServer``): the first connection is cut at half the bytes, the
second is closed without a reply (a failed reconnect, so the backoff is exercised), the third
serves the whole stream, then the port is closed (the stream is gone for good). The backoff
schedule itself is checked on a FakeClock with scripted connections (no server, no waiting).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import FakeClock, wait_until
from tests.reliability.conftest import assert_clean_error, cli
from tests.reliability.streams import DroppingServer, frames_of, write_ts

# a decoder stuck in C cannot be interrupted by a signal: the thread method ends the run
pytestmark = pytest.mark.timeout(120, method="thread")


@pytest.fixture(scope="module")
def ts_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_ts(tmp_path_factory.mktemp("ts") / "live.ts", 50).read_bytes()


class _Connection:
    """A scripted live connection: ``n`` frames at 25 fps, media time from 0 each time."""

    def __init__(self, n: int) -> None:
        from vision.sources import SourceInfo

        self.info = SourceInfo("fake://live", "fake", 25.0, 16, 12, None, True)
        self.n, self.truncated, self.closed = n, None, False

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        for k in range(self.n):
            yield k, k / 25.0, np.full((12, 16, 3), k, np.uint8)

    def close(self) -> None:
        self.closed = True


def _opener(script: list[int | None]):
    """Opens the script's connections in turn: a number of frames, or None (refused)."""
    from vision.errors import VisionError

    opened: list[_Connection] = []

    def opener() -> _Connection:
        if not script:
            raise VisionError("refused: the script is over")
        n = script.pop(0)
        if n is None:
            raise VisionError("refused")
        opened.append(_Connection(n))
        return opened[-1]

    return opener, opened


def test_backoff_schedule_on_a_fake_clock():
    """Tries wait base, 2x, 4x ... capped; a reconnect that delivers frames restarts the
    schedule; the gap is the backoff waited; indices and media times run on."""
    from vision.reconnect import ReconnectingSource

    clock = FakeClock(start_s=100.0, autoadvance=True)  # each wait moves it on at once
    opener, opened = _opener([5, None, 3])  # then refused for good
    src = ReconnectingSource(opener, retries=4, base_s=0.5, cap_s=1.5,
                             clock=clock.monotonic, sleep=clock.sleep)
    frames = list(src)
    # drop 1: 0.5 (refused), 1.0 (3 frames); drop 2: 0.5, 1.0, 2.0 -> 1.5 (cap), 1.5: gone
    assert clock.slept == [0.5, 1.0, 0.5, 1.0, 1.5, 1.5]
    assert clock.monotonic() == pytest.approx(100.0 + 6.0)
    assert src.gaps_s == [1.5] and src.reconnects == 1 and src.attempts == 2 + 4
    assert "4 reconnect attempts failed" in src.truncated
    assert [f[0] for f in frames] == list(range(8))
    assert np.allclose([f[1] for f in frames], np.arange(8) / 25.0)  # no jump, no repeat
    assert [int(f[2][0, 0, 0]) for f in frames] == [0, 1, 2, 3, 4, 0, 1, 2]
    assert len(opened) == 2 and all(c.closed for c in opened)


@pytest.mark.timeout(60)
def test_close_during_a_backoff_on_a_fake_clock_stops_retrying():
    from vision.reconnect import ReconnectingSource

    clock = FakeClock()  # moves only when the test says
    opener, opened = _opener([2, 2])
    src = ReconnectingSource(opener, retries=5, base_s=5.0, clock=clock.monotonic,
                             sleep=clock.sleep)
    frames: list[tuple[int, float, np.ndarray]] = []
    th = threading.Thread(target=lambda: frames.extend(src))
    th.start()
    wait_until(lambda: clock.sleepers == 1, 20.0, what="the first backoff wait")
    src.close()
    clock.advance(5.0)
    th.join(20.0)
    assert not th.is_alive() and len(frames) == 2
    assert clock.slept == [5.0] and src.attempts == 0 and len(opened) == 1  # no retry


def test_source_reconnects_with_backoff_and_keeps_counting(ts_bytes):
    from vision.sources import ReconnectingSource, open_source

    first_part = frames_of(ts_bytes[: len(ts_bytes) // 2])
    srv = DroppingServer(ts_bytes, [0.5, None, 1.0])
    try:
        src = open_source(srv.url, timeout_s=3.0)
        assert isinstance(src, ReconnectingSource) and src.info.live
        src.base_s, src.retries = 0.1, 3
        t0 = time.monotonic()
        frames = list(src)
        wall = time.monotonic() - t0
    finally:
        srv.close()
    assert srv.connections == 3 and srv.sent[1] == 0
    n = len(frames)
    # the first connection's frames + a (nearly: the decoder may hold back the last one or
    # two when the socket closes) complete second pass of 50
    assert first_part + 40 < n <= first_part + 50
    assert [f[0] for f in frames] == list(range(n))
    times = np.array([f[1] for f in frames])
    assert np.all(np.diff(times) > 0)  # media time continues across the reconnect
    assert np.diff(times).max() == pytest.approx(0.04, abs=1e-6)
    assert src.reconnects == 1
    # one failed try (0.1 s) then success (0.2 s); at the end 3 failed tries 0.1+0.2+0.4 s
    assert src.attempts == 2 + 3
    assert src.gaps_s[0] >= 0.1 + 0.2 - 0.02
    assert wall >= 0.3 + 0.7 - 0.05
    assert "3 reconnect attempts failed" in src.truncated
    assert all(f[2].shape == (120, 160, 3) for f in frames)


def test_close_stops_retrying(ts_bytes):
    from vision.sources import open_source

    srv = DroppingServer(ts_bytes, [0.3])
    try:
        src = open_source(srv.url, timeout_s=3.0)
        src.base_s, src.retries = 60.0, 5  # would wait 60 + 120 + ... s
        it = iter(src)
        next(it)
        src.close()
        t0 = time.monotonic()
        rest = list(it)
        assert time.monotonic() - t0 < src.base_s / 2  # the backoff is cut, not waited out
        assert len(rest) < 50
    finally:
        srv.close()


def test_run_on_a_dropping_stream_ends_with_one_line(ts_bytes, tmp_path: Path):
    srv = DroppingServer(ts_bytes, [0.5, None, 1.0])
    out = tmp_path / "o"
    env_backup = os.environ.get("COPILOT_STREAM_BACKOFF_S")
    os.environ["COPILOT_STREAM_BACKOFF_S"] = "0.1"
    try:
        r = cli("run", srv.url, "--out", str(out), "--vision", "heuristic")
    finally:
        srv.close()
        if env_backup is None:
            os.environ.pop("COPILOT_STREAM_BACKOFF_S")
        else:
            os.environ["COPILOT_STREAM_BACKOFF_S"] = env_backup
    line = assert_clean_error(r, "stream lost", "reconnect attempts failed")
    assert srv.connections == 3
    frames_in = int(r.stdout.split("frames: ")[1].split()[0])
    assert frames_in > frames_of(ts_bytes[: len(ts_bytes) // 2]) + 40  # came back after a drop
    from copilot.session import read_session

    end = read_session(out / "session.jsonl").first("end")
    # a live stream is latest-wins: every frame is either written or counted as dropped
    assert end["frames_in"] == frames_in == end["frames_out"] + end["dropped"]
    assert (out / "annotated.mp4").exists() and "annotated.mp4" in line
