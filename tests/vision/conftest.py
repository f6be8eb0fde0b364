"""Session fixtures for the vision tests (helpers live in vision_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vision.labels import PHASES


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A small random-init model (64x64 input) saved and exported to ONNX (verified)."""
    import torch

    from vision.export import export_onnx
    from vision.modelio import save_model
    from vision.models import EncoderNet, ModelConfig
    from vision.temporal import PhaseFilter

    torch.manual_seed(0)
    cfg = ModelConfig(input_size=(64, 64), widths=(8, 12, 16, 24, 32), depths=(1, 1, 2, 1),
                      decoder_channels=16, embedding_dim=16)
    net = EncoderNet(cfg).eval()
    # non-trivial BatchNorm statistics, so the export has to fold them correctly
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    d = tmp_path_factory.mktemp("tiny_model")
    save_model(net, d)
    PhaseFilter.uniform(len(PHASES)).save(d / "temporal.json")
    export_onnx(d)
    return d
