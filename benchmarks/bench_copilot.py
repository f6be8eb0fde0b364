"""``copilot bench`` on its two acceptance feeds -> ``results/bench_copilot.{json,md}`` + plots.

Makes the two feeds the committed report was measured on (40 s, 640x360, 25 fps; seeds 6201
and 6202 with the events below), runs ``copilot bench`` on them with the committed settings
(vision onnxruntime vs torch, decoders pyav / decord / opencv, the default recogniser vs
pocketsphinx, 2 repeats,
realtime) and copies the output folder to the results as ``bench_copilot.json`` / ``.md`` /
``bench_copilot_*.png``. ``--quick``: one 12 s feed at 320x180, the baseline variant only,
``--fast``, small comparisons (a smoke run, not a measurement).

Run: ``python -m benchmarks.bench_copilot [--quick] [--work DIR]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.paths import results_dir

#: (scenario, seed, events) of the acceptance feeds
FEEDS = (("cholecystectomy", 6201, ("clip_before_cvs@16", "bleeding@28")),
         ("bowel-survey", 6202, ("large_vessel@20", "skip_segment:jejunum")))
SECONDS, SIZE, FPS = 40.0, (640, 360), 25.0
QUICK_FEED = ("cholecystectomy", 6201, ("bleeding@6",))
QUICK_SECONDS, QUICK_SIZE = 12.0, (320, 180)


def make_feeds(work: Path, quick: bool) -> list[Path]:
    """The feed folders under ``work`` (made once; an existing feed is reused)."""
    from copilot.feeds import make_feed

    specs = (QUICK_FEED,) if quick else FEEDS
    seconds, size = (QUICK_SECONDS, QUICK_SIZE) if quick else (SECONDS, SIZE)
    out = []
    for scenario, seed, events in specs:
        d = work / f"{scenario}_s{seed}"
        if not (d / "truth.json").is_file():
            make_feed(d, scenario, seconds, seed, size, FPS, events=list(events))
        out.append(d)
    return out


def copy_out(out: Path, results: Path) -> None:
    """report.json / report.md / plots -> ``results``/bench_copilot*."""
    results.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "report.json", results / "bench_copilot.json")
    md = (out / "report.md").read_text()
    for png in sorted(out.glob("*.png")):
        shutil.copyfile(png, results / f"bench_copilot_{png.name}")
        md = md.replace(f"]({png.name})", f"](bench_copilot_{png.name})")
    (results / "bench_copilot.md").write_text(md)


def main(argv: list[str] | None = None) -> int:
    """Make the feeds, run ``copilot bench``, copy its report to the results."""
    from benchmarks.copilot_bench import BenchConfig, run_bench

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one small feed (smoke run)")
    ap.add_argument("--work", type=Path, default=None, help="feeds and run folders")
    ap.add_argument("--results", type=Path, default=results_dir())
    a = ap.parse_args(argv)
    work = a.work or Path(tempfile.mkdtemp(prefix="bench_copilot_"))
    feeds = make_feeds(work / "feeds", a.quick)
    cmd = "python -m benchmarks.bench_copilot " + " ".join(argv if argv is not None
                                                           else sys.argv[1:])
    if a.quick:
        cfg = BenchConfig(feeds=feeds, out=work / "out", mode="fast", vision_frames=8,
                          decoder_rounds=1, progress=False, command=cmd.strip())
    else:
        cfg = BenchConfig(feeds=feeds, out=work / "out", backends=["onnxruntime", "torch"],
                          decoders=["pyav", "decord", "opencv"], asr=["default", "pocketsphinx"],
                          voices=["default", "espeak"],
                          repeat=2, mode="realtime", progress=False, command=cmd.strip())
    report = run_bench(cfg)
    copy_out(cfg.out, a.results)
    bad = [r for f in report["feeds"] for r in f["runs"] if not r.get("ok")]
    print(f"report: {a.results / 'bench_copilot.md'}; {len(bad)} run(s) failed")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
