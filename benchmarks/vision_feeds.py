"""Synthetic feeds for training and evaluating the vision encoders, with the seed policy.

Seeds are split once and for all so that the numbers in the model card are on feeds the
model never saw:

- train: seeds 1-10 of each scenario
- validation (model selection, phase-filter tuning): seeds 101-102
- test (benchmarks/bench_vision_accuracy.py only): seeds 901-903

Every feed is 60 s at 8 fps, 320x240 (phase and segment timings scale with the feed length,
so train and test feeds share one length). Some train feeds carry scripted events so that
rarer classes (blood, large vessel, clips before CVS) appear; test seed 902 carries events.

Wide (16:9) copies of the same seeds, for training the heads on wide frames too, are made
with ``--size 426x240`` into another folder; acceptance runs use other (fresh) seeds.

Run: ``python -m benchmarks.vision_feeds OUT_DIR [--split train|val|test|all] [--size WxH]
[--seeds N ...]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

TRAIN_SEEDS = tuple(range(1, 11))
VAL_SEEDS = (101, 102)
TEST_SEEDS = (901, 902, 903)
SECONDS = 60.0
FPS = 8.0
SIZE = (320, 240)
SCENARIOS = ("cholecystectomy", "bowel-survey")


def events_for(scenario: str, seed: int) -> list[str]:
    """Scripted events for a seed (deterministic)."""
    if seed % 3 != 2:
        return []
    if scenario == "cholecystectomy":
        return ["bleeding@35", "large_vessel@20"] if seed % 2 else ["clip_before_cvs@15"]
    return ["large_vessel@14"]


def feed_name(scenario: str, seed: int) -> str:
    """Folder name of a feed."""
    return f"{scenario}_s{seed}"


def make_split(out_dir: Path, seeds: tuple[int, ...],
               size: tuple[int, int] = SIZE) -> list[Path]:
    """Generate (or reuse) the feeds of both scenarios for ``seeds`` at ``size`` (w, h)."""
    from copilot.feeds import make_feed

    paths = []
    for scenario in SCENARIOS:
        for seed in seeds:
            p = Path(out_dir) / feed_name(scenario, seed)
            if not (p / "truth.json").is_file():
                make_feed(p, scenario, seconds=SECONDS, seed=seed, size=size, fps=FPS,
                          events=events_for(scenario, seed), audio=False)
            paths.append(p)
    return paths


def generator_commit(feeds_dir: Path | None = None) -> str | None:
    """Commit of the feed generator that wrote ``feeds_dir`` (its GENERATOR_COMMIT file),
    else the last git commit touching vision/synth or copilot/feed*.py (the generator's rooms)."""
    import subprocess

    if feeds_dir is not None and (feeds_dir / "GENERATOR_COMMIT").is_file():
        return (feeds_dir / "GENERATOR_COMMIT").read_text().strip()
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%h", "--", "vision/synth",
                              "copilot/feed*.py"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent.parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def main() -> None:
    """CLI entry."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--split", default="all", choices=["train", "val", "test", "all"])
    ap.add_argument("--size", default=f"{SIZE[0]}x{SIZE[1]}", help="frame size WxH")
    ap.add_argument("--seeds", type=int, nargs="*", default=None,
                    help="seeds instead of the split's own (fresh test seeds)")
    a = ap.parse_args()
    try:
        size = tuple(int(v) for v in a.size.lower().split("x"))
        if len(size) != 2 or min(size) < 16:
            raise ValueError
    except ValueError:
        ap.error(f"--size must be WxH, got {a.size!r}")
    a.out_dir.mkdir(parents=True, exist_ok=True)
    marker = a.out_dir / "GENERATOR_COMMIT"
    commit = generator_commit()
    if marker.is_file() and commit and marker.read_text().strip() != commit:
        print(f"warning: {a.out_dir} holds feeds from generator {marker.read_text().strip()}, "
              f"the generator is now at {commit}; existing feeds are reused")
    elif commit and not marker.is_file():
        marker.write_text(commit + "\n")
    splits = {"train": TRAIN_SEEDS, "val": VAL_SEEDS, "test": TEST_SEEDS}
    for name, seeds in splits.items():
        if a.split in (name, "all"):
            for p in make_split(a.out_dir / name, tuple(a.seeds) if a.seeds else seeds,
                                size):
                print(p)


if __name__ == "__main__":
    main()
