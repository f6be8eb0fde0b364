"""Teach by example (vision.teach): learner on synthetic feature maps, save / load, and the
shipped model's per-pixel features."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from vision.teach import ConceptBook, TeachError, grow_region, kmeans, normalise

C, H, W = 32, 18, 32


def scene(seed: int, shift: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Features [C, H, W] of three 'materials' (fixed directions + noise) and their masks."""
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(99).normal(size=(3, C))
    regions = np.zeros((H, W), int)
    regions[4:10, 6 + shift:14 + shift] = 1  # "duct"
    regions[12:16, 18:30] = 2  # something else
    f = base[regions].transpose(2, 0, 1) + 0.35 * rng.normal(size=(C, H, W))
    return f.astype(np.float32), {"duct": regions == 1, "other": regions == 2}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_point_grows_over_similar_features():
    f, m = scene(0)
    region = grow_region(normalise(f), ((10 + 0.5) / W, (7 + 0.5) / H), grow=0.5)
    assert iou(region, m["duct"]) > 0.8
    assert not (region & m["other"]).any()


def test_taught_from_a_point_outlines_the_concept_on_a_new_frame():
    book = ConceptBook({"threshold": 0.0, "grow": 0.5})
    f, _ = scene(0)
    book.teach("accessory duct", f, point=(10.5 / W, 7.5 / H), time_s=12.0)
    g, m = scene(1, shift=4)  # another frame: the structure moved
    out = book.masks(g, (W, H), smooth=False)["accessory duct"]
    assert iou(out, m["duct"]) > 0.8
    assert out[m["other"]].mean() < 0.05
    assert book.describe("Accessory Duct") == {"name": "accessory duct", "taught_at_s": 12.0,
                                               "examples": 1, "negatives": 0}


def test_mask_example_negative_example_and_forget():
    book = ConceptBook({"threshold": 0.0})
    f, m = scene(2)
    book.teach("landmark one", f, mask=m["duct"])
    book.teach("landmark one", f, mask=m["other"], positive=False)
    assert book.describe("landmark one")["negatives"] == 1
    with pytest.raises(TeachError):
        book.teach("never taught", f, mask=m["other"], positive=False)
    with pytest.raises(TeachError):
        book.teach("landmark two", f, mask=np.zeros((H, W), bool))
    assert book.forget("landmark one") and not book.forget("landmark one")
    assert book.names() == []


def test_temporal_smoothing_blends_with_the_previous_frame():
    book = ConceptBook({"threshold": 0.0, "smoothing": 0.5})
    f, m = scene(3)
    book.teach("duct", f, mask=m["duct"])
    g, _ = scene(4)
    raw_f = book.scores(f, smooth=False)["duct"]
    raw_g = book.scores(g, smooth=False)["duct"]
    book.scores(f)
    np.testing.assert_allclose(book.scores(g)["duct"], 0.5 * raw_g + 0.5 * raw_f, atol=1e-5)
    book.reset_time()
    np.testing.assert_allclose(book.scores(g)["duct"], raw_g, atol=1e-5)


def test_save_load_roundtrip_holds_prototypes_only(tmp_path):
    book = ConceptBook({"threshold": 0.0, "grow": 0.5, "k_pos": 4, "k_neg": 8})
    f, m = scene(5)
    book.teach("aberrant artery", f, point=(10.5 / W, 7.5 / H), time_s=3.0)
    book.teach("aberrant artery", f, mask=m["duct"], time_s=4.0)
    path = book.save(tmp_path / "taught.npz")
    g, _ = scene(6)
    loaded = ConceptBook({"threshold": 0.0})
    assert loaded.load(path) == ["aberrant artery"]
    np.testing.assert_allclose(loaded.scores(g, smooth=False)["aberrant artery"],
                               book.scores(g, smooth=False)["aberrant artery"], atol=1e-4)
    # nothing but prototypes: per concept [<= k per example, C] float32 vectors + metadata
    with zipfile.ZipFile(path) as z:
        names = sorted(z.namelist())
    assert names == ["meta.npy", "neg_0.npy", "pos_0.npy"]
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        assert set(meta) == {"format", "concepts"}
        assert meta["concepts"][0]["examples"][0] == {"time_s": 3.0, "kind": "point",
                                                      "positive": True}
        for key in ("pos_0", "neg_0"):
            a = z[key]
            assert a.dtype == np.float32 and a.ndim == 2 and a.shape[1] == C
            assert len(a) <= 8 * 2  # k centroids per example, never every cell
            np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    assert path.stat().st_size < 8 * 1024


def test_load_rejects_other_files(tmp_path):
    bad = tmp_path / "x.npz"
    np.savez(bad, image=np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(TeachError):
        ConceptBook().load(bad)
    (tmp_path / "y.npz").write_text("not a zip")
    with pytest.raises(TeachError):
        ConceptBook().load(tmp_path / "y.npz")


def test_kmeans_is_deterministic_and_unit_norm():
    x = np.random.default_rng(0).normal(size=(200, C)).astype(np.float32)
    a, b = kmeans(x, 5), kmeans(x, 5)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (5, C)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_shipped_model_outputs_per_pixel_features():
    from vision.pipeline import VisionPipeline

    pipe = VisionPipeline.load(runtime="onnxruntime", threads=1)
    frame = (np.random.default_rng(0).uniform(0, 255, (360, 640, 3))).astype(np.uint8)
    res = pipe.process(frame)
    assert res.features is not None
    c, h, w = res.features.shape
    iw, ih = pipe.input_size
    assert (h, w) == (ih // 16, iw // 16) and c >= 32
    np.testing.assert_allclose(np.linalg.norm(res.features, axis=0), 1.0, atol=1e-3)


def test_refined_point_region_contains_the_grown_one_and_is_capped():
    f, m = scene(7)
    point = (10.5 / W, 7.5 / H)
    grown = grow_region(normalise(f), point, grow=0.8)
    book = ConceptBook({"threshold": 0.0, "grow": 0.8, "refine": True, "max_region": 0.1})
    inside, outside = book.region(normalise(f), point=point)
    assert (inside | ~grown).all()  # never smaller than the grown region (below the cap)
    assert inside.sum() <= max(grown.sum(), int(0.1 * H * W))
    assert iou(inside, m["duct"]) >= iou(grown, m["duct"]) - 1e-9
    assert not (inside & outside).any()
