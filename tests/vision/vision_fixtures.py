"""Writers for tiny on-disk fixtures in the exact layouts the vision loaders read.

Not a test module (no ``test_`` prefix); imported by the ``test_vision_*`` files.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from vision.labels import CLASS_ID, CLASSES, CVS_CRITERIA, PHASES, REGIONS, TOOLS


def scene(t: float, w: int, h: int, phase: int, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray]:
    """A simple laparoscopic-looking RGB frame and its class-id mask (liver, gallbladder,
    cystic duct, grasper), with shapes that move with ``t`` and a black circular border."""
    rgb = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    fov = (xx - w / 2) ** 2 / (0.5 * w) ** 2 + (yy - h / 2) ** 2 / (0.5 * h) ** 2 <= 1
    rgb[fov] = (150, 60, 50)
    mask[fov] = CLASS_ID["fat"]
    liver = fov & (yy < h * (0.35 + 0.05 * np.sin(t)))
    rgb[liver] = (120, 30, 30)
    mask[liver] = CLASS_ID["liver"]
    cx = int(w * (0.5 + 0.1 * np.sin(t / 2)))
    cv2.ellipse(rgb, (cx, int(h * 0.55)), (w // 6, h // 8), 20, 0, 360, (90, 140, 60), -1)
    cv2.ellipse(mask, (cx, int(h * 0.55)), (w // 6, h // 8), 20, 0, 360,
                CLASS_ID["gallbladder"], -1)
    cv2.line(rgb, (cx, int(h * 0.62)), (cx - w // 5, int(h * 0.8)), (230, 220, 180), 5)
    cv2.line(mask, (cx, int(h * 0.62)), (cx - w // 5, int(h * 0.8)), CLASS_ID["cystic_duct"], 5)
    if phase % 2 == 1:
        pts = np.array([[w - 1, h // 3], [int(w * 0.6), int(h * 0.5)],
                        [int(w * 0.62), int(h * 0.56)], [w - 1, h // 2]], np.int32)
        cv2.fillPoly(rgb, [pts], (190, 190, 200))
        cv2.fillPoly(mask, [pts], CLASS_ID["grasper"])
    noise = rng.integers(-6, 7, rgb.shape)
    rgb = np.clip(rgb.astype(np.int16) + noise * fov[..., None], 0, 255).astype(np.uint8)
    return rgb, mask


def write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """H.264 MP4 through PyAV."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=int(fps))
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def write_feed(out: Path, seed: int, n_frames: int = 24, size: tuple[int, int] = (96, 80),
               fps: float = 8.0, scenario: str = "cholecystectomy") -> Path:
    """A tiny feed folder per docs/feed_format.md (video.mp4, masks/, truth.json)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    frames, labels = [], {"phase": [], "region": [], "cvs": [], "tools": [],
                          "classes_present": []}
    for i in range(n_frames):
        phase = min(len(PHASES) - 1, i * 3 // n_frames)
        rgb, mask = scene(i / fps + seed, w, h, phase, rng)
        frames.append(rgb)
        cv2.imwrite(str(out / "masks" / f"{i:06d}.png"), mask)
        labels["phase"].append(phase if scenario == "cholecystectomy" else -1)
        labels["region"].append(0 if scenario == "cholecystectomy" else 1 + phase)
        labels["cvs"].append([int(phase >= 1), int(phase >= 2), 0])
        labels["tools"].append([int(phase % 2 == 1)] + [0] * (len(TOOLS) - 1))
        labels["classes_present"].append(sorted(int(c) for c in np.unique(mask)))
    write_mp4(out / "video.mp4", frames, fps)
    truth = {
        "schema_version": 1, "scenario": scenario, "seed": seed, "fps": fps, "width": w,
        "height": h, "n_frames": n_frames, "duration_s": n_frames / fps,
        "classes": list(CLASSES), "phases": [], "segments": [], "frame_labels": labels,
        "events": [], "utterances": [], "noise": {},
    }
    (out / "truth.json").write_text(json.dumps(truth))
    assert len(CVS_CRITERIA) == 3 and len(REGIONS) > 3
    return out

