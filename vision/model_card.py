"""MODEL_CARD.md of a model directory trained on synthetic feeds (the pretrained-backbone
encoder's card is ``vision.card_real``)."""

from __future__ import annotations

from pathlib import Path

from vision import modelio
from vision.models import ModelConfig


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def write_model_card(out_dir: Path, metrics: dict, info: dict) -> None:
    """Write MODEL_CARD.md: data, architecture, metrics, limits, how to retrain."""
    cfg = modelio.load_config(out_dir)
    if cfg.arch == "mnv2":
        from vision.card_real import write_real_card

        write_real_card(Path(out_dir), metrics)
        return
    from vision.models import EncoderNet, count_parameters

    lines = _model_and_data(cfg, count_parameters(EncoderNet(cfg)), metrics, info)
    lines += _results(metrics, info)
    lines += _limits_and_retraining(info)
    (out_dir / modelio.CARD).write_text("\n".join(lines))


def _model_and_data(cfg: ModelConfig, n_params: int, metrics: dict,
                    info: dict) -> list[str]:
    """The card's title, model and data sections (Markdown lines)."""
    lines = [
        "# Vision encoder model card",
        "",
        "**Trained on synthetic scenes only** (the project's procedural feed generator). It has",
        "never seen a real patient video; do not expect it to work on real endoscopy without",
        "retraining on real data (see below). Not a medical device.",
        "",
        "## Model",
        "",
        f"- EncoderNet: MobileNet-style depthwise-separable CNN, widths {list(cfg.widths)}, "
        f"depths {list(cfg.depths)}, LR-ASPP-style decoder ({cfg.decoder_channels} ch); "
        f"{n_params:,} parameters; random init (no pretrained weights).",
        f"- Input {cfg.input_size[0]}x{cfg.input_size[1]} RGB (field of view cropped, then "
        f"resized); segmentation output {cfg.output_size[0]}x{cfg.output_size[1]}. "
        "256x256 is the default because the stage must sustain >= 25 inferences/s on 2 CPU "
        "cores shared with decoding (see benchmarks/results/vision_latency.md) and the "
        "laparoscopic field of view is round, so a square input keeps its aspect.",
        f"- Heads: segmentation ({len(cfg.classes)} classes of vision.labels.CLASSES), tool "
        f"presence ({len(cfg.tools)}), phase ({len(cfg.phases)}, then a causal continuous-time "
        f"HMM filter, temporal.json), CVS criteria ({len(cfg.cvs_criteria)}), region / bowel "
        f"segment ({len(cfg.regions)}).",
        "- Files: config.json, model.pt (PyTorch state dict), model.onnx (verified against "
        "PyTorch, atol 1e-4), temporal.json, metrics.json.",
        "",
        "## Data",
        "",
        f"- Training frames: {metrics.get('train_frames')} (every {metrics.get('train_config', {}).get('every')}-th "  # noqa: E501
        "frame of each training feed).",
    ]
    for key, title in (("train_feeds", "Training feeds"), ("val_feeds", "Validation feeds"),
                       ("test_feeds", "Test feeds (benchmark)")):
        feeds = info.get(key)
        if feeds:
            desc = ", ".join(f"{f['scenario']} seed {f['seed']} ({f['seconds']} s"
                             + (f", {f['size'][0]}x{f['size'][1]})" if f.get("size") else ")")
                             for f in feeds)
            lines.append(f"- {title}: {desc}")
    if info.get("seed_policy"):
        lines.append(f"- Seed policy: {info['seed_policy']}")
    return lines


def _results(metrics: dict, info: dict) -> list[str]:
    """The metrics section: validation (and benchmark test) figures, training budget."""
    val = metrics.get("val", {})
    test = info.get("test_metrics")
    lines: list[str] = []
    lines += [
        "",
        "## Metrics",
        "",
        "| metric | validation | target |",
        "| --- | --- | --- |",
        f"| anatomy mIoU | {_fmt(val.get('anatomy_miou'))} | >= 0.70 |",
        f"| phase accuracy (filtered) | {_fmt(val.get('phase_acc'))} | >= 0.85 |",
        f"| phase accuracy (single frame) | {_fmt(val.get('phase_acc_per_frame'))} | |",
        f"| bowel-segment accuracy (filtered) | {_fmt(val.get('bowel_segment_acc'))} | >= 0.90 |",
        f"| bowel-segment accuracy (single frame) | "
        f"{_fmt(val.get('bowel_segment_acc_per_frame'))} | |",
        f"| CVS criteria macro F1 | {_fmt(val.get('cvs_macro_f1'))} | >= 0.80 |",
        f"| tool presence macro F1 | {_fmt(val.get('tools_macro_f1'))} | |",
        "",
    ]
    if test:
        lines += [
            "Held-out test seeds (never used in training or validation), measured by "
            "`benchmarks/bench_vision_accuracy.py` through the ONNX Runtime pipeline:",
            "",
            "| metric | test |",
            "| --- | --- |",
            f"| anatomy mIoU | {_fmt(test.get('anatomy_miou'))} |",
            f"| phase accuracy (filtered) | {_fmt(test.get('phase_acc'))} |",
            f"| bowel-segment accuracy | {_fmt(test.get('bowel_segment_acc'))} |",
            f"| CVS criteria macro F1 | {_fmt(test.get('cvs_macro_f1'))} |",
            "",
        ]
    lines += [
        f"Training: {metrics.get('train_steps')} steps in {metrics.get('train_seconds')} s on "
        "CPU. Per-class IoU and F1 are in metrics.json.",
    ]
    if info.get("init_from"):
        lines += ["", f"Initialised from the weights of `{info['init_from']}`."]
    if info.get("training_note"):
        lines += ["", info["training_note"]]
    return lines


def _limits_and_retraining(info: dict) -> list[str]:
    """The limits and how to retrain on real data."""
    lines: list[str] = []
    lines += [
        "",
        "## Limits",
        "",
        "- Synthetic textures, lighting and anatomy are far simpler than real surgery; numbers",
        "  above measure the synthetic generator's held-out seeds, not clinical accuracy.",
        "- Thin structures (cystic duct / artery, clips) are segmented at half the input",
        "  resolution; outlines are coarse at the frame's scale.",
        "- The phase filter learns the synthetic phase durations; real procedures last far",
        "  longer, so retrain (or refit temporal.json) on real annotations.",
        *[f"- {x}" for x in info.get("limits", [])],
        "",
        "## Training on real data",
        "",
        "```",
        "copilot train --feeds FEED_DIR --feeds FEED_PARENT_DIR --out MODEL_DIR",
        "copilot export MODEL_DIR --format onnx",
        "```",
        "",
        "For the public datasets, load them with `vision.datasets.cholecseg8k.load_cholecseg8k`",
        "(segmentation), `vision.datasets.cholec80.load_cholec80` (phase, tools) and",
        "`vision.datasets.endoscapes.load_endoscapes` (CVS, 3-class segmentation), concatenate",
        "with `LabelledFrames.concat` and call `vision.train.train_model(train, out_dir, val)`;",
        "labels a dataset lacks are masked out of the loss. Point the copilot at MODEL_DIR in",
        "its config to use it.",
        "",
    ]
    return lines
