"""MODEL_CARD.md of the pretrained-backbone encoder trained on real and synthetic frames."""

from __future__ import annotations

from pathlib import Path

from vision import modelio


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _real_section(rv: dict) -> list[str]:
    io, fu = rv["iou_model_resolution"], rv["iou_frame_resolution"]
    lines = ["### Real frames: Endoscapes2023 official val split (10 patients, test set)", "",
             "| class | IoU (model output) | IoU (854x480) |", "| --- | --- | --- |"]
    for k, v in io["iou"].items():
        lines.append(f"| {k} | {_f(v)} | {_f(fu['iou'].get(k))} |")
    lines += [f"| **mIoU (6 classes)** | **{_f(io['miou'])}** | {_f(fu['miou'])} |", "",
              "| CVS criterion | balanced accuracy | ECE |", "| --- | --- | --- |"]
    for k, v in rv["cvs"].items():
        lines.append(f"| {k} | {_f(v['balanced_accuracy'])} | {_f(v['ece'])} |")
    ol = rv.get("offlabel", {})
    lines += ["", f"CVS may be claimed by the copilot: **{rv['cvs_claim_allowed']}** (needs "
              "balanced accuracy >= 0.80 on every criterion on held-out patients). "
              f"Off-label AUROC (real val frames vs {ol.get('n_probes')} probes): "
              f"{_f(ol.get('auroc'))}; real val frames flagged off-label: "
              f"{_f(ol.get('val_flagged'))}. Source: `python -m benchmarks.bench_vision_real`.",
              ""]
    return lines


def _synthetic_section(test: dict) -> list[str]:
    return ["### Synthetic feeds: held-out test seeds 901-903 (bench_vision_accuracy)", "",
            "| metric | test |", "| --- | --- |",
            f"| anatomy mIoU | {_f(test.get('anatomy_miou'))} |",
            f"| phase accuracy (filtered) | {_f(test.get('phase_acc'))} |",
            f"| bowel-segment accuracy | {_f(test.get('bowel_segment_acc'))} |",
            f"| CVS criteria macro F1 (synthetic) | {_f(test.get('cvs_macro_f1'))} |", ""]


def _method(tr: dict) -> str:
    """The card's training-method line: the cached-feature recipe (``method`` recorded) or
    the full fine-tune (``vision.train_real``, its config in metrics.json)."""
    if tr.get("method"):
        return (f"- Training method: {tr['method']}; the pretrained body stays as published "
                "(frozen).")
    c = tr.get("config", {})
    return ("- Training method: full fine-tune (`copilot train --endoscapes ... "
            "--full-finetune`, vision.train_real): backbone blocks "
            f"{c.get('freeze_blocks', '?')}-17 and the ASPP trained with the decoder and heads "
            f"(the first {c.get('freeze_blocks', '?')} blocks and every BatchNorm frozen), "
            f"AdamW lr {c.get('lr_backbone')} (body) / {c.get('lr_head')} (rest), cosine decay, "
            f"batches of {c.get('real_batch')} real + {c.get('synth_batch')} synthetic "
            f"frames, random crops of {c.get('crop')} of each side.")


def write_real_card(out_dir: Path, metrics: dict) -> None:
    """Write MODEL_CARD.md from config.json and metrics.json contents."""
    from vision.models import EncoderNet, count_parameters

    cfg = modelio.load_config(out_dir)
    tr = metrics.get("train", {})
    best = next((h for h in reversed(tr.get("history", [])) if h.get("best")), {})
    extra = cfg.extra or {}
    w, h = cfg.input_size
    lines = [
        "# Vision encoder model card",
        "",
        "Trained on **real laparoscopic cholecystectomy frames** (Endoscapes2023) and the "
        "project's synthetic feeds. Not a medical device: it gives advisory outlines and "
        "estimates; the surgeon decides.",
        "",
        "**Licence of these weights: non-commercial research use only.** They were trained on "
        "Endoscapes2023 (CAMMA, University of Strasbourg; Murali et al., arXiv 2312.12429), "
        "licensed CC BY-NC-SA 4.0, so the weights inherit its non-commercial, share-alike "
        "terms (attribution: CAMMA). The initial weights are DeepLabV3-MobileNetV2 trained on "
        "PASCAL VOC (google-coral test_data, Apache-2.0). CholecT50 clips (CC BY-NC-SA 4.0) "
        "were used only to look at behaviour, not to train.",
        "",
        "## Model",
        "",
        f"- MobileNetV2 backbone (torchvision `features[:18]`, output stride "
        f"{cfg.backbone_stride}) + DeepLabV3 ASPP-lite, initialised from the PASCAL VOC "
        "DeepLabV3-MobileNetV2 state_dict (`vision.backbone.load_pretrained`; the project "
        "code loads it, nothing is fetched); DeepLabV3+-style decoder with 1/16, 1/8 and 1/4 "
        f"skips; {count_parameters(EncoderNet(cfg)):,} parameters.",
        "- Input scaling as the pretrained network: RGB (x - 128) / 128 (range -1..1; the "
        "network does it, `mean` = `std` = 128/255 in config.json). TensorFlow SAME padding "
        "is kept: every stride-2 3x3 convolution pads 0 top/left and 1 bottom/right "
        "(`vision.backbone.TFSameConv2d`), which reproduces the original exactly.",
        f"- Input {w}x{h} (field of view cropped, then resized); segmentation output "
        f"{cfg.output_size[0]}x{cfg.output_size[1]}. Chosen by speed measurement only "
        "(ONNX Runtime, 2 threads, lightly loaded machine: output stride 16 gave 31 / 21 / "
        "14-17 inferences/s at 432x240 / 512x288 / 576x320, stride 32 is about a third "
        "cheaper, so 512x288 at stride 32 leaves margin for the thin structures' "
        "resolution); no accuracy sweep over sizes fitted the CPU budget of this run.",
        f"- Heads on the one backbone: segmentation ({len(cfg.classes)} classes of "
        "vision.labels.CLASSES, incl. cystic_plate and hepatocystic_triangle), tools, phase, "
        "CVS (linear on the pooled features + the segmentation's own output: class areas and "
        "centroids of duct, artery, plate, triangle, gallbladder; calibrated), region.",
        "- Files: config.json (incl. `extra.in_domain_threshold`, `extra.validated_on`, "
        "`extra.cvs_validation`), model.pt, model.onnx (verified against PyTorch), "
        "offlabel.npz, temporal.json, region_temporal.json, metrics.json.",
        "",
        "## Data and selection",
        "",
        f"- Real: Endoscapes2023 seg201, official `train` split (30 patients, 343 frames). "
        f"Held out for every choice (epoch, CVS features and calibration, off-label "
        f"threshold): patients {', '.join(metrics.get('dev_patients', []))}. The official "
        "`val` split (10 patients) is the test set, read only by the benchmark.",
        "- Labels: Endoscapes ids -> partial-label loss (vision.partial): a real pixel teaches "
        "only Endoscapes' label space (tool = any instrument class; background = every class "
        "it does not annotate), synthetic pixels never teach against cystic plate / "
        "hepatocystic triangle. Rare structures: class-weighted loss + soft Dice, flips, "
        "zoom, rotation, colour and gamma jitter, random crops.",
        _method(tr),
        f"- Synthetic: feeds of benchmarks/vision_feeds.py (train seeds; validation seeds "
        f"101-102 tune the phase / region filters). Best epoch {best.get('epoch')} of "
        f"{len(tr.get('history', []))} (dev mIoU {_f(tr.get('best_dev_miou'))}), "
        f"{tr.get('train_seconds')} s of CPU training on a shared 2-core machine.",
        "",
        "## Metrics",
        "",
    ]
    if metrics.get("real_val"):
        lines += _real_section(metrics["real_val"])
    if metrics.get("test"):
        lines += _synthetic_section(metrics["test"])
    lines += [
        "## Off-label score",
        "",
        f"`VisionResult.in_domain` (0-1) compares the frame's pooled features with Gaussians "
        f"of the validated domains ({extra.get('validated_on', 'see config.json')}); below "
        f"{extra.get('in_domain_threshold', 0.5)} the frame is `off_label` and the copilot "
        "withholds CVS / phase / structure alerts. Thresholds: 99th percentile of held-out "
        "train-side frames (vision.offlabel).",
        "",
        "## Limits",
        "",
        "- 343 real training frames from 30 patients: thin structures (cystic artery, duct) "
        "remain weak; see the per-class IoU above.",
        "- CVS from vision is advisory; the copilot asks the surgeon to confirm the critical "
        "view unless every criterion reaches 0.80 balanced accuracy on held-out patients.",
        "- Phase, tools and the bowel-survey region head are trained on synthetic video only: "
        "the region head has never seen real bowel (validated on synthetic video only).",
        "- Taught by real labels: the five Endoscapes anatomy classes and 'tool' (any "
        "instrument). Never by a real label: every other class (liver, fat, gi tract, lumen, "
        "blood, large vessel, ...), the instrument's type, the tool-presence, phase and region "
        "heads. On real video the copilot draws and reports only the taught classes (every "
        "instrument as one 'instrument') and withholds the alerts that rest on the others "
        "(copilot/real_view.py, copilot/validity.py); the list is `extra.real_taught` in "
        "config.json.",
        "",
        "## Retraining",
        "",
        "```",
        "python -m benchmarks.vision_feeds /tmp/feeds --split train   # + --split val",
        "copilot train --endoscapes ../shared/data/real/endoscapes-seg201 \\",
        "    --feeds /tmp/feeds/train --val-feeds /tmp/feeds/val --out MODEL_DIR --minutes 50",
        "python -m benchmarks.bench_vision_real --model-dir MODEL_DIR --update-model",
        "```",
        "",
    ]
    (Path(out_dir) / modelio.CARD).write_text("\n".join(lines))
