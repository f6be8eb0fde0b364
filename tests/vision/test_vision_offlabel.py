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


def test_vision_offlabel_content_check_caps_dark_blank_and_blurred(tmp_path: Path) -> None:
    import cv2

    rng = np.random.default_rng(1)
    frames = []
    for _ in range(40):
        img = rng.integers(40, 220, (72, 128, 3), dtype=np.uint8)
        frames.append(cv2.GaussianBlur(img, (0, 0), 1.0))
    frames = np.stack(frames)
    emb = rng.normal(0, 1, (40, 8))
    d = DomainGaussian.fit("a", emb[:30], k=4)
    d.calibrate(emb[30:])
    sc = OffLabelScorer([d])
    sc.fit_content(frames)
    e = emb[35]
    assert sc.score(e, frames[0])[0] == sc.score(e)[0] or sc.score(e, frames[0])[0] > 0.5
    probes = degraded_probes(frames[0])
    for name in ("near_dark", "heavy_blur"):
        assert sc.score(e, probes[name])[0] < 0.5, name
    assert sc.score(e, np.zeros_like(frames[0]))[0] < 0.5
    sc.save(tmp_path / "o.npz")
    back = OffLabelScorer.load(tmp_path / "o.npz")
    np.testing.assert_allclose(back.content_thr, sc.content_thr)
