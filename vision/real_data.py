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

from vision.datasets.common import LabelledFrames, video_ids

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
                     out_dir: Path, input_wh: str = "512x288", epochs: int = 200,
                     minutes: float = 40.0, threads: int = 2, seed: int = 0,
                     pretrained: Path | None = None, cache: Path | None = None,
                     synth_every: int = 24, full_finetune: bool = False) -> dict:
    """Train on Endoscapes ``train`` (+ synthetic feeds), select on held-out train patients,
    calibrate and export; the official ``val`` split is not read.

    Default: the shipped recipe (vision.train_cached: frozen pretrained body, cached
    features of original + mirrored frames, decoder and heads trained on crops).
    ``full_finetune``: back-propagate through the backbone too (vision.train_real; needs
    far more CPU time).
    """
    from vision.backbone import load_pretrained
    from vision.datasets.feeds import find_feeds
    from vision.finish_real import finish_model
    from vision.models import EncoderNet, mnv2_config
    from vision.train_cached import FEATS, _ort_body, extract_front, tail_outputs, train_cached
    from vision.train_real import RealTrainConfig, train_real

    mc = mnv2_config(parse_wh(input_wh))
    ins, outs = tuple(mc.input_size), mc.output_size
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    real_tr, real_dev = patient_split(load_real(endoscapes, "train", ins, outs, cache))
    train_feeds = find_feeds(list(feeds)) if feeds else []
    vfeeds = find_feeds(list(val_feeds)) if val_feeds else []
    synth = load_synth(train_feeds, ins, outs, synth_every, cache) if train_feeds else None
    synth_val = load_synth(vfeeds, ins, outs, 16, cache) if vfeeds else None
    cfg = RealTrainConfig(epochs=epochs, time_budget_s=minutes * 60, threads=threads,
                          seed=seed, crop=0.7, real_batch=8, synth_batch=4 if synth else 0,
                          eval_every=2)
    log = out_dir / "train_log.jsonl"
    if full_finetune:
        hist = train_real(real_tr, synth, out_dir, mc, real_dev, None, cfg, pretrained, log)
        return finish_model(out_dir, real_tr, real_dev, synth, synth_val, train_feeds,
                            vfeeds, hist)
    net = EncoderNet(mc)
    what = load_pretrained(net.mnv2.body, pretrained)
    sess = _ort_body(net, (ins[1], ins[0]), threads)
    tr_c = extract_front(net, real_tr, ("orig", "flip"), session=sess)
    dev_c = extract_front(net, real_dev, session=sess)
    syn_c = extract_front(net, synth, session=sess) if synth is not None else None
    sv_c = extract_front(net, synth_val, session=sess) if synth_val is not None else None
    hist = train_cached(net, real_tr, tr_c, synth, syn_c, dev_c, out_dir, cfg, log_path=log)
    hist["pretrained"] = what
    from vision import modelio

    net = modelio.load_torch_model(out_dir)
    n = len(real_tr)
    ex = {"tr": tail_outputs(net, {k: tr_c[k][:n] for k in FEATS}),
          "dev": tail_outputs(net, dev_c)}
    if syn_c is not None:
        ex["syn"] = tail_outputs(net, syn_c)
    if sv_c is not None:
        ex["sv"] = tail_outputs(net, sv_c)
    return finish_model(out_dir, real_tr, real_dev, synth, synth_val, train_feeds, vfeeds,
                        hist, extracted=ex)
