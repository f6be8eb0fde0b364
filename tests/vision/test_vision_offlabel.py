"""Off-label score: Gaussian domain model, calibration, save / load, AUROC, probes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vision.offlabel import DomainGaussian, OffLabelScorer, auroc
from vision.probes import degraded_probes, generated_probes


def test_vision_offlabel_scores_far_frames_low(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (300, 40)) * np.linspace(3, 0.1, 40)
    b = rng.normal(0, 1, (300, 40)) + 20
    da = DomainGaussian.fit("a", a[:200], k=8)
    da.calibrate(a[200:])
    db = DomainGaussian.fit("b", b[:200], k=8)
    db.calibrate(b[200:])
    sc = OffLabelScorer([da, db])
    held = sc.score(a[200:])
    assert 0.9 <= (held >= 0.5).mean() <= 1.0  # threshold = 99th held-out percentile
    assert (sc.score(b[200:]) >= 0.5).mean() > 0.9  # second validated domain
    far = rng.normal(0, 1, (50, 40)) * 8 - 30
    assert (sc.score(far) < 0.5).all()
    assert auroc(held, sc.score(far)) == 1.0
    sc.save(tmp_path / "offlabel.npz")
    back = OffLabelScorer.load(tmp_path / "offlabel.npz")
    np.testing.assert_allclose(back.score(far), sc.score(far), rtol=1e-5)


def test_vision_auroc_ties_and_order() -> None:
    assert auroc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5
    assert auroc(np.array([0.0]), np.array([1.0])) == 0.0
    assert abs(auroc(np.array([0.2, 0.9]), np.array([0.5])) - 0.5) < 1e-9


def test_vision_probes_shapes() -> None:
    gen = generated_probes(64, 48)
    assert {"black", "white", "colour_bars", "operating_room", "noise"} <= set(gen)
    assert all(v.shape == (48, 64, 3) and v.dtype == np.uint8 for v in gen.values())
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    deg = degraded_probes(rgb)
    assert deg["near_dark"].max() < 20 and deg["heavy_blur"].std() < rgb.std()
