"""Model directory layout, loading and saving.

A model directory holds::

    config.json      ModelConfig (architecture, input size, label tables)
    model.pt         PyTorch state dict of EncoderNet (float32)
    model.onnx       exported DeployModel (written by vision.export)
    temporal.json    phase filter parameters (vision.temporal)
    region_temporal.json  region / bowel-segment filter parameters (optional)
    metrics.json     validation metrics written by training / evaluation
    MODEL_CARD.md    data, metrics, limits
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vision.errors import VisionError
from vision.models import EncoderNet, ModelConfig

CONFIG = "config.json"
WEIGHTS = "model.pt"
ONNX = "model.onnx"
TEMPORAL = "temporal.json"
REGION_TEMPORAL = "region_temporal.json"
METRICS = "metrics.json"
CARD = "MODEL_CARD.md"

#: The shipped default model (trained on synthetic feeds only).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "weights" / "default"
#: The model validated on the project's synthetic feeds (trained on synthetic scenes only):
#: the copilot uses it for those feeds, where the real-frame default scores lower.
SYNTHETIC_MODEL_DIR = Path(__file__).resolve().parent / "weights" / "synthetic"


def resolve_model_dir(model_dir: Path | str | None) -> Path:
    """``None`` -> the shipped default; otherwise check the folder exists."""
    d = DEFAULT_MODEL_DIR if model_dir is None else Path(model_dir)
    if not d.is_dir():
        raise VisionError(f"model directory not found: {d}")
    if not (d / CONFIG).is_file():
        raise VisionError(f"not a model directory (no {CONFIG}): {d}")
    return d


def load_config(model_dir: Path) -> ModelConfig:
    """Read ``config.json``."""
    path = Path(model_dir) / CONFIG
    try:
        return ModelConfig.from_dict(json.loads(path.read_text()))
    except FileNotFoundError as exc:
        raise VisionError(f"model config not found: {path}") from exc
    except (ValueError, TypeError) as exc:
        raise VisionError(f"corrupt model config {path}: {exc}") from exc


def load_torch_model(model_dir: Path) -> EncoderNet:
    """Build EncoderNet from ``config.json`` and load ``model.pt`` (eval mode, CPU)."""
    import torch

    cfg = load_config(model_dir)
    net = EncoderNet(cfg)
    path = Path(model_dir) / WEIGHTS
    if not path.is_file():
        raise VisionError(f"PyTorch weights not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except Exception as exc:  # corrupt pickle, shape mismatch
        raise VisionError(f"cannot load weights {path}: {exc}") from exc
    return net.eval()


def save_model(net: EncoderNet, model_dir: Path) -> None:
    """Write ``config.json`` and ``model.pt``."""
    import torch

    d = Path(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / CONFIG).write_text(json.dumps(net.cfg.to_dict(), indent=1))
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    torch.save(state, d / WEIGHTS)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
