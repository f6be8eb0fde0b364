"""The soak benchmark's verdicts (benchmarks/bench_soak.analyse) on known sample series."""

from __future__ import annotations

from benchmarks.bench_soak import analyse, open_fds, proc_status


def _samples(n: int, rss, fds, audio, lag) -> list[dict]:
    return [{"wall_s": 5.0 * i, "media_s": 15.0 * i, "rss_mib": rss(i), "hwm_mib": 0,
             "threads": 20, "fds": fds(i), "frames_in": 0, "frames_out": 0,
             "queues": {"audio": audio(i), "video": 4}, "speech_media_s": 15.0 * i - lag(i)}
            for i in range(n)]


def test_steady_run_passes():
    s = _samples(100, rss=lambda i: 1000 + (i % 5), fds=lambda i: 12 + 6 * (i % 17 == 0),
                 audio=lambda i: 100 + (i % 7), lag=lambda i: 3.0)
    a = analyse(s, 60.0, {"audio": 256, "video": 8})
    assert a["pass_rss"] and a["pass_fds"] and a["pass_queues"]
    assert a["rss_peak_growth_pct"] < 1 and a["fds_max"] == 18  # transient fds are reported


def test_leaks_and_backlogs_fail():
    s = _samples(100, rss=lambda i: 1000 + 2 * i, fds=lambda i: 12 + i // 10,
                 audio=lambda i: min(256, 2 * i), lag=lambda i: 0.5 * i)
    a = analyse(s, 60.0, {"audio": 256, "video": 8})
    assert not a["pass_rss"] and a["rss_peak_growth_pct"] > 15
    assert not a["pass_fds"]
    assert a["queues"]["audio"]["grows"] and a["queues"]["speech_lag_s"]["grows"]
    assert not a["queues"]["video"]["grows"] and not a["pass_queues"]
    assert a["rss_trend_mib_per_media_hour"] > 0


def test_probes_read_this_process():
    st = proc_status()
    assert st["VmRSS"] > 1000 and st["Threads"] >= 1
    assert open_fds() >= 3


def test_trend_is_per_hour_of_wall_clock_and_the_shutdown_is_left_out():
    """Issue 20: the trend is MiB per hour of wall clock (media ran 3x faster here), the
    samples taken while the run shut down (media at its end, memory released) do not pull
    the trend down, and a one-off step is told apart from a drift."""
    s = _samples(100, rss=lambda i: 1000 + 2 * i, fds=lambda i: 12, audio=lambda i: 0,
                 lag=lambda i: 0.0)
    end = dict(s[-1], wall_s=s[-1]["wall_s"] + 5.0, rss_mib=500.0)  # shutting down
    a = analyse(s + [end], 60.0, {"audio": 256, "video": 8})
    assert abs(a["rss_trend_mib_per_hour"] - 2 * 3600 / 5.0) < 1  # 1440 MiB per wall hour
    assert abs(a["rss_trend_mib_per_media_hour"] - 2 * 3600 / 15.0) < 1
    assert a["rss_rises"] == a["rss_steps"]
    step = _samples(100, rss=lambda i: 1000 + 100 * (i >= 30), fds=lambda i: 12,
                    audio=lambda i: 0, lag=lambda i: 0.0)
    b = analyse(step, 60.0, {"audio": 256, "video": 8})
    assert b["rss_largest_step_mib"] == 100 and b["rss_trend_last_two_thirds_mib_per_hour"] == 0
