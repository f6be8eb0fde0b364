"""Export a trained model directory to ONNX / TensorRT, verified against PyTorch first.

The exported file is only written to the model directory after every float output matches
PyTorch within ``rtol`` / ``atol`` on several inputs (random noise and a smooth synthetic
image) and the argmax label maps agree on >= 99.9 % of pixels (ties may flip).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vision import modelio
from vision.errors import VisionError
from vision.models import INPUT_NAME, OUTPUT_NAMES, DeployModel

log = logging.getLogger(__name__)


@dataclass
class VerifyReport:
    """Largest absolute error per output and label agreement, over all test inputs."""

    max_abs_err: dict[str, float] = field(default_factory=dict)
    label_agreement: float = 1.0
    ok: bool = True
    problems: list[str] = field(default_factory=list)


def verification_inputs(size: tuple[int, int], n_random: int = 2, seed: int = 0
                        ) -> list[np.ndarray]:
    """Float32 [1, 3, H, W] inputs in 0..255: uniform noise and smooth colour gradients."""
    w, h = size
    rng = np.random.default_rng(seed)
    xs = [rng.uniform(0, 255, (1, 3, h, w)).astype(np.float32) for _ in range(n_random)]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    smooth = np.stack([255 * xx / w, 255 * yy / h, 128 + 100 * np.sin(xx / 9) * np.cos(yy / 7)])
    xs.append(smooth[None].astype(np.float32))
    return xs


def compare_outputs(ref: list[dict[str, np.ndarray]], got: list[dict[str, np.ndarray]],
                    rtol: float, atol: float, min_label_agreement: float = 0.999
                    ) -> VerifyReport:
    """Compare runtime outputs with reference outputs, input by input."""
    rep = VerifyReport()
    agree, total = 0, 0
    for r, g in zip(ref, got, strict=True):
        for name in OUTPUT_NAMES:
            if name not in r or name not in g:
                rep.problems.append(f"output {name} missing")
                continue
            a, b = np.asarray(r[name]), np.asarray(g[name])
            if a.shape != b.shape:
                rep.problems.append(f"{name}: shape {b.shape} != {a.shape}")
                continue
            if name == "seg_labels":
                agree += int((a == b).sum())
                total += a.size
                continue
            err = float(np.abs(a.astype(np.float64) - b).max())
            rep.max_abs_err[name] = max(rep.max_abs_err.get(name, 0.0), err)
            if not np.allclose(b, a, rtol=rtol, atol=atol):
                rep.problems.append(f"{name}: max abs error {err:.3g} > atol {atol} (rtol {rtol})")
    rep.label_agreement = agree / total if total else 0.0
    if rep.label_agreement < min_label_agreement:
        rep.problems.append(f"seg_labels agree on {rep.label_agreement:.4%} of pixels")
    rep.ok = not rep.problems
    return rep


def torch_reference(model_dir: Path, inputs: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Deploy outputs of the PyTorch model (CPU, float32) for each input."""
    import torch

    model = DeployModel(modelio.load_torch_model(model_dir)).eval()
    outs = []
    with torch.inference_mode():
        for x in inputs:
            o = model(torch.from_numpy(x))
            outs.append({n: t.numpy() for n, t in zip(OUTPUT_NAMES, o, strict=True)})
    return outs


def export_onnx(model_dir: Path | str, out_path: Path | None = None, opset: int = 17,
                rtol: float = 1e-3, atol: float = 1e-4) -> tuple[Path, VerifyReport]:
    """Export ``model.pt`` to ONNX, verify with ONNX Runtime, then save (default model.onnx).

    Raises VisionError (and writes nothing) when verification fails.
    """
    import torch

    from vision.runtimes import OrtRuntime

    model_dir = modelio.resolve_model_dir(model_dir)
    cfg = modelio.load_config(model_dir)
    model = DeployModel(modelio.load_torch_model(model_dir)).eval()
    w, h = cfg.input_size
    dummy = torch.zeros(1, 3, h, w)
    out_path = Path(out_path) if out_path else model_dir / modelio.ONNX
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (dummy,), str(tmp_path), input_names=[INPUT_NAME],
                              output_names=list(OUTPUT_NAMES), opset_version=opset,
                              do_constant_folding=True, dynamo=False)
        import onnx

        onnx.checker.check_model(str(tmp_path))
        inputs = verification_inputs((w, h))
        ref = torch_reference(model_dir, inputs)
        rt = OrtRuntime(model_dir, threads=1, device="cpu", onnx_path=tmp_path)
        got = [rt.run(x) for x in inputs]
        rep = compare_outputs(ref, got, rtol=rtol, atol=atol)
        if not rep.ok:
            raise VisionError("ONNX export does not match PyTorch: " + "; ".join(rep.problems))
        out_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path, out_path)
    log.info("exported %s (max abs err %s)", out_path, rep.max_abs_err)
    return out_path, rep


def export_tensorrt(model_dir: Path | str, fp16: bool = True, rtol: float = 1e-2,
                    atol: float = 2e-2, cache_dir: Path | None = None
                    ) -> tuple[Path, VerifyReport]:
    """Build (or reuse) the cached TensorRT engine from model.onnx and verify it vs PyTorch.

    fp16 engines are compared with looser tolerances (default atol 2e-2). Raises VisionError
    when TensorRT or a GPU is missing (no silent fallback here: the user asked for TRT).
    """
    from vision.runtimes import TensorRTRuntime

    model_dir = modelio.resolve_model_dir(model_dir)
    if not (model_dir / modelio.ONNX).is_file():
        export_onnx(model_dir)
    rt = TensorRTRuntime(model_dir, fp16=fp16, fallback=False, cache_dir=cache_dir)
    cfg = modelio.load_config(model_dir)
    inputs = verification_inputs(tuple(cfg.input_size))
    ref = torch_reference(model_dir, inputs)
    got = [rt.run(x) for x in inputs]
    rep = compare_outputs(ref, got, rtol=rtol, atol=atol, min_label_agreement=0.99)
    if not rep.ok:
        rt.engine_path.unlink(missing_ok=True)
        raise VisionError("TensorRT engine does not match PyTorch: " + "; ".join(rep.problems))
    return rt.engine_path, rep
