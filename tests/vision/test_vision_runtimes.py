"""Runtimes: registry, ONNX Runtime vs PyTorch (atol 1e-4), export verification, TensorRT."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from vision import modelio
from vision.errors import VisionError
from vision.export import compare_outputs, export_onnx, verification_inputs
from vision.models import OUTPUT_NAMES
from vision.runtimes import (
    OrtRuntime,
    TorchRuntime,
    available_runtimes,
    create_runtime,
    trt_engine_key,
)


def _frames_like(size: tuple[int, int]) -> list[np.ndarray]:
    """Realistic inputs: rendered scenes, not just noise."""
    from vision_fixtures import scene

    from vision.preprocess import preprocess

    rng = np.random.default_rng(5)
    return [preprocess(scene(t, 160, 120, 1, rng)[0], size)[0] for t in (0.0, 1.3)]


@pytest.mark.parametrize("model", ["tiny", "default"])
def test_vision_onnxruntime_matches_torch(model: str, tiny_model_dir: Path) -> None:
    if model == "default" and not (modelio.DEFAULT_MODEL_DIR / modelio.ONNX).is_file():
        pytest.skip("shipped default model not present")
    d = tiny_model_dir if model == "tiny" else modelio.DEFAULT_MODEL_DIR
    torch_rt = create_runtime("torch", d, threads=1)
    ort_rt = create_runtime("onnxruntime", d, threads=1)
    assert isinstance(torch_rt, TorchRuntime) and isinstance(ort_rt, OrtRuntime)
    size = torch_rt.input_size
    xs = verification_inputs(size) + _frames_like(size)
    for x in xs:
        a, b = torch_rt.run(x), ort_rt.run(x)
        assert set(a) == set(b) == set(OUTPUT_NAMES)
        for name in OUTPUT_NAMES:
            if name == "seg_labels":
                assert (a[name] == b[name]).mean() >= 0.999
            else:
                np.testing.assert_allclose(b[name], a[name], atol=1e-4, rtol=0)


def test_vision_ort_session_settings(tiny_model_dir: Path) -> None:
    rt = create_runtime("ort", tiny_model_dir, threads=2)
    assert rt.name == "onnxruntime" and rt.provider == "cpu"
    assert rt.describe() == "onnxruntime (cpu, threads=2)"
    from vision.runtimes import ort_session_options

    so = ort_session_options(2)
    assert so.intra_op_num_threads == 2
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_vision_registry_errors(tiny_model_dir: Path, tmp_path: Path) -> None:
    assert {"torch", "onnxruntime", "tensorrt"} <= set(available_runtimes())
    with pytest.raises(VisionError, match="unknown vision runtime"):
        create_runtime("openvino", tiny_model_dir)
    d = tmp_path / "no_onnx"
    shutil.copytree(tiny_model_dir, d)
    (d / modelio.ONNX).unlink()
    with pytest.raises(VisionError, match="ONNX model not found"):
        create_runtime("onnxruntime", d)
    (d / modelio.WEIGHTS).write_bytes(b"not a checkpoint")
    with pytest.raises(VisionError, match="cannot load weights"):
        create_runtime("torch", d)


def test_vision_export_refuses_a_mismatch(tiny_model_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    (d / modelio.ONNX).unlink()
    path, rep = export_onnx(d)
    assert path.is_file() and rep.ok and max(rep.max_abs_err.values()) < 1e-4
    ref = [{n: np.zeros((1, 3)) for n in OUTPUT_NAMES if n != "seg_labels"}]
    bad = [{n: np.full((1, 3), 1e-3) for n in OUTPUT_NAMES if n != "seg_labels"}]
    for r in ref + bad:
        r["seg_labels"] = np.zeros((1, 4, 4), np.int64)
    rep = compare_outputs(ref, bad, rtol=0, atol=1e-4)
    assert not rep.ok and any("max abs error" in p for p in rep.problems)


def test_vision_tensorrt_falls_back_with_reason(tiny_model_dir: Path, caplog) -> None:
    try:
        import tensorrt  # noqa: F401

        pytest.skip("tensorrt is installed; fallback path not exercised")
    except ImportError:
        pass
    with caplog.at_level(logging.WARNING, logger="vision.runtimes"):
        rt = create_runtime("tensorrt", tiny_model_dir)
    assert isinstance(rt, OrtRuntime)
    assert "falling back to ONNX Runtime" in caplog.text and "tensorrt" in caplog.text
    with pytest.raises(VisionError, match="TensorRT runtime unavailable"):
        create_runtime("tensorrt", tiny_model_dir, fallback=False)


def test_vision_trt_cache_key(tiny_model_dir: Path) -> None:
    k1 = trt_engine_key(tiny_model_dir / modelio.ONNX, "10.3.0", "NVIDIA H100 80GB", True)
    k2 = trt_engine_key(tiny_model_dir / modelio.ONNX, "10.4.0", "NVIDIA H100 80GB", True)
    k3 = trt_engine_key(tiny_model_dir / modelio.ONNX, "10.3.0", "NVIDIA L4", True)
    assert len({k1, k2, k3}) == 3 and " " not in k1 and k1.endswith("fp16")
    assert k1.startswith(modelio.file_sha256(tiny_model_dir / modelio.ONNX)[:16])


def _has_trt_gpu() -> str | None:
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        return f"tensorrt does not import: {exc}"
    import torch

    return None if torch.cuda.is_available() else "no CUDA GPU"


@pytest.mark.trt
@pytest.mark.gpu
@pytest.mark.skipif(_has_trt_gpu() is not None, reason=str(_has_trt_gpu()))
def test_vision_tensorrt_engine_matches_torch(tiny_model_dir: Path, tmp_path: Path) -> None:
    from vision.export import export_tensorrt

    engine, rep = export_tensorrt(tiny_model_dir, fp16=True, cache_dir=tmp_path)
    assert engine.is_file() and rep.ok
    rt = create_runtime("tensorrt", tiny_model_dir, cache_dir=tmp_path)
    assert rt.name == "tensorrt" and rt.engine_path == engine  # cached engine reused


@pytest.mark.gpu
@pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers(),
                    reason="onnxruntime-gpu (CUDA execution provider) not installed")
def test_vision_ort_cuda_provider(tiny_model_dir: Path) -> None:
    rt = create_runtime("onnxruntime", tiny_model_dir, device="cuda")
    assert rt.provider == "cuda"
