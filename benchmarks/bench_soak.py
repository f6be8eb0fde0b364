"""Soak: the whole copilot on a 60-minute feed, realtime or ``--fast``; memory, queues, fds.

``--realtime`` paces the run at the feed's frame rate (60 min of media = 60 min of wall
clock, as in theatre); without it the run goes as fast as it can and every result says it
was a fast-mode soak (minutes of media, not of wall clock).

The feed is made cheaply: one ``--base-seconds`` cholecystectomy feed (``copilot.feeds.
make_feed``, seed 5100, ``--size`` (default 320x240), 25 fps, x264 ``ultrafast``) is looped
with FFmpeg's ``-stream_loop`` (stream copy, continuous timestamps) to ``--minutes`` of
video and its audio.wav to the same length, so the run sees a real H.264 file of the full
length, with speech (the base feed's addressed lines and chatter, repeated) for the
listener. The truth.json is the base feed's (its scenario drives the brain; its times cover
one loop).

The copilot runs in this process (``copilot.app.Copilot``, as ``copilot run FEED
[--realtime] --out DIR``: vision, speech, brain, session log, annotated MP4, no trace
file); a sampler thread records every ``--sample-s`` seconds: resident memory (VmRSS, MiB),
open file descriptors, threads, the depth of every edge queue (video, audio, the voice
queue), frames in / out and the media time.

Reported (after a warm-up of ``--warmup-min`` minutes of media time): peak RSS growth over
the first post-warm-up sample (goal <= 5 %), the RSS trend (MiB per hour of wall clock,
least squares; also per hour of media), descriptor growth (median of the first vs the last
third; goal: none), threads, queue depth in the first and last thirds (goal: no growth),
frames in / out, wall time; the vision backend that actually ran.

Run: ``python -m benchmarks.bench_soak [--realtime] [--size 854x480] [--minutes 60]``; writes
``benchmarks/results/soak.{json,md}`` (``--name`` changes the file name for short runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import machine_info
from benchmarks.paths import results_dir
from benchmarks.soak_report import RSS_GOAL_PCT, goals, soak_mode, write_md

RESULTS = results_dir()
SEED = 5100  # soak content only; nothing else uses it


def proc_status() -> dict[str, int]:
    """VmRSS / VmHWM (KiB) and thread count of this process from /proc/self/status."""
    out: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(rest.split()[0])
    return out


def open_fds() -> int:
    """Number of open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def make_soak_feed(work: Path, minutes: float, base_seconds: float = 60.0,
                   size: tuple[int, int] = (320, 240), fps: float = 25.0) -> tuple[Path, dict]:
    """A feed folder of ``minutes`` minutes: a base feed looped with FFmpeg (stream copy)."""
    from copilot.feeds import make_feed

    base = work / "base"
    t0 = time.perf_counter()
    if not (base / "truth.json").exists():
        make_feed(base, "cholecystectomy", base_seconds, SEED, size=size, fps=fps,
                  preset="ultrafast")
    t_base = time.perf_counter() - t0
    loops = max(1, int(round(minutes * 60 / base_seconds)))
    feed = work / f"feed_{loops}x"
    feed.mkdir(parents=True, exist_ok=True)
    t1 = time.perf_counter()
    if not (feed / "video.mp4").exists():
        for name in ("video.mp4", "audio.wav"):
            tmp = feed / f".{name}"
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops - 1), "-i",
                 str(base / name), "-c", "copy", "-f", "mp4" if name.endswith("mp4") else "wav",
                 str(tmp)],
                check=True,
            )
            tmp.replace(feed / name)
        shutil.copy(base / "truth.json", feed / "truth.json")
    desc = {
        "base_seconds": base_seconds, "loops": loops, "media_s": loops * base_seconds,
        "width": size[0], "height": size[1], "fps": fps, "seed": SEED,
        "video_bytes": (feed / "video.mp4").stat().st_size,
        "make_base_s": round(t_base, 1), "loop_s": round(time.perf_counter() - t1, 1),
    }
    return feed, desc


def _edge_depths(app: Any) -> dict[str, int]:
    out = {}
    for name in ("video_edge", "audio_edge"):
        q = getattr(app, name, None)
        if q is not None:
            out[name.removesuffix("_edge")] = len(q)
    heap = getattr(getattr(app, "audio_out", None), "_heap", None)
    if heap is not None:
        out["voice"] = len(heap)  # AudioOut's pending messages
    return out


def _capacities(app: Any) -> dict[str, int]:
    out = {}
    for name in ("video_edge", "audio_edge"):
        q = getattr(app, name, None)
        if q is not None:
            out[name.removesuffix("_edge")] = int(q.snapshot().get("maxsize", 0))
    ao = getattr(app, "audio_out", None)
    if ao is not None:
        out["voice"] = int(ao.max_queue)
    return out


def _speech_media_s(app: Any) -> float | None:
    """Media time the listener has consumed (s): chunks processed x 32 ms."""
    from copilot.app import AUDIO_CHUNK

    for r in getattr(app, "runners", []):
        if r.name == "speech":
            return round(r.health.processed * AUDIO_CHUNK / 16000.0, 2)
    return None


def _growth_sites(before: Any, after: Any, top: int = 8) -> list[dict[str, Any]]:
    """Where Python memory grew between two tracemalloc snapshots: the allocation stacks,
    summarised by the innermost frames inside this repository."""
    repo = str(Path(__file__).resolve().parents[1])
    out = []
    for st in after.compare_to(before, "traceback")[:top]:
        frames = [f"{Path(f.filename).relative_to(repo)}:{f.lineno}"
                  for f in st.traceback if f.filename.startswith(repo)
                  and "/.venv/" not in f.filename]
        out.append({"size_diff_kib": round(st.size_diff / 1024, 1), "count_diff": st.count_diff,
                    "where": frames[-3:]})
    return out


def run_soak(feed: Path, out: Path, sample_s: float = 5.0, vision: str = "auto",
             progress: bool = True, trace_memory: tuple[float, float] | None = None,
             mode: str = "fast") -> dict[str, Any]:
    """Run the copilot on ``feed`` in this process, sampling every ``sample_s`` seconds.

    ``trace_memory`` (media s, media s): tracemalloc snapshots at those two media times and
    the allocation sites that grew between them (slow: for attribution runs only)."""
    from copilot.app import Copilot, RunConfig

    if trace_memory:
        import tracemalloc

        tracemalloc.start(8)
    snaps: list[Any] = []
    if out.exists():
        shutil.rmtree(out)
    cfg = RunConfig(source=str(feed), out=out, mode=mode, vision=vision)
    samples: list[dict[str, Any]] = []
    t_start = time.perf_counter()

    def sample(app: Any) -> dict[str, Any]:
        st = proc_status()
        return {
            "wall_s": round(time.perf_counter() - t_start, 2),
            "media_s": round(float(getattr(app, "media_t_s", 0.0) or 0.0), 2),
            "rss_mib": round(st.get("VmRSS", 0) / 1024, 1),
            "hwm_mib": round(st.get("VmHWM", 0) / 1024, 1),
            "threads": st.get("Threads", 0),
            "fds": open_fds(),
            "frames_in": int(getattr(app, "frames_in", 0)),
            "frames_out": int(getattr(app, "frames_out", 0)),
            "queues": _edge_depths(app),
            "speech_media_s": _speech_media_s(app),
        }

    app = Copilot(cfg)
    app.compose()
    capacities = _capacities(app)
    samples.append(sample(app))
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = app.run()
        except BaseException as exc:  # noqa: BLE001 - reported below
            box["error"] = f"{type(exc).__name__}: {exc}"

    th = threading.Thread(target=target, name="soak-run", daemon=True)
    th.start()
    next_t = time.perf_counter() + sample_s
    last_print = 0.0
    while th.is_alive():
        th.join(max(0.0, next_t - time.perf_counter()))
        if not th.is_alive():
            break
        next_t += sample_s
        s = sample(app)
        samples.append(s)
        if trace_memory and len(snaps) < 2 and s["media_s"] >= trace_memory[len(snaps)]:
            import gc
            import tracemalloc

            gc.collect()
            snaps.append((s["media_s"], tracemalloc.take_snapshot()))
        if progress and s["wall_s"] - last_print >= 60:
            last_print = s["wall_s"]
            print(f"  {s['wall_s']:.0f} s: media {s['media_s']:.0f} s, rss {s['rss_mib']} MiB, "
                  f"fds {s['fds']}, threads {s['threads']}, queues {s['queues']}", flush=True)
    res = box.get("result")
    end = proc_status()
    return {
        "samples": samples,
        "capacities": capacities,
        "error": box.get("error") or (res.error if res else "no result"),
        "frames_in": res.frames_in if res else None,
        "frames_out": res.frames_out if res else None,
        "dropped": res.dropped if res else None,
        "exit_code": res.exit_code if res else None,
        "mode": mode,
        "vision_backend": getattr(app, "vision_backend", None),
        "vision_backend_reason": getattr(app, "vision_backend_reason", None),
        "wall_s": round(time.perf_counter() - t_start, 1),
        "health": res.health if res else {},
        "rss_end_mib": round(end.get("VmRSS", 0) / 1024, 1),
        "outputs": {k: str(v) for k, v in (res.outputs if res else {}).items()},
        "memory_growth": ({"between_media_s": [snaps[0][0], snaps[1][0]],
                           "sites": _growth_sites(snaps[0][1], snaps[1][1])}
                          if len(snaps) == 2 else None),
    }


def analyse(samples: list[dict[str, Any]], warmup_media_s: float,
            capacities: dict[str, int] | None = None) -> dict[str, Any]:
    """Growth figures from the samples taken after ``warmup_media_s`` of media.

    A queue "grows" when its mean depth in the last third exceeds the first third's by more
    than max(1, 10 % of its capacity); the speech lag (video media time minus the media time
    the listener has consumed, s) is judged the same way with 5 s of slack."""
    capacities = capacities or {}
    # samples taken while the run shut down (media at its end, stages stopping, memory
    # released) are not the steady state: leave them out
    end_media = max((s["media_s"] for s in samples), default=0.0)
    samples = [s for s in samples if s["media_s"] < end_media - 1.0] or samples
    post = [s for s in samples if s["media_s"] >= warmup_media_s]
    if len(post) < 3:
        post = samples[len(samples) // 3:]
    if len(post) < 2:
        return {"error": "too few samples after the warm-up"}
    rss = np.array([s["rss_mib"] for s in post])
    base = float(rss[0])
    peak = float(rss.max())
    hours = np.array([s["media_s"] for s in post]) / 3600.0  # hours of media
    slope = float(np.polyfit(hours, rss, 1)[0]) if np.ptp(hours) > 0 else 0.0
    wall_h = np.array([s["wall_s"] for s in post]) / 3600.0  # hours of wall clock
    wall_slope = float(np.polyfit(wall_h, rss, 1)[0]) if np.ptp(wall_h) > 0 else 0.0
    rises = int(np.sum(np.diff(rss) > 0))
    k = len(post) // 3  # the trend of the last two thirds: the drift once things settled
    late = (float(np.polyfit(wall_h[k:], rss[k:], 1)[0])
            if len(post) - k >= 3 and np.ptp(wall_h[k:]) > 0 else None)
    jump = int(np.argmax(np.diff(rss))) if len(rss) > 1 else 0
    third = max(1, len(post) // 3)
    first, last = post[:third], post[-third:]
    names = sorted({k for s in post for k in s["queues"]})
    queues = {}
    for n in names:
        a = [s["queues"].get(n, 0) for s in first]
        b = [s["queues"].get(n, 0) for s in last]
        cap = capacities.get(n)
        slack = max(1.0, 0.1 * cap) if cap else 1.0
        queues[n] = {"capacity": cap,
                     "first_third_mean": round(float(np.mean(a)), 2),
                     "last_third_mean": round(float(np.mean(b)), 2),
                     "first_third_max": int(max(a)), "last_third_max": int(max(b)),
                     "max": int(max(s["queues"].get(n, 0) for s in post)),
                     "grows": bool(np.mean(b) > np.mean(a) + slack)}
    lag = [s["media_s"] - s["speech_media_s"] for s in post
           if s.get("speech_media_s") is not None]
    if lag:
        k = max(1, len(lag) // 3)
        la, lb = float(np.mean(lag[:k])), float(np.mean(lag[-k:]))
        queues["speech_lag_s"] = {"capacity": None, "first_third_mean": round(la, 2),
                                  "last_third_mean": round(lb, 2),
                                  "first_third_max": round(max(lag[:k]), 2),
                                  "last_third_max": round(max(lag[-k:]), 2),
                                  "max": round(max(lag), 2), "grows": bool(lb > la + 5.0)}
    fds = [s["fds"] for s in post]
    thr = [s["threads"] for s in post]
    # descriptors come and go (the TTS runs espeak-ng with pipes): compare the typical
    # (median) count of the first and last thirds, and report the transient maximum
    fd_first, fd_last = float(np.median(fds[:third])), float(np.median(fds[-third:]))
    queue_growth = any(q["grows"] for q in queues.values())
    growth_pct = 100.0 * (peak - base) / base if base else float("nan")
    return {
        "warmup_media_s": warmup_media_s,
        "n_samples_after_warmup": len(post),
        "rss_after_warmup_mib": round(base, 1),
        "rss_peak_after_warmup_mib": round(peak, 1),
        "rss_last_mib": round(float(rss[-1]), 1),
        "rss_peak_growth_pct": round(growth_pct, 2),
        "rss_trend_mib_per_media_hour": round(slope, 1),
        "rss_trend_mib_per_hour": round(wall_slope, 1),  # per hour of wall clock
        "rss_rises": rises, "rss_steps": int(len(rss) - 1),
        "rss_trend_last_two_thirds_mib_per_hour": None if late is None else round(late, 1),
        "rss_largest_step_mib": round(float(np.diff(rss).max()), 1) if len(rss) > 1 else 0.0,
        "rss_largest_step_at_wall_s": post[jump + 1]["wall_s"] if len(rss) > 1 else None,
        "wall_s_after_warmup": round(float(np.ptp(wall_h)) * 3600.0, 1),
        "fds_after_warmup": fds[0], "fds_max": max(fds), "fds_last": fds[-1],
        "fds_median_first_third": fd_first, "fds_median_last_third": fd_last,
        "threads_after_warmup": thr[0], "threads_max": max(thr), "threads_last": thr[-1],
        "queues": queues,
        "pass_rss": bool(growth_pct <= RSS_GOAL_PCT),
        "pass_fds": bool(fd_last <= fd_first),
        "pass_queues": not queue_growth,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="feed length (min)")
    ap.add_argument("--base-seconds", type=float, default=60.0, help="looped feed (s)")
    ap.add_argument("--sample-s", type=float, default=5.0, help="sampling period (s)")
    ap.add_argument("--warmup-min", type=float, default=5.0, help="warm-up (min of media)")
    ap.add_argument("--vision", default="auto", help="auto | model | heuristic | none")
    ap.add_argument("--realtime", action="store_true",
                    help="pace at the feed's frame rate (default: --fast, as fast as possible)")
    ap.add_argument("--size", default="320x240", help="feed frame size WxH (px)")
    ap.add_argument("--work", type=Path, default=None, help="folder for the feed + outputs")
    ap.add_argument("--name", default="soak", help="results file name (without suffix)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--trace-memory", type=float, nargs=2, default=None, metavar="MEDIA_S",
                    help="tracemalloc snapshots at these two media times (attribution)")
    ap.add_argument("--reanalyse", type=Path, default=None,
                    help="recompute the analysis and .md of an existing result JSON")
    args = ap.parse_args(argv)
    if args.reanalyse is not None:
        res = json.loads(args.reanalyse.read_text())
        warm = res["analysis"]["warmup_media_s"]
        res["analysis"] = analyse(res["run"]["samples"], warm, res["run"].get("capacities"))
        res["reanalysed"] = "python -m benchmarks.bench_soak --reanalyse " + str(args.reanalyse)
        res["mode"] = soak_mode(res)
        res["feed"]["minutes"] = res["feed"]["media_s"] / 60.0
        res["goals"] = goals(res)
        args.reanalyse.write_text(json.dumps(res, indent=1) + "\n")
        write_md(res, args.reanalyse.with_suffix(".md"))
        return 0
    machine = machine_info()
    work = args.work or Path(tempfile.mkdtemp(prefix="soak_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"making the {args.minutes:g} min feed in {work} ...", flush=True)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"error: --size {args.size!r}: use WxH, e.g. 854x480", file=sys.stderr)
        return 2
    mode = "realtime" if args.realtime else "fast"
    feed, desc = make_soak_feed(work, args.minutes, args.base_seconds, size=(w, h))
    desc["minutes"] = desc["media_s"] / 60.0
    print(f"running the copilot on it ({desc['media_s']:.0f} s of media) ...", flush=True)
    run = run_soak(feed, work / "run", args.sample_s, args.vision,
                   trace_memory=tuple(args.trace_memory) if args.trace_memory else None,
                   mode=mode)
    warm = min(args.warmup_min * 60.0, 0.25 * desc["media_s"])
    analysis = analyse(run["samples"], warm, run["capacities"])
    cmd = "python -m benchmarks.bench_soak " + " ".join(argv if argv is not None
                                                       else sys.argv[1:])
    res = {"command": cmd.strip(), "machine": machine, "feed": desc, "vision": args.vision,
           "mode": mode, "sample_s": args.sample_s, "run": run, "analysis": analysis}
    if "error" not in analysis:
        res["goals"] = goals(res)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{args.name}.json").write_text(json.dumps(res, indent=1) + "\n")
    if "error" in analysis:
        print(f"error: {analysis['error']}", file=sys.stderr)
        return 2
    write_md(res, args.results / f"{args.name}.md")
    print((args.results / f"{args.name}.md").read_text())
    return 0 if run["exit_code"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
