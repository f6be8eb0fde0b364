"""Off-label probe frames: views a laparoscopic cholecystectomy model was not validated on.

Used to measure the off-label score (AUROC against real frames) and in tests. Generated
ones: uniform black / white / grey, colour bars, checkerboard, gradient, noise, an
out-of-body room (drape folds, lights), a printed page. Degraded real frames (made from a
frame you pass): heavy blur, dense smoke / fog, near darkness, over-exposure, heavy noise.
Every probe is RGB uint8 at the requested size.
"""

from __future__ import annotations

import cv2
import numpy as np


def generated_probes(w: int, h: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Named synthetic probe frames [h, w, 3] uint8."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    out["black"] = np.zeros((h, w, 3), np.uint8)
    out["white"] = np.full((h, w, 3), 255, np.uint8)
    out["grey"] = np.full((h, w, 3), 128, np.uint8)
    bars = np.array([[192, 192, 192], [192, 192, 0], [0, 192, 192], [0, 192, 0],
                     [192, 0, 192], [192, 0, 0], [0, 0, 192]], np.uint8)
    out["colour_bars"] = np.repeat(bars[None, (np.arange(w) * 7) // w], h, axis=0)
    yy, xx = np.mgrid[:h, :w]
    out["checkerboard"] = np.repeat((((yy // 24 + xx // 24) % 2) * 255).astype(np.uint8)
                                    [..., None], 3, axis=2)
    out["gradient"] = np.dstack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)),
                                 np.full_like(xx, 90)]).astype(np.uint8)
    out["noise"] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    folds = 0.5 + 0.5 * np.sin(xx / 9.0 + 2 * np.sin(yy / 40.0))
    drape = np.dstack([40 + 40 * folds, 110 + 60 * folds, 120 + 50 * folds])
    out["or_drape"] = np.clip(drape + rng.normal(0, 6, drape.shape), 0, 255).astype(np.uint8)
    room = np.dstack([np.full((h, w), v, np.float32) for v in (170, 175, 180)])
    room[int(h * 0.6):] = (120, 115, 105)
    for _ in range(3):
        c = (int(rng.integers(0, w)), int(rng.integers(0, h // 2)))
        cv2.circle(room, c, int(h * 0.08), (255, 255, 250), -1)
    cv2.rectangle(room, (w // 3, h // 3), (w // 3 + w // 5, h), (60, 90, 140), -1)
    out["operating_room"] = cv2.GaussianBlur(room, (0, 0), 2).astype(np.uint8)
    page = np.full((h, w, 3), 245, np.uint8)
    for y in range(h // 10, h - h // 10, max(h // 20, 4)):
        cv2.line(page, (w // 10, y), (w // 10 + int(rng.integers(w // 3, w * 3 // 4)), y),
                 (30, 30, 30), max(h // 120, 1))
    out["printed_page"] = page
    return out


def degraded_probes(rgb: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Named degradations of a real frame that hide the scene."""
    rng = np.random.default_rng(seed)
    f = rgb.astype(np.float32)
    h, w = rgb.shape[:2]
    sigma = max(h, w) / 25.0
    haze = cv2.GaussianBlur(rng.uniform(200, 240, (h, w)).astype(np.float32), (0, 0),
                            sigma)[..., None]
    return {
        "heavy_blur": cv2.GaussianBlur(rgb, (0, 0), sigma),
        "dense_smoke": np.clip(0.15 * f + 0.85 * haze, 0, 255).astype(np.uint8),
        "near_dark": np.clip(f * 0.06, 0, 255).astype(np.uint8),
        "over_exposed": np.clip(f * 4.0 + 80, 0, 255).astype(np.uint8),
        "heavy_noise": np.clip(f * 0.3 + rng.normal(128, 90, f.shape) * 0.7, 0, 255
                               ).astype(np.uint8),
    }
