"""Tissue textures, one per class, rendered once per feed from seeded noise.

Each texture is an RGB uint8 image the size of the world canvas; the per-frame renderer only
gathers from them through the label map, so classes keep a distinct colour *and* pattern
(which is what a segmentation model has to learn to tell them apart).
"""

from __future__ import annotations

import numpy as np

from vision.synth.noise import blobs, fractal_noise, ridges, streaks


def _mix(base: tuple[float, float, float], shade: np.ndarray, amount: float) -> np.ndarray:
    """Base colour modulated by ``shade`` in [0, 1] (amount = relative contrast); float32 HxWx3."""
    col = np.asarray(base, np.float32)[None, None, :]
    return col * (1.0 - amount + 2.0 * amount * shade[..., None])


def _lerp(a: np.ndarray, colour: tuple[float, float, float], t: np.ndarray) -> np.ndarray:
    """Blend image ``a`` towards ``colour`` by weight ``t`` (HxW in [0, 1])."""
    return a * (1.0 - t[..., None]) + np.asarray(colour, np.float32)[None, None, :] * t[..., None]


def _u8(a: np.ndarray) -> np.ndarray:
    return np.clip(a, 0, 255).astype(np.uint8)


def tissue_textures(
    rng: np.random.Generator, h: int, w: int, scale: float
) -> dict[str, np.ndarray]:
    """Textures for the laparoscopic classes; ``scale`` = pixels per 100 world units (size hint)."""
    s = max(scale, 8.0) / 100.0
    n1 = fractal_noise(rng, h, w, 60 * s, 5)
    n2 = fractal_noise(rng, h, w, 25 * s, 4)
    fine = fractal_noise(rng, h, w, 6 * s, 2)
    tex: dict[str, np.ndarray] = {}

    # liver: dark red-brown, mottled lobular pattern, fine speckle
    lob = blobs(rng, h, w, int(h * w / (140 * s * s) / 100) + 50, 3 * s, 7 * s, 1.0)
    a = _mix((132, 52, 42), 0.5 * n1 + 0.25 * n2 + 0.25 * fine, 0.4)
    a = _lerp(a, (92, 30, 28), 0.4 * lob)
    a = _lerp(a, (150, 80, 60), 0.25 * np.clip(n2 - 0.4, 0, 1))
    tex["liver"] = _u8(a)

    # gallbladder: pale green-blue-white wall with thin serosal vessels
    v = ridges(rng, h, w, 45 * s, 0.025)
    a = _mix((136, 156, 128), 0.6 * n2 + 0.4 * fine, 0.3)
    a = _lerp(a, (196, 200, 172), 0.4 * n1)
    a = _lerp(a, (90, 120, 110), 0.25 * np.clip(1 - n1 * 2, 0, 1))
    a = _lerp(a, (170, 60, 70), 0.65 * v)
    v2 = ridges(rng, h, w, 20 * s, 0.02)
    a = _lerp(a, (180, 90, 95), 0.35 * v2)
    tex["gallbladder"] = _u8(a)

    # fat: many small yellow lobules, bright centres, darker septa between them
    r = 1.6 * s * 100 / 60
    lob = blobs(rng, h, w, int(h * w / (r * r * 6)) + 80, 0.9 * r, 1.6 * r, 0.35 * r)
    lob2 = blobs(rng, h, w, int(h * w / (r * r * 14)) + 40, 1.5 * r, 2.6 * r, 0.5 * r)
    lb = np.clip(0.65 * lob + 0.5 * lob2, 0, 1)
    a = _mix((206, 168, 100), 0.55 * lb + 0.25 * n2 + 0.2 * fine, 0.38)
    a = _lerp(a, (236, 214, 150), 0.3 * lb ** 2)
    a = _lerp(a, (170, 90, 60), 0.25 * (1 - lb) * n1)
    tex["fat"] = _u8(a)

    # connective tissue: whitish-pink fibrous strands
    st = streaks(rng, h, w, 12.0, 35.0)
    a = _mix((176, 112, 100), 0.55 * st + 0.25 * fine + 0.2 * n2, 0.4)
    a = _lerp(a, (226, 196, 180), 0.35 * np.clip(st - 0.5, 0, 1) * 2)
    tex["connective_tissue"] = _u8(a)

    # abdominal wall: pale pink with branching red vessels
    v = ridges(rng, h, w, 80 * s, 0.03)
    a = _mix((206, 158, 150), 0.7 * n1 + 0.3 * fine, 0.2)
    a = _lerp(a, (150, 40, 45), 0.75 * v)
    tex["abdominal_wall"] = _u8(a)

    # gi tract (serosa of duodenum / colon): pink-magenta with vessels
    v = ridges(rng, h, w, 35 * s, 0.03)
    v2 = ridges(rng, h, w, 12 * s, 0.025)
    a = _mix((200, 110, 122), 0.6 * n2 + 0.4 * fine, 0.3)
    a = _lerp(a, (140, 30, 60), 0.6 * v)
    a = _lerp(a, (160, 50, 70), 0.35 * v2)
    tex["gi_tract"] = _u8(a)

    # liver ligament: whitish-yellow fibrous band
    st = streaks(rng, h, w, 20.0, 80.0)
    tex["liver_ligament"] = _u8(_mix((226, 204, 150), 0.7 * st + 0.3 * fine, 0.25))

    # hepatic vein: dark blue
    tex["hepatic_vein"] = _u8(_mix((72, 58, 104), 0.5 * n2 + 0.5 * fine, 0.3))

    # ducts and vessels (tubes get cylindrical shading from the renderer)
    tex["cystic_duct"] = _u8(_mix((238, 228, 200), 0.5 * n2 + 0.5 * fine, 0.15))
    tex["common_bile_duct"] = _u8(_mix((150, 166, 98), 0.5 * n2 + 0.5 * fine, 0.18))
    tex["cystic_artery"] = _u8(_mix((196, 58, 62), 0.5 * n2 + 0.5 * fine, 0.15))
    tex["large_vessel"] = _u8(_mix((120, 28, 92), 0.5 * n1 + 0.5 * fine, 0.2))

    # blood: deep glossy red, darker where thick
    a = _mix((118, 6, 9), 0.6 * n2 + 0.4 * fine, 0.4)
    a = _lerp(a, (70, 2, 6), 0.4 * np.clip(n1 - 0.4, 0, 1) * 2)
    tex["blood"] = _u8(a)

    # clips: titanium, nearly flat bright metal
    tex["clip"] = _u8(_mix((214, 214, 224), fine, 0.08))
    return tex


def wetness_lut(classes: tuple[str, ...]) -> np.ndarray:
    """Per-class specular strength in [0, 1] (wet serosa shines, fat and wall less)."""
    wet = {
        "liver": 1.0, "gallbladder": 1.0, "blood": 1.0, "gi_tract": 0.9, "large_vessel": 0.9,
        "cystic_artery": 0.7, "cystic_duct": 0.7, "common_bile_duct": 0.7, "fat": 0.45,
        "connective_tissue": 0.5, "abdominal_wall": 0.5, "liver_ligament": 0.4,
        "hepatic_vein": 0.6, "clip": 1.0,
    }
    return np.array([wet.get(c, 0.0) for c in classes], np.float32)
