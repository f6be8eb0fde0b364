"""A fake vision encoder runtime: the deploy outputs of a model, made up, in their shapes.

``FakeEncoderRuntime`` is a ``vision.runtimes.EncoderRuntime``: ``run(x)`` takes float32
[1, 3, H, W] at the config's ``input_size`` and returns every ``vision.models.OUTPUT_NAMES``
array in the shape and dtype the real runtimes give (seg maps at input / output_stride,
per-frame probabilities over the config's label tables, an embedding, per-pixel features at
1/16). The answer is fixed by the constructor (a segmented class in the centre, the phase,
region and tools), so ``VisionPipeline(FakeEncoderRuntime(...))`` runs without a model file.
``calls`` counts ``run`` calls. A ``model_dir`` is optional: with one, its ``config.json``
is read as the real runtimes do; without, ``config`` (default: ``ModelConfig`` at 64x64).

``register(monkeypatch)`` makes ``create_runtime("fake", ...)`` build it for one test.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vision import runtimes
from vision.errors import VisionError
from vision.models import ModelConfig
from vision.runtimes import EncoderRuntime

#: channels of the fake per-pixel ``features`` output
FEATURE_CHANNELS = 8


class FakeEncoderRuntime(EncoderRuntime):
    """Deterministic deploy outputs without a model (see the module docstring)."""

    name = "fake"

    def __init__(self, model_dir: Path | str | None = None, threads: int = 1,
                 config: ModelConfig | None = None, seg_class: str | None = None,
                 seg_conf: float = 0.9, phase: int = 0, region: int = 0,
                 tools: Sequence[str] = (), p_top: float = 0.9) -> None:
        if model_dir is not None:
            super().__init__(Path(model_dir), threads)
        else:
            self.model_dir = Path("fake-model")
            self.config = config or ModelConfig(input_size=(64, 64))
            self.threads = max(1, int(threads))
        self.provider = "fake"
        cfg = self.config
        if seg_class is not None and seg_class not in cfg.classes:
            raise VisionError(f"fake runtime: unknown class {seg_class!r}")
        unknown = set(tools) - set(cfg.tools)
        if unknown:
            raise VisionError(f"fake runtime: unknown tools {sorted(unknown)}")
        self.seg_class = cfg.classes.index(seg_class) if seg_class else 0
        self.seg_conf = float(seg_conf)
        self.phase = int(phase)
        self.region = int(region)
        self.tool_names = tuple(tools)
        self.p_top = float(p_top)
        self.calls = 0

    def _one_hot(self, n: int, k: int) -> np.ndarray:
        """[1, n] probabilities: ``p_top`` on ``k``, the rest shared evenly."""
        p = np.full((1, n), (1.0 - self.p_top) / max(1, n - 1), np.float32)
        p[0, k] = self.p_top if n > 1 else 1.0
        return p

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """float32 [1, 3, H, W] (H, W = input_size) -> the deploy outputs (fixed values)."""
        w, h = self.input_size
        if x.dtype != np.float32 or x.shape != (1, 3, h, w):
            raise VisionError(f"fake runtime: expected float32 [1, 3, {h}, {w}], got "
                              f"{x.dtype} {list(x.shape)}")
        self.calls += 1
        cfg = self.config
        ow, oh = cfg.output_size
        labels = np.zeros((1, oh, ow), np.int64)
        labels[0, oh // 4: 3 * oh // 4, ow // 4: 3 * ow // 4] = self.seg_class
        tools = np.array([[0.9 if t in self.tool_names else 0.05 for t in cfg.tools]],
                         np.float32)
        feats = np.zeros((1, FEATURE_CHANNELS, max(1, h // 16), max(1, w // 16)), np.float32)
        feats[:, 0] = 1.0  # unit L2 norm per cell
        return {
            "seg_labels": labels,
            "seg_conf": np.full((1, oh, ow), self.seg_conf, np.float32),
            "tools": tools,
            "phase": self._one_hot(len(cfg.phases), self.phase),
            "cvs": np.full((1, len(cfg.cvs_criteria)), 0.1, np.float32),
            "region": self._one_hot(len(cfg.regions), self.region),
            "embedding": np.full((1, cfg.embedding_dim), 1.0 / np.sqrt(cfg.embedding_dim),
                                 np.float32),
            "features": feats,
        }


def register(monkeypatch: Any, name: str = "fake") -> None:
    """Make ``create_runtime(name, model_dir)`` build a FakeEncoderRuntime for one test."""
    monkeypatch.setitem(runtimes._REGISTRY, name, FakeEncoderRuntime)
