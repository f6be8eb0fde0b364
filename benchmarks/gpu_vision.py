"""GPU latency of the vision encoder at 512x512: PyTorch CUDA fp16, ORT CUDA, TensorRT fp16.

For a lent GPU machine (goal: <= 2 ms per frame for the encoder). The shipped weights are
fully convolutional, so the script writes a copy of the model directory with a 512x512
input size, exports and verifies its ONNX file against PyTorch, then times each backend
that is available (CUDA-synchronised, batch 1, after warm-up) and records why any
backend was skipped. Writes ``benchmarks/results/vision_gpu.json`` / ``.md``.

Run: ``python -m benchmarks.gpu_vision [--size 512] [--iters 300]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.paths import results_dir
from copilot.stats import percentile

RESULTS = results_dir()


def _stats(ts: list[float]) -> dict:
    a = np.array(ts) * 1e3
    return {"median_ms": round(float(np.median(a)), 4),
            "p90_ms": round(percentile(a, 90), 4),
            "mean_ms": round(float(a.mean()), 4), "n": len(ts)}


def resized_model_dir(src: Path, size: int, dst: Path) -> Path:
    """Copy ``src`` (config + weights + temporal) with input size ``size`` and export ONNX."""
    from vision import modelio
    from vision.export import export_onnx

    dst.mkdir(parents=True, exist_ok=True)
    for name in (modelio.WEIGHTS, modelio.TEMPORAL):
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    cfg = json.loads((src / modelio.CONFIG).read_text())
    cfg["input_size"] = [size, size]
    (dst / modelio.CONFIG).write_text(json.dumps(cfg))
    export_onnx(dst)
    return dst


def time_fn(fn, iters: int, warmup: int, sync) -> list[float]:
    """Per-call wall times (s) of ``fn`` with ``sync()`` after each call."""
    for _ in range(warmup):
        fn()
    sync()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    return ts


def main() -> None:
    """CLI entry."""
    import torch

    from benchmarks.machine import machine_info
    from vision import modelio

    ap = argparse.ArgumentParser(description="vision GPU latency")
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=50)
    a = ap.parse_args()
    res: dict = {"size": a.size, "iters": a.iters, "machine": machine_info(), "backends": {},
                 "skipped": {}, "command": "python -m benchmarks.gpu_vision "
                 + " ".join(sys.argv[1:])}
    if torch.cuda.is_available():
        res["gpu"] = torch.cuda.get_device_name(0)
    src = modelio.resolve_model_dir(a.model_dir)
    tmp = Path(tempfile.mkdtemp(prefix="gpu_vision_"))
    d = resized_model_dir(src, a.size, tmp / "model")
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, a.size, a.size)).astype(np.float32)

    def cuda_sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    # PyTorch CUDA fp16 (encoder only: device-resident input, outputs left on the GPU)
    if torch.cuda.is_available():
        from vision.models import DeployModel

        model = DeployModel(modelio.load_torch_model(d)).eval().cuda().half()
        xt = torch.from_numpy(x).cuda().half()
        with torch.inference_mode():
            res["backends"]["torch_cuda_fp16"] = _stats(
                time_fn(lambda: model(xt), a.iters, a.warmup, cuda_sync))
            model_cl = model.to(memory_format=torch.channels_last)
            xcl = xt.to(memory_format=torch.channels_last)
            res["backends"]["torch_cuda_fp16_channels_last"] = _stats(
                time_fn(lambda: model_cl(xcl), a.iters, a.warmup, cuda_sync))
    else:
        res["skipped"]["torch_cuda_fp16"] = "no CUDA GPU visible to torch"

    # ONNX Runtime CUDA EP (host input, host outputs: includes the copies)
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        from vision.runtimes import OrtRuntime

        rt = OrtRuntime(d, threads=1, device="cuda")
        res["backends"]["ort_cuda"] = _stats(time_fn(lambda: rt.run(x), a.iters, a.warmup,
                                                     cuda_sync))
        res["backends"]["ort_cuda"]["provider"] = rt.provider
    else:
        res["skipped"]["ort_cuda"] = ("CUDAExecutionProvider not available (install "
                                      "onnxruntime-gpu)")

    # TensorRT fp16 (engine built from the ONNX file, cached; includes H2D/D2H copies)
    try:
        from vision.export import export_tensorrt
        from vision.runtimes import TensorRTRuntime

        engine, rep = export_tensorrt(d, fp16=True, cache_dir=tmp / "trt")
        rt = TensorRTRuntime(d, fp16=True, fallback=False, cache_dir=tmp / "trt")
        res["backends"]["tensorrt_fp16"] = _stats(time_fn(lambda: rt.run(x), a.iters,
                                                          a.warmup, cuda_sync))
        res["backends"]["tensorrt_fp16"]["max_abs_err_vs_torch"] = rep.max_abs_err
        # the engine alone, device buffers already filled
        res["backends"]["tensorrt_fp16_engine_only"] = _stats(time_fn(
            lambda: rt.context.execute_async_v3(rt.stream.cuda_stream), a.iters, a.warmup,
            rt.stream.synchronize))
    except Exception as exc:  # ImportError, VisionError, CUDA errors: record the reason
        res["skipped"]["tensorrt_fp16"] = f"{type(exc).__name__}: {exc}"

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "vision_gpu.json").write_text(json.dumps(res, indent=1))
    lines = [f"# Vision encoder GPU latency at {a.size}x{a.size}", "",
             f"Command: `{res['command']}`  ", f"GPU: {res.get('gpu', 'none')}", "",
             "| backend | median ms | p90 ms |", "| --- | --- | --- |"]
    for k, v in res["backends"].items():
        lines.append(f"| {k} | {v['median_ms']} | {v['p90_ms']} |")
    for k, v in res["skipped"].items():
        lines.append(f"| {k} | skipped: {v} | |")
    lines.append("\nGoal: <= 2 ms for the encoder.")
    (RESULTS / "vision_gpu.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(res["backends"], indent=1))
    print(json.dumps(res["skipped"], indent=1))


if __name__ == "__main__":
    main()
