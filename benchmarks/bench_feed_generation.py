"""Feed generation speed: a 60 s 1280x720 @ 30 fps feed (1800 frames) per scenario.

Goal: <= 60 s wall time per feed (median of 3 runs) on this machine. Each run writes the
whole folder (H.264 video, 1800 mask PNGs, espeak-ng speech over the OR soundscape,
truth.json). Both scenarios run in the same process, one after the other per repeat, so
they see the same machine load. Writes benchmarks/results/feed_generation.{json,md}.

Run: ``python -m benchmarks.bench_feed_generation [--seconds 60] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import machine_info
from benchmarks.paths import results_dir

RESULTS = results_dir()
GOAL_S = 60.0
#: Events per scenario; ``{t:F}`` = fraction F of the feed length (bleeding@40 for 60 s).
CASES = {
    "cholecystectomy": ["bleeding@{t:0.66667}", "large_vessel@{t:0.2}"],
    "bowel-survey": ["large_vessel@{t:0.23333}", "brief_segment:ileum"],
}


def _events(specs: list[str], seconds: float) -> list[str]:
    out = []
    for s in specs:
        if "{t:" in s:
            head, frac = s.split("{t:")
            s = f"{head}{round(float(frac.rstrip('}')) * seconds, 2):g}"
        out.append(s)
    return out


def run(seconds: float, repeats: int, size: tuple[int, int], fps: float) -> dict:
    """Time ``repeats`` generations of each scenario; returns the result record."""
    from copilot.feeds import make_feed

    times: dict[str, list[float]] = {k: [] for k in CASES}
    cpu: dict[str, list[float]] = {k: [] for k in CASES}
    sizes: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_feed_") as tmp:
        for r in range(repeats):
            for scenario, events in CASES.items():
                out = Path(tmp) / f"{scenario}_{r}"
                t0, c0 = time.perf_counter(), time.process_time()
                make_feed(out, scenario, seconds, seed=r, size=size, fps=fps,
                          events=_events(events, seconds))
                dt = time.perf_counter() - t0
                times[scenario].append(round(dt, 2))
                cpu[scenario].append(round(time.process_time() - c0, 2))
                print(f"{scenario} run {r + 1}/{repeats}: {dt:.1f} s wall, "
                      f"{cpu[scenario][-1]:.1f} s CPU (all threads)", flush=True)
                masks = sum(p.stat().st_size for p in (out / "masks").glob("*.png"))
                sizes[scenario] = {
                    "video_mb": round((out / "video.mp4").stat().st_size / 1e6, 2),
                    "masks_mb": round(masks / 1e6, 2),
                    "audio_mb": round((out / "audio.wav").stat().st_size / 1e6, 2),
                }
                shutil.rmtree(out)
    n_frames = int(round(seconds * fps))
    res = {}
    for scenario, ts in times.items():
        med = statistics.median(ts)
        res[scenario] = {
            "runs_s": ts,
            "median_s": med,
            "cpu_runs_s": cpu[scenario],
            "median_cpu_s": statistics.median(cpu[scenario]),
            "frames": n_frames,
            "ms_per_frame": round(1000 * med / n_frames, 2),
            "realtime_factor": round(seconds / med, 2),
            "meets_goal": med <= GOAL_S * seconds / 60.0,
            **sizes[scenario],
        }
    return res


def _default_preset() -> str:
    import inspect

    from copilot.feeds import make_feed

    return str(inspect.signature(make_feed).parameters["preset"].default)


def write(record: dict) -> None:
    """JSON + Markdown under benchmarks/results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "feed_generation.json").write_text(json.dumps(record, indent=2) + "\n")
    m = record["machine"]
    lines = [
        "# Feed generation speed",
        "",
        f"Command: `{record['command']}`  ",
        f"Feed: {record['seconds']:g} s, {record['size']} @ {record['fps']:g} fps "
        f"({record['frames']} frames), with speech, events and masks; "
        f"libx264 preset {record['preset']}.  ",
        f"Goal: <= {GOAL_S:g} s per 60 s feed, median of {record['repeats']} (wall time; "
        "the CPU column is load-independent: rendering, encoding and mask writing overlap "
        "on two threads).  ",
        f"Machine: {m['cpu']}, {m['cpu_count']} CPUs (affinity {m['affinity']}), "
        f"load {m['load_avg_1m']} at start (shared machine), Python {m['python']}, "
        f"numpy {m['numpy']}, OpenCV {m['opencv']}, PyAV {m['pyav']}.",
        "",
        "| scenario | runs (s) | median (s) | median CPU s (all threads) | ms/frame "
        "| x real time | video MB | masks MB | goal met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for k, v in record["results"].items():
        lines.append(f"| {k} | {', '.join(f'{x:.1f}' for x in v['runs_s'])} | "
                     f"{v['median_s']:.1f} | {v['median_cpu_s']:.1f} | {v['ms_per_frame']:.1f} | "
                     f"{v['realtime_factor']} | "
                     f"{v['video_mb']} | {v['masks_mb']} | {'yes' if v['meets_goal'] else 'NO'} |")
    (RESULTS / "feed_generation.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    """CLI entry."""
    from copilot.feeds import make_feed  # noqa: F401  (fail early when not installed)

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=float, default=30.0)
    a = ap.parse_args()
    w, h = (int(x) for x in a.size.split("x"))
    machine = machine_info()
    results = run(a.seconds, a.repeats, (w, h), a.fps)
    record = {
        "benchmark": "feed_generation",
        "command": "python -m benchmarks.bench_feed_generation " + " ".join(sys.argv[1:]),
        "seconds": a.seconds, "size": a.size, "fps": a.fps,
        "frames": int(round(a.seconds * a.fps)), "repeats": a.repeats,
        "preset": _default_preset(), "goal_s": GOAL_S, "machine": machine, "results": results,
    }
    write(record)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
