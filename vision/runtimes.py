"""Encoder runtimes behind one interface, chosen by name from a registry.

``create_runtime("onnxruntime" | "torch" | "tensorrt", model_dir, threads=...)`` returns an
:class:`EncoderRuntime` whose ``run(x)`` takes float32 [1, 3, H, W] RGB 0..255 and returns
the deploy outputs (``vision.models.OUTPUT_NAMES``) as NumPy arrays.

- ``torch``: PyTorch eager (CPU, or CUDA with ``device="cuda"``; fp16 with ``fp16=True``).
- ``onnxruntime``: ONNX Runtime; CPU by default, the CUDA execution provider when
  ``device`` is ``"cuda"`` or ``"auto"`` and onnxruntime-gpu is installed. Intra-op threads
  are set and spinning is disabled, because the CPU is shared with video decoding.
- ``tensorrt``: a TensorRT engine built from the ONNX file (fp16 by default), cached on
  disk under a key of model hash + TensorRT version + GPU name. Falls back to ONNX Runtime
  with a logged reason when TensorRT or a GPU is missing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vision import modelio
from vision.errors import VisionError
from vision.models import INPUT_NAME, OUTPUT_NAMES

log = logging.getLogger(__name__)


class EncoderRuntime:
    """Runs the deploy model on one preprocessed input."""

    name: str = "base"

    def __init__(self, model_dir: Path, threads: int = 1) -> None:
        self.model_dir = Path(model_dir)
        self.config = modelio.load_config(self.model_dir)
        self.threads = max(1, int(threads))
        self.provider = "cpu"

    @property
    def input_size(self) -> tuple[int, int]:
        """Model input (width, height) in pixels."""
        return tuple(self.config.input_size)  # type: ignore[return-value]

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """float32 [1, 3, H, W] -> dict of deploy outputs."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line: runtime, provider, threads."""
        return f"{self.name} ({self.provider}, threads={self.threads})"


_REGISTRY: dict[str, Callable[..., EncoderRuntime]] = {}


def register_runtime(name: str) -> Callable:
    """Class decorator: make a runtime available to :func:`create_runtime` by ``name``."""

    def deco(cls: Callable[..., EncoderRuntime]) -> Callable[..., EncoderRuntime]:
        _REGISTRY[name] = cls
        return cls

    return deco


def available_runtimes() -> list[str]:
    """Registered runtime names."""
    return sorted(_REGISTRY)


def create_runtime(name: str, model_dir: Path | str | None = None, threads: int = 1,
                   **kwargs) -> EncoderRuntime:
    """Instantiate the runtime ``name`` for ``model_dir`` (None = shipped default)."""
    aliases = {"ort": "onnxruntime", "onnx": "onnxruntime", "pytorch": "torch", "trt": "tensorrt"}
    key = aliases.get(name, name)
    if key not in _REGISTRY:
        raise VisionError(f"unknown vision runtime {name!r}; choose from {available_runtimes()}")
    return _REGISTRY[key](modelio.resolve_model_dir(model_dir), threads=threads, **kwargs)


@register_runtime("torch")
class TorchRuntime(EncoderRuntime):
    """PyTorch eager execution of the deploy model."""

    name = "torch"

    def __init__(self, model_dir: Path, threads: int = 1, device: str = "cpu",
                 fp16: bool = False) -> None:
        super().__init__(model_dir, threads)
        import torch

        from vision.models import DeployModel

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise VisionError("torch runtime: device 'cuda' requested but no CUDA GPU is visible")
        if device == "cpu":
            torch.set_num_threads(self.threads)
        self.torch = torch
        self.device = torch.device(device)
        self.fp16 = bool(fp16 and device == "cuda")
        model = DeployModel(modelio.load_torch_model(self.model_dir)).eval().to(self.device)
        self.model = model.half() if self.fp16 else model
        self.provider = device + (" fp16" if self.fp16 else "")

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.device)
            if self.fp16:
                t = t.half()
            outs = self.model(t)
            return {n: o.float().cpu().numpy() if o.is_floating_point() else o.cpu().numpy()
                    for n, o in zip(OUTPUT_NAMES, outs, strict=True)}


def ort_session_options(threads: int):
    """SessionOptions: ``threads`` intra-op threads, no spinning, all graph optimisations."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return so


@register_runtime("onnxruntime")
class OrtRuntime(EncoderRuntime):
    """ONNX Runtime session on ``model.onnx`` (CPU, or CUDA EP when available)."""

    name = "onnxruntime"

    def __init__(self, model_dir: Path, threads: int = 1, device: str = "cpu",
                 onnx_path: Path | None = None) -> None:
        super().__init__(model_dir, threads)
        import onnxruntime as ort

        path = Path(onnx_path) if onnx_path else self.model_dir / modelio.ONNX
        if not path.is_file():
            raise VisionError(f"ONNX model not found: {path} (run `copilot export {self.model_dir}"
                              " --format onnx`)")
        providers = ["CPUExecutionProvider"]
        have_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
        if device in ("cuda", "auto") and have_cuda:
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        elif device == "cuda":
            log.warning("onnxruntime: CUDA execution provider not available (install "
                        "onnxruntime-gpu); using CPU")
        try:
            self.session = ort.InferenceSession(str(path), ort_session_options(self.threads),
                                                providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise VisionError(f"cannot load ONNX model {path}: {exc}") from exc
        self.provider = self.session.get_providers()[0].replace("ExecutionProvider", "").lower()
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.onnx_path = path

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        outs = self.session.run(self.output_names, {INPUT_NAME: x})
        return dict(zip(self.output_names, outs, strict=True))


def _gpu_name() -> str | None:
    """Name of CUDA device 0, or None when no GPU is visible."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:  # torch without CUDA support
        return None
    return None


def trt_cache_dir() -> Path:
    """Engine cache folder (``$COPILOT_TRT_CACHE`` or ``~/.cache/surgical-copilot/trt``)."""
    env = os.environ.get("COPILOT_TRT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "surgical-copilot" / "trt"


def trt_engine_key(onnx_path: Path, trt_version: str, gpu_name: str, fp16: bool) -> str:
    """Cache key: model hash + TensorRT version + GPU name + precision."""
    import re

    gpu = re.sub(r"[^A-Za-z0-9]+", "-", gpu_name).strip("-")
    digest = modelio.file_sha256(onnx_path)[:16]
    return f"{digest}_trt{trt_version}_{gpu}_{'fp16' if fp16 else 'fp32'}"


def build_trt_engine(onnx_path: Path, engine_path: Path, fp16: bool = True,
                     workspace_mb: int = 1024) -> None:
    """Parse ``onnx_path`` with TensorRT and serialise an engine to ``engine_path``."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise VisionError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if fp16 and builder.platform_has_fast_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise VisionError(f"TensorRT engine build failed for {onnx_path}")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = engine_path.with_suffix(".tmp")
    tmp.write_bytes(bytes(serialized))
    tmp.replace(engine_path)


@register_runtime("tensorrt")
class TensorRTRuntime(EncoderRuntime):
    """TensorRT engine (built from ``model.onnx`` once, then cached); CUDA buffers via torch.

    Construction falls back to :class:`OrtRuntime` (see :func:`__new__`) with a logged
    warning when ``tensorrt`` does not import or no CUDA GPU is visible.
    """

    name = "tensorrt"

    def __new__(cls, model_dir: Path, threads: int = 1, fp16: bool = True,
                fallback: bool = True, **kwargs):
        reason = None
        try:
            import tensorrt  # noqa: F401
        except ImportError as exc:
            reason = f"tensorrt does not import ({exc}); install the 'tensorrt' extra"
        if reason is None and _gpu_name() is None:
            reason = "no CUDA GPU visible"
        if reason is not None:
            if not fallback:
                raise VisionError(f"TensorRT runtime unavailable: {reason}")
            log.warning("TensorRT runtime unavailable (%s); falling back to ONNX Runtime", reason)
            return OrtRuntime(model_dir, threads=threads, device="auto")
        return super().__new__(cls)

    def __init__(self, model_dir: Path, threads: int = 1, fp16: bool = True,
                 fallback: bool = True, cache_dir: Path | None = None) -> None:
        super().__init__(model_dir, threads)
        import tensorrt as trt
        import torch

        onnx_path = self.model_dir / modelio.ONNX
        if not onnx_path.is_file():
            raise VisionError(f"ONNX model not found: {onnx_path}")
        gpu = _gpu_name() or "unknown-gpu"
        key = trt_engine_key(onnx_path, trt.__version__, gpu, fp16)
        self.engine_path = Path(cache_dir or trt_cache_dir()) / f"{key}.engine"
        if not self.engine_path.is_file():
            log.info("building TensorRT engine %s (fp16=%s)", self.engine_path.name, fp16)
            build_trt_engine(onnx_path, self.engine_path, fp16=fp16)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            raise VisionError(f"cannot deserialise TensorRT engine {self.engine_path}")
        self.context = self.engine.create_execution_context()
        self.torch = torch
        self.stream = torch.cuda.Stream()
        self._lock = threading.Lock()
        w, h = self.input_size
        self.buffers: dict[str, torch.Tensor] = {}
        dtype_map = {trt.float32: torch.float32, trt.float16: torch.float16,
                     trt.int64: torch.int64, trt.int32: torch.int32}
        for i in range(self.engine.num_io_tensors):
            tname = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(tname))
            if tname == INPUT_NAME:
                shape = (1, 3, h, w)
                self.context.set_input_shape(tname, shape)
            dt = dtype_map[self.engine.get_tensor_dtype(tname)]
            buf = torch.empty(shape, dtype=dt, device="cuda")
            self.buffers[tname] = buf
            self.context.set_tensor_address(tname, buf.data_ptr())
        self.provider = f"cuda {gpu}" + (" fp16" if fp16 else "")

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        torch = self.torch
        with self._lock, torch.cuda.stream(self.stream):
            self.buffers[INPUT_NAME].copy_(torch.from_numpy(x), non_blocking=True)
            self.context.execute_async_v3(self.stream.cuda_stream)
            self.stream.synchronize()
            return {n: self.buffers[n].float().cpu().numpy()
                    if self.buffers[n].is_floating_point() else self.buffers[n].cpu().numpy()
                    for n in OUTPUT_NAMES if n in self.buffers}
