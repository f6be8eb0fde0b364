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
