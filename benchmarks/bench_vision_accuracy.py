"""Vision accuracy on held-out test seeds, end to end through the ONNX Runtime stage.

Generates (or reuses) the test feeds of ``benchmarks/vision_feeds.py`` (seeds 901-903 of
both scenarios, never used in training or validation), decodes every frame with PyAV, runs
``VisionPipeline.process`` on each in order (so the phase is the causal filter's output),
and scores: anatomy mIoU (label map vs the truth mask cropped to the same field of view and
resized with nearest neighbour to the model's output size), filtered phase accuracy,
bowel-segment accuracy, CVS criteria F1 and tool F1. Writes
``benchmarks/results/vision_accuracy.json`` / ``.md``; ``--update-card`` also writes the
numbers into the model's MODEL_CARD.md and metrics.json.

Run: ``python -m benchmarks.bench_vision_accuracy [--feeds-dir DIR] [--update-card]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.bench_vision import RESULTS
from benchmarks.machine import machine_info
from benchmarks.vision_feeds import TEST_SEEDS, generator_commit, make_split


def evaluate_feed(pipe, feed: Path, acc, every: int = 1) -> int:
    """Run the pipeline over one feed, adding each frame to ``acc``; returns frames used."""
    from vision.datasets.common import decode_video_frames
    from vision.datasets.feeds import read_truth

    truth = read_truth(feed)
    fl = truth["frame_labels"]
    fps = float(truth["fps"])
    cholec = truth.get("scenario") == "cholecystectomy"
    pipe.reset()
    wo, ho = pipe.runtime.config.output_size
    n = 0
    for i, rgb in decode_video_frames(feed / "video.mp4", keep=lambda i: i % every == 0):
        if i >= truth["n_frames"]:
            break
        r = pipe.process(rgb, frame_id=i, timestamp_s=i / fps)
        m = cv2.imread(str(feed / "masks" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        b = r.fov_box
        m = cv2.resize(np.ascontiguousarray(m[b.y0:b.y1, b.x0:b.x1]), (wo, ho),
                       interpolation=cv2.INTER_NEAREST)
        phases = list(r.phase)
        regions = list(r.region)
        acc.add(r.label_map, m, int(fl["phase"][i]), phases.index(r.phase_name),
                int(np.argmax(list(r.phase_frame.values()))), int(fl["region"][i]),
                regions.index(r.region_name),
                np.array(list(r.cvs.values())) if cholec else None,
                np.array(fl["cvs"][i]) if cholec else None,
                np.array(list(r.tools.values())), np.array(fl["tools"][i]),
                region_frame=regions.index(max(r.region_frame, key=r.region_frame.get)))
        n += 1
    return n


def main() -> None:
    """CLI entry."""
    from vision import modelio
    from vision.evaluate import MetricAccumulator
    from vision.pipeline import VisionPipeline

    ap = argparse.ArgumentParser(description="vision accuracy on held-out seeds")
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--feeds-dir", type=Path, default=Path("/tmp/copilot_vision_feeds"))
    ap.add_argument("--every", type=int, default=1, help="use every n-th frame")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--update-card", action="store_true")
    ap.add_argument("--seeds", type=int, nargs="*", default=list(TEST_SEEDS),
                    help="test seeds (default: all; fewer for a smoke run)")
    a = ap.parse_args()
    machine = machine_info()
    d = modelio.resolve_model_dir(a.model_dir)
    feeds = make_split(a.feeds_dir / "test", tuple(a.seeds))
    pipe = VisionPipeline.load(d, runtime="onnxruntime", threads=a.threads)
    total = MetricAccumulator()
    per_feed = {}
    t0 = time.perf_counter()
    frames = 0
    for f in feeds:
        acc = MetricAccumulator()
        n = evaluate_feed(pipe, f, acc, a.every)
        frames += n
        s = acc.summary()
        per_feed[f.name] = {k: s.get(k) for k in ("anatomy_miou", "phase_acc",
                                                  "bowel_segment_acc", "cvs_macro_f1")}
        # merge into the total
        total.cm += acc.cm
        total.phase += acc.phase
        total.region += acc.region
        total.cvs_p += acc.cvs_p
        total.cvs_t += acc.cvs_t
        total.tools_p += acc.tools_p
        total.tools_t += acc.tools_t
    wall = time.perf_counter() - t0
    summary = total.summary()
    targets = {"anatomy_miou": 0.70, "phase_acc": 0.85, "bowel_segment_acc": 0.90,
               "cvs_macro_f1": 0.80}
    res = {
        "model_dir": str(d),
        "runtime": pipe.runtime.describe(),
        "test_feeds": [f.name for f in feeds],
        "test_seeds": list(TEST_SEEDS),
        "frames": frames,
        "wall_s": round(wall, 1),
        "metrics": summary,
        "per_feed": per_feed,
        "targets": targets,
        "pass": {k: (summary.get(k) is not None and summary[k] >= v) for k, v in targets.items()},
        "machine": machine,
        "generator_commit": generator_commit(a.feeds_dir),
        "command": "python -m benchmarks.bench_vision_accuracy " + " ".join(sys.argv[1:]),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "vision_accuracy.json").write_text(json.dumps(res, indent=1))
    lines = [
        "# Vision accuracy on held-out synthetic seeds",
        "",
        f"Command: `{res['command']}`  ",
        f"Model: `{d}` via {res['runtime']}; {frames} frames from {len(feeds)} test feeds "
        f"(seeds {', '.join(map(str, TEST_SEEDS))} of both scenarios; never used in training); "
        f"feed generator at commit {res['generator_commit']}.",
        "",
        "| metric | value | target | pass |",
        "| --- | --- | --- | --- |",
    ]
    for k, v in targets.items():
        val = summary.get(k)
        lines.append(f"| {k} | {'n/a' if val is None else f'{val:.3f}'} | >= {v} | "
                     f"{'yes' if res['pass'][k] else 'no'} |")
    lines += ["", "Per-class IoU: " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                  summary["seg_iou"].items()), ""]
    if "cvs_f1" in summary:
        lines.append("CVS F1: " + ", ".join(f"{k} {v:.2f}" for k, v in summary["cvs_f1"].items()))
    lines.append(f"Single-frame phase accuracy (no filter): "
                 f"{summary.get('phase_acc_per_frame', float('nan')):.3f}")
    (RESULTS / "vision_accuracy.md").write_text("\n".join(lines) + "\n")
    if a.update_card:
        from vision.train import feed_seeds, write_model_card

        metrics = json.loads((d / modelio.METRICS).read_text())
        metrics["test"] = summary
        info = metrics.setdefault("card_info", {})
        info["test_metrics"] = summary
        info["seed_policy"] = (
            "train seeds 1-10, validation seeds 101-102, test seeds 901-903 of both scenarios "
            "(benchmarks/vision_feeds.py: 60 s, 8 fps, 320x240; the wide copies of the train and "
            "validation seeds at 426x240); test feeds by generator commit "
            f"{res['generator_commit']}")
        info["test_feeds"] = feed_seeds(feeds)
        (d / modelio.METRICS).write_text(json.dumps(metrics, indent=1))
        write_model_card(d, metrics, info)
    print(json.dumps({k: summary.get(k) for k in targets}))


if __name__ == "__main__":
    main()
