"""Real + synthetic training data for the pretrained-backbone encoder, cached on disk.

Decoding and resizing 400 JPEGs and a few synthetic feeds costs minutes of CPU, so the
prepared arrays are cached (``cache_dir``, an npz per part keyed by the input size).
Patient-wise dev split of Endoscapes ``train``: every ``dev_every``-th video (sorted by id)
is held out for model selection and calibration; the official ``val`` split is the test set.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from vision.datasets.common import LabelledFrames

_FIELDS = ("images", "masks", "phase", "region", "cvs", "cvs_valid", "tools", "tools_valid",
           "times", "video")


def save_frames(data: LabelledFrames, path: Path) -> None:
    """Write ``data`` to an npz file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: getattr(data, k) for k in _FIELDS},
             sources=np.array(data.sources), fps=np.array(data.fps))


def load_frames(path: Path) -> LabelledFrames:
    """Read what :func:`save_frames` wrote."""
    z = np.load(path)
    return LabelledFrames(**{k: z[k] for k in _FIELDS}, sources=[str(s) for s in z["sources"]],
                          fps=[float(f) for f in z["fps"]])


def cached(cache_dir: Path | None, key: str, make) -> LabelledFrames:
    """``make()`` once per ``key`` (cached as npz in ``cache_dir``; None = no cache)."""
    if cache_dir is None:
        return make()
    path = Path(cache_dir) / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"
    if path.is_file():
        return load_frames(path)
    data = make()
    save_frames(data, path)
    return data


def video_ids(data: LabelledFrames) -> np.ndarray:
    """Per frame the source video's name (e.g. ``endoscapes/100``)."""
    return np.array(data.sources)[data.video]


def patient_split(data: LabelledFrames, dev_every: int = 5, offset: int = 2
                  ) -> tuple[LabelledFrames, LabelledFrames]:
    """(train, dev): every ``dev_every``-th video (sorted numerically) goes to dev."""
    names = sorted(set(data.sources), key=lambda s: int(s.rsplit("/", 1)[-1])
                   if s.rsplit("/", 1)[-1].isdigit() else s)
    dev = {n for i, n in enumerate(names) if i % dev_every == offset}
    vid = video_ids(data)
    is_dev = np.array([v in dev for v in vid])
    return data.subset(np.flatnonzero(~is_dev)), data.subset(np.flatnonzero(is_dev))


def load_real(root: Path | str, split: str, input_size: tuple[int, int],
              output_size: tuple[int, int], cache_dir: Path | None = None) -> LabelledFrames:
    """Endoscapes frames of ``split``: seg201 layout (``matches.json``) or the official one."""
    from vision.datasets.endoscapes import load_endoscapes, load_endoscapes_seg201

    root = Path(root)
    key = f"endoscapes|{root.resolve()}|{split}|{input_size}|{output_size}"
    if (root / "matches.json").is_file():
        return cached(cache_dir, key, lambda: load_endoscapes_seg201(
            root, split, input_size, output_size, raw_ids=True))
    return cached(cache_dir, key, lambda: load_endoscapes(
        root, split, input_size, output_size, cvs=False, seg=True, raw_ids=True))


def load_synth(feeds: list[Path], input_size: tuple[int, int], output_size: tuple[int, int],
               every: int, cache_dir: Path | None = None) -> LabelledFrames:
    """Synthetic feed frames (every ``every``-th), cached."""
    from vision.datasets.feeds import find_feeds, load_feeds

    found = find_feeds(list(feeds))
    key = f"feeds|{[str(p.resolve()) for p in found]}|{input_size}|{output_size}|{every}"
    return cached(cache_dir, key, lambda: load_feeds(found, input_size, output_size, every))


def parse_wh(text: str) -> tuple[int, int]:
    """'512x288' -> (512, 288); both multiples of 32 (the backbone's output stride)."""
    from vision.errors import VisionError

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise VisionError(f"--input must be WxH, got {text!r}") from exc
    if w < 64 or h < 64 or w % 32 or h % 32:
        raise VisionError(f"--input sides must be multiples of 32 (>= 64), got {text!r}")
    return w, h


def train_real_model(endoscapes: Path, feeds: list[Path], val_feeds: list[Path],
                     out_dir: Path, input_wh: str = "512x288", epochs: int = 30,
                     minutes: float = 60.0, threads: int = 2, seed: int = 0,
                     pretrained: Path | None = None, cache: Path | None = None,
                     synth_every: int = 4) -> dict:
    """Train on Endoscapes ``train`` (+ synthetic feeds), select on held-out train patients,
    calibrate and export; the official ``val`` split is not read."""
    from vision.datasets.feeds import find_feeds
    from vision.finish_real import finish_model
    from vision.models import mnv2_config
    from vision.train_real import RealTrainConfig, train_real

    mc = mnv2_config(parse_wh(input_wh), output_stride=2)
    ins, outs = tuple(mc.input_size), mc.output_size
    real_tr, real_dev = patient_split(load_real(endoscapes, "train", ins, outs, cache))
    train_feeds = find_feeds(list(feeds)) if feeds else []
    vfeeds = find_feeds(list(val_feeds)) if val_feeds else []
    synth = load_synth(train_feeds, ins, outs, synth_every, cache) if train_feeds else None
    synth_val = load_synth(vfeeds, ins, outs, 8, cache) if vfeeds else None
    cfg = RealTrainConfig(epochs=epochs, time_budget_s=minutes * 60, threads=threads,
                          seed=seed, crop=0.7, real_batch=6, synth_batch=3 if synth else 0,
                          eval_every=3)
    hist = train_real(real_tr, synth, Path(out_dir), mc, real_dev, None, cfg, pretrained,
                      Path(out_dir) / "train_log.jsonl")
    return finish_model(Path(out_dir), real_tr, real_dev, synth, synth_val, train_feeds,
                        vfeeds, hist)
