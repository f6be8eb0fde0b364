"""``make bench`` / ``make bench-quick``: every CPU benchmark of benchmarks/, one after another.

Full run (``python -m benchmarks.run_all``): each benchmark with its normal arguments (those
its committed result was measured with, less options that rewrite product files such as
``--update-card`` / ``--update-model``), writing ``benchmarks/results/``; then
``benchmarks.summary`` regenerates ``results/SUMMARY.md``. Hours: the soaks alone are two
hours.

Quick run (``--quick``, the CI smoke run): each benchmark's ``--quick`` or smallest setting,
with ``$COPILOT_BENCH_RESULTS`` (``benchmarks.paths``) pointing at a scratch folder, so the
committed results are never touched; then the SUMMARY of that folder. Not measurements.

Benchmarks run sequentially in subprocesses; a failure is reported and the run goes on (exit
status 1 when any failed). A benchmark whose data under ``../shared`` is missing is skipped.
Run: ``python -m benchmarks.run_all [--quick] [--only NAME ...] [--scratch DIR]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.paths import ENV

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "real"
VIDEO = SHARED / "cholect50-clips" / "group57_VID22_372_and_VID26_693_b.mp4"


@dataclass(frozen=True)
class Bench:
    """One benchmark: ``python -m benchmarks.<module>`` with the full and the quick args.

    ``{scratch}`` in an argument is the run's scratch folder; ``before`` are modules run
    first with their args (feeds); ``needs``: data without which it is skipped."""

    module: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    before: tuple[tuple[str, ...], ...] = ()
    needs: tuple[Path, ...] = ()


BENCHES: tuple[Bench, ...] = (
    Bench("bench_decoders", quick=("--seconds", "2", "--rounds", "3")),
    Bench("bench_loop", ("--seconds", "30", "--rounds", "9"), ("--seconds", "3", "--rounds", "1")),
    Bench("bench_feed_generation",
          quick=("--seconds", "15", "--repeats", "1", "--size", "320x240", "--fps", "10")),
    Bench("bench_vision", ("--feed", str(VIDEO), "--iters", "60"), ("--iters", "5")),
    # vision_accuracy.json is the synthetic-feed model's (the copilot routes synthetic feeds to it)
    Bench("bench_vision_accuracy", ("--model-dir", "vision/weights/synthetic",
                                    "--feeds-dir", "{scratch}/vision_feeds", "--threads", "1"),
          ("--feeds-dir", "{scratch}/vision_feeds", "--seeds", "901", "--every", "20")),
    Bench("bench_vision_real", ("--synthetic-feeds", "{scratch}/vision_feeds"),
          ("--limit", "4"), needs=(SHARED / "endoscapes-seg201",)),
    Bench("bench_privacy", (), ("--rounds", "1"), needs=(SHARED / "cholect50-clips",)),
    Bench("bench_teach", (),
          ("--reps", "1", "--every", "8", "--calibration", "{scratch}/teach_calibration.json"),
          needs=(SHARED / "endoscapes-seg201",)),
    # the copilot's own (fine-tuned) body: chooses the product's teaching settings (full
    # runs only: the quick run smokes each module once)
    Bench("bench_teach", ("--encoder", "shipped"), needs=(SHARED / "endoscapes-seg201",)),
    Bench("bench_reasoner", (), ("--repeats", "2", "--minutes", "1", "--out", "{scratch}")),
    Bench("bench_brain_accuracy", ("--feeds-dir", "{scratch}/brain_feeds"),
          ("--feeds-dir", "{scratch}/brain_feeds", "--seconds", "20", "--size", "320x180",
           "--every", "6")),
    Bench("bench_speech", (),
          ("--quick", "--dev", "--cached-only", "--leak-n", "20", "--out", "{scratch}/speech")),
    Bench("bench_ui", ("--seconds", "30", "--questions", "12"),
          ("--seconds", "3", "--questions", "1", "--feed", "{scratch}/ui_feed")),
    Bench("bench_copilot", ("--work", "{scratch}/bench_copilot"),
          ("--quick", "--work", "{scratch}/bench_copilot")),
    Bench("bench_soak", ("--realtime", "--size", "854x480", "--minutes", "60", "--sample-s", "5",
                         "--work", "{scratch}/soak", "--name", "soak"),
          ("--minutes", "0.5", "--base-seconds", "10", "--sample-s", "1", "--warmup-min", "0.05",
           "--work", "{scratch}/soak", "--name", "soak_quick")),
    Bench("bench_soak", ("--minutes", "60", "--sample-s", "5", "--work", "{scratch}/soak_fast",
                         "--name", "soak_fast")),
)
#: bench_*.py modules (and others) that ``make bench`` does not run, and why
EXCLUDED = {
    "gpu_vision": "GPU only (CUDA / TensorRT); run on a GPU machine",
    "denoiser_dev_check": "a development check of a candidate denoiser model (needs MODEL)",
}


def plan(quick: bool, scratch: Path) -> list[tuple[str, list[list[str]], list[Path]]]:
    """(name, commands, missing data) per run, arguments filled in; each command an argv."""
    out = []
    seen_quick: set[str] = set()
    for b in BENCHES:
        if quick and b.module in seen_quick:
            continue  # one smoke run per module
        seen_quick.add(b.module)
        args = b.quick if quick else b.full
        cmds = [list(c) for c in b.before]
        cmds.append(["benchmarks." + b.module, *args])
        cmds = [[sys.executable, "-m", *(x.replace("{scratch}", str(scratch)) for x in c)]
                for c in cmds]
        out.append((b.module, cmds, [p for p in b.needs if not p.exists()]))
    return out


def run(quick: bool, scratch: Path, only: list[str] | None = None) -> list[dict]:
    """Run the plan; one record per benchmark (name, status, seconds, exit code)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if quick:
        env[ENV] = str(scratch)
    rows = []
    for name, cmds, missing in plan(quick, scratch):
        if only and name not in only:
            continue
        if missing:
            rows.append({"name": name, "status": "skipped", "s": 0.0,
                         "why": "no " + ", ".join(map(str, missing))})
            print(f"== {name}: skipped (no {', '.join(map(str, missing))})", flush=True)
            continue
        t0, rc = time.perf_counter(), 0
        for cmd in cmds:
            print(f"== {name}: {' '.join(cmd[2:])}", flush=True)
            rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
            if rc != 0:
                break
        s = round(time.perf_counter() - t0, 1)
        rows.append({"name": name, "status": "ok" if rc == 0 else "FAILED", "s": s, "rc": rc})
        print(f"== {name}: {rows[-1]['status']} in {s} s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run every CPU benchmark, then regenerate SUMMARY.md; 1 when any failed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run into a scratch folder")
    ap.add_argument("--only", nargs="*", default=None, help="these benchmarks only")
    ap.add_argument("--scratch", type=Path, default=None,
                    help="scratch folder (feeds; with --quick also the results)")
    a = ap.parse_args(argv)
    scratch = (a.scratch or Path(tempfile.mkdtemp(prefix="bench_quick_" if a.quick
                                                  else "bench_"))).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = run(a.quick, scratch, a.only)
    summary = [sys.executable, "-m", "benchmarks.summary"]
    if a.quick:
        summary += ["--results", str(scratch)]
    rc = subprocess.run(summary, cwd=ROOT, stdout=subprocess.DEVNULL).returncode
    rows.append({"name": "summary", "status": "ok" if rc == 0 else "FAILED", "s": 0.0})
    print(f"\n{'quick ' if a.quick else ''}benchmarks in {time.perf_counter() - t0:.0f} s "
          f"(results: {scratch if a.quick else ROOT / 'benchmarks' / 'results'}):")
    for r in rows:
        print(f"  {r['name']:<24} {r['status']:<8} {r['s']:>7} s {r.get('why', '')}")
    return 1 if any(r["status"] == "FAILED" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
