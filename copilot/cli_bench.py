"""``copilot bench``: offline benchmarks on recorded feeds (latency, accuracy, comparisons)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def bench_command(
    feeds: Annotated[list[Path], typer.Argument(
        help="feed folders (copilot feed make) or video files")],
    out: Annotated[Path, typer.Option(help="folder for report.json, report.md, plots")] = Path(
        "bench_out"),
    backends: Annotated[str, typer.Option(
        help="vision runtimes, comma separated; the first is the baseline: "
             "onnxruntime,torch,tensorrt")] = "onnxruntime",
    decoders: Annotated[str, typer.Option(
        help="video decoders, comma separated: pyav,decord,opencv")] = "pyav",
    asr: Annotated[str, typer.Option(
        help="speech recognisers, comma separated: default (the copilot's, speech.defaults),"
             "hybrid,moonshine-tiny,moonshine-base,pocketsphinx,faster-whisper")
    ] = "default",
    voices: Annotated[str, typer.Option(
        help="the copilot's voices, comma separated: default,piper,espeak")] = "default",
    repeat: Annotated[int, typer.Option(help="runs per variant (alternated)")] = 1,
    ray: Annotated[str | None, typer.Option(
        help="fan feeds out to Ray: ADDRESS, 'auto' or 'local' (pip extra 'ray')")] = None,
    workers: Annotated[int | None, typer.Option(
        help="local processes (default: half the cores; 0 = in this process)")] = None,
    realtime: Annotated[bool, typer.Option(
        "--realtime/--fast", help="replay at the recorded pace (latency as in the OR) or as "
                                  "fast as possible (throughput)")] = True,
    asr_model_dir: Annotated[Path | None, typer.Option(
        help="CTranslate2 Whisper model folder for faster-whisper")] = None,
    max_seconds: Annotated[float | None, typer.Option(help="only the first N s of a feed")
                           ] = None,
    components: Annotated[bool, typer.Option(
        help="also compare components side by side (vision, decoders, ASR, loop)")] = True,
    vision_frames: Annotated[int, typer.Option(
        help="frames per feed for the vision comparison (evenly spaced)")] = 240,
    rounds: Annotated[int, typer.Option(
        help="alternated rounds of the decoder and loop comparisons")] = 3,
    loop_check: Annotated[bool, typer.Option(
        help="time --fast passthrough + overlay against the raw decoder")] = True,
    progress: Annotated[bool, typer.Option(help="progress bars")] = True,
) -> int:
    """Benchmark the copilot on recorded FEEDs: latency on one clock, accuracy, ratios."""
    from benchmarks.copilot_bench import (
        ASR_BACKENDS,
        BACKENDS,
        DECODERS,
        VOICES,
        BenchConfig,
        command_line,
        parse_list,
        run_bench,
    )

    cfg = BenchConfig(
        feeds=list(feeds), out=out,
        backends=parse_list(backends, BACKENDS, "--backends"),
        decoders=parse_list(decoders, DECODERS, "--decoders"),
        asr=parse_list(asr, ASR_BACKENDS, "--asr"),
        voices=parse_list(voices, VOICES, "--voices"), repeat=repeat, ray=ray, workers=workers,
        mode="realtime" if realtime else "fast", asr_model_dir=asr_model_dir,
        max_seconds=max_seconds, components=components, vision_frames=vision_frames,
        decoder_rounds=rounds, loop_check=loop_check, progress=progress,
        command=command_line(),
    )
    report = run_bench(cfg)
    bad = [r for f in report["feeds"] for r in f["runs"] if not r.get("ok")]
    print(f"report: {out / 'report.json'}, {out / 'report.md'}")
    for name in report.get("plots", {}).values():
        print(f"plot: {out / name}")
    for g in report["goals"]:
        print(f"issue {g['issue']}: {g['goal']}: {g['value']} {g['unit']} (target "
              f"{g['target']}) {'pass' if g['pass'] else 'FAIL'}")
    if bad:
        print(f"{len(bad)} run(s) failed, e.g. {bad[0]['variant']}: {bad[0].get('error')}")
    return 0


def register(app: typer.Typer) -> None:
    """Add ``copilot bench``."""
    app.command("bench")(bench_command)
