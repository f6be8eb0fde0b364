"""EncoderNet / DeployModel shapes, config round trip, temporal phase filter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vision.errors import VisionError
from vision.labels import CLASSES, CVS_CRITERIA, PHASES, REGIONS, TOOLS
from vision.models import OUTPUT_NAMES, DeployModel, EncoderNet, ModelConfig
from vision.temporal import PhaseFilter


def test_vision_heads_shapes_and_ranges() -> None:
    cfg = ModelConfig(input_size=(96, 64))
    net = EncoderNet(cfg).eval()
    x = torch.rand(2, 3, 64, 96) * 255
    raw = net(x)
    assert raw["seg"].shape == (2, len(CLASSES), 32, 48)
    assert raw["tools"].shape == (2, len(TOOLS))
    assert raw["phase"].shape == (2, len(PHASES))
    assert raw["cvs"].shape == (2, len(CVS_CRITERIA))
    assert raw["region"].shape == (2, len(REGIONS))
    outs = dict(zip(OUTPUT_NAMES, DeployModel(net).eval()(x), strict=True))
    assert outs["seg_labels"].dtype == torch.int64
    assert torch.equal(outs["seg_labels"], raw["seg"].argmax(1))
    prob = torch.softmax(raw["seg"], 1).max(1).values
    torch.testing.assert_close(outs["seg_conf"], prob, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(outs["phase"].sum(1), torch.ones(2))
    assert ((outs["cvs"] > 0) & (outs["cvs"] < 1)).all()


def test_vision_config_round_trip() -> None:
    cfg = ModelConfig(input_size=(128, 96), widths=(8, 8, 16, 16, 24))
    back = ModelConfig.from_dict(cfg.to_dict())
    assert back.input_size == (128, 96) and back.widths == (8, 8, 16, 16, 24)
    assert back.output_size == (64, 48)
    assert back.classes == CLASSES


def test_vision_phase_filter_is_stable_and_causal() -> None:
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(4), 50)  # 4 phases, 50 frames each at 5 fps
    pf = PhaseFilter.fit([truth], [5.0], len(PHASES))
    # learnt rates: forward transitions much faster than backward ones
    assert pf.rate[0, 1] > 10 * pf.rate[1, 0]
    flips_raw = flips_filt = correct = 0
    prev_raw = prev_filt = None
    for k, p in enumerate(truth):
        probs = np.full(len(PHASES), 0.05)
        wrong = rng.random() < 0.3  # 30 % of single frames point to a random phase
        probs[rng.integers(len(PHASES)) if wrong else p] += 0.6
        probs /= probs.sum()
        b = pf.update(probs, k / 5.0)
        raw, filt = int(probs.argmax()), int(b.argmax())
        flips_raw += prev_raw is not None and raw != prev_raw
        flips_filt += prev_filt is not None and filt != prev_filt
        prev_raw, prev_filt = raw, filt
        correct += filt == p
    assert correct / len(truth) > 0.9
    assert flips_filt < flips_raw / 4
    pf.reset()
    assert pf.belief is None


def test_vision_phase_filter_rate_independent_and_roundtrip(tmp_path) -> None:
    pf = PhaseFilter.uniform(len(PHASES), mean_dwell_s=10.0)
    # two half steps equal one full step
    np.testing.assert_allclose(pf.transition(0.5) @ pf.transition(0.5), pf.transition(1.0),
                               atol=1e-6)
    pf.save(tmp_path / "t.json")
    back = PhaseFilter.load(tmp_path / "t.json")
    np.testing.assert_allclose(back.rate, pf.rate)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(VisionError):
        PhaseFilter.load(tmp_path / "bad.json")
