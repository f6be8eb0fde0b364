"""``copilot train``, ``copilot export`` and ``copilot segment``: vision encoder commands."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the vision commands to the ``copilot`` CLI."""

    @app.command("train")
    def train(
        feeds: list[Path] = typer.Option(
            None, "--feeds", help="Feed folder, or a folder of feed folders (repeatable)."),
        out: Path = typer.Option(..., "--out", help="Model directory to write."),
        val_feeds: list[Path] = typer.Option(
            None, "--val-feeds",
            help="Validation feeds (held-out seeds). Default: the highest seed of each "
                 "scenario among --feeds is held out."),
        minutes: float = typer.Option(20.0, help="Training time budget in minutes."),
        steps: int = typer.Option(4000, help="Maximum optimisation steps."),
        batch_size: int = typer.Option(16, help="Frames per step."),
        lr: float = typer.Option(3e-3, help="Peak learning rate (AdamW, cosine decay)."),
        size: int = typer.Option(256, help="Square model input size in pixels."),
        every: int = typer.Option(2, help="Use every n-th frame of each feed."),
        threads: int = typer.Option(2, help="CPU threads for PyTorch."),
        seed: int = typer.Option(0, help="Random seed for initialisation and sampling."),
        init: Path = typer.Option(
            None, "--init", help="Start from this model directory's weights (fine-tune), "
                                 "e.g. the shipped default; its input size is kept."),
        endoscapes: Path = typer.Option(
            None, "--endoscapes",
            help="Real frames: an Endoscapes root (seg201 layout with matches.json, or the "
                 "official one with train_seg/). Trains the pretrained MobileNetV2/DeepLabV3 "
                 "encoder on its 'train' patients (+ --feeds) with the partial-label loss."),
        pretrained: Path = typer.Option(
            None, "--pretrained", help="Pretrained state_dict (DeepLabV3-MobileNetV2 VOC or "
                                       "MobileNetV2 ImageNet); default ../shared/models/..."),
        input_wh: str = typer.Option("512x288", "--input", help="Real-data model input WxH "
                                                                "(multiples of 32)."),
        epochs: int = typer.Option(200, help="Real-data training: maximum passes over the "
                                             "real frames (--minutes also bounds it)."),
        cache: Path = typer.Option(None, help="Folder caching decoded frames (real data)."),
        full_finetune: bool = typer.Option(
            False, help="Real data: back-propagate through the backbone too (much slower; "
                        "default: frozen pretrained body, decoder and heads trained)."),
    ) -> None:
        """Train the vision encoders on recorded feeds and/or real Endoscapes frames."""
        from vision.errors import VisionError
        from vision.models import ModelConfig
        from vision.train import TrainConfig, train_from_feeds

        if endoscapes is not None:
            from vision.real_data import train_real_model

            m = train_real_model(endoscapes, feeds or [], val_feeds or [], out, input_wh,
                                 epochs=epochs, minutes=minutes, threads=threads, seed=seed,
                                 pretrained=pretrained, cache=cache,
                                 full_finetune=full_finetune)
            typer.echo(f"wrote {out} (best dev epoch mIoU {m['train']['best_dev_miou']:.3f} "
                       f"on held-out train patients {', '.join(m['dev_patients'])})")
            return
        if not feeds:
            raise VisionError("give --feeds and/or --endoscapes")
        if size < 32 or size % 32:
            raise VisionError(f"--size must be a multiple of 32 (>= 32), got {size}")
        cfg = TrainConfig(batch_size=batch_size, lr=lr, max_steps=steps,
                          time_budget_s=minutes * 60, threads=threads, seed=seed, every=every)
        metrics = train_from_feeds(feeds, out, val_feeds or None,
                                   ModelConfig(input_size=(size, size)), cfg, progress=True,
                                   init_from=init)
        val = metrics.get("val", {})
        typer.echo(f"wrote {out} ({metrics['train_steps']} steps, "
                   f"{metrics['train_seconds']:.0f} s)")
        for key in ("anatomy_miou", "phase_acc", "bowel_segment_acc", "cvs_macro_f1"):
            if val.get(key) is not None:
                typer.echo(f"  val {key}: {val[key]:.3f}")

    @app.command("export")
    def export(
        model_dir: Path = typer.Argument(..., help="Model directory (config.json + model.pt)."),
        format: str = typer.Option("onnx", "--format", help="onnx or trt (TensorRT engine)."),
        atol: float = typer.Option(1e-4, help="Absolute tolerance vs PyTorch (onnx)."),
        rtol: float = typer.Option(1e-3, help="Relative tolerance vs PyTorch (onnx)."),
        fp16: bool = typer.Option(True, help="Build the TensorRT engine in fp16."),
    ) -> None:
        """Export a model to ONNX or a TensorRT engine, verified against PyTorch first."""
        from vision.errors import VisionError
        from vision.export import export_onnx, export_tensorrt

        fmt = format.lower()
        if fmt == "onnx":
            path, rep = export_onnx(model_dir, rtol=rtol, atol=atol)
        elif fmt in ("trt", "tensorrt"):
            path, rep = export_tensorrt(model_dir, fp16=fp16)
        else:
            raise VisionError(f"--format must be onnx or trt, not {format!r}")
        worst = max(rep.max_abs_err.values()) if rep.max_abs_err else 0.0
        typer.echo(f"wrote {path} (verified: max abs error {worst:.2e}, "
                   f"label agreement {rep.label_agreement:.4%})")

    @app.command("segment")
    def segment(
        paths: list[Path] = typer.Argument(..., help="Images, folders of images / videos, "
                                                     "or videos."),
        out: Path = typer.Option(..., "--out", help="Output folder."),
        every: int = typer.Option(1, "--every", help="Videos: segment every N-th frame."),
        model: Path = typer.Option(None, "--model", help="Model directory (default: shipped)."),
        threads: int = typer.Option(2, help="ONNX Runtime threads."),
    ) -> None:
        """Segment frames: <stem>.png class ids, labels.json, predictions.jsonl."""
        import sys

        from vision.errors import VisionError
        from vision.pipeline import VisionPipeline
        from vision.segment import segment_paths

        if every < 1:
            raise VisionError(f"--every must be >= 1, got {every}")
        pipe = VisionPipeline.load(model, threads=threads)

        def err(msg: str) -> None:
            print(f"error: {msg}", file=sys.stderr)

        n, failed = segment_paths(pipe, paths, out, every=every, on_error=err)
        typer.echo(f"wrote {n} label maps to {out}" + (f" ({failed} inputs failed)"
                                                        if failed else ""))
        if failed:
            raise typer.Exit(2)
