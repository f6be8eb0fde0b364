"""Training of the encoder (all heads jointly) and of the causal phase filter.

``train_from_feeds(train_feeds, out_dir, val_feeds=...)`` decodes the feeds into memory,
trains EncoderNet with a time / step budget (AdamW, cosine learning rate, light photometric
and zoom augmentation), fits the phase filter on the training phase sequences (its emission
sharpness is chosen on the validation feeds), evaluates on the validation feeds, writes
``config.json``, ``model.pt``, ``temporal.json``, ``metrics.json``, the ONNX export (verified
against PyTorch) and ``MODEL_CARD.md``. Any :class:`LabelledFrames` source (CholecSeg8k,
Cholec80, Endoscapes) can be passed to :func:`train_model` as well: labels a source lacks
are masked out of the loss.

Fitting and tuning the filters is ``vision.temporal_fit``; the model card ``vision.model_card``
(both re-exported here).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vision import modelio
from vision.datasets.common import LabelledFrames
from vision.errors import VisionError
from vision.evaluate import evaluate_frames
from vision.labels import CLASSES, IGNORE_INDEX
from vision.model_card import _fmt as _fmt
from vision.model_card import write_model_card
from vision.models import ModelConfig
from vision.temporal_fit import (
    REGION_FAST,
    REGION_POWERS,
    REGION_TOL,
    fit_filters_from_truth,
    fit_phase_filter,
    fit_state_filter,
    tune_phase_filter,
    tune_state_filter,
)
from vision.temporal_fit import _n_states as _n_states
from vision.temporal_fit import _set_fast as _set_fast

__all__ = [
    "REGION_FAST", "REGION_POWERS", "REGION_TOL", "TrainConfig", "feed_seeds",
    "fit_filters_from_truth", "fit_phase_filter", "fit_state_filter", "refit_temporal",
    "seg_class_weights", "split_feeds_by_seed", "torch_predictor", "train_from_feeds",
    "train_model", "tune_phase_filter", "tune_state_filter", "write_model_card",
]


@dataclass
class TrainConfig:
    """Optimisation settings; training stops at ``max_steps`` or ``time_budget_s``."""

    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-4
    max_steps: int = 4000
    time_budget_s: float = 1200.0
    warmup_steps: int = 100
    threads: int = 2
    seed: int = 0
    every: int = 2  # keep every n-th decoded frame of a feed
    augment: bool = True
    seg_weight: float = 1.0
    head_weights: dict = field(default_factory=lambda: {
        "tools": 0.5, "phase": 1.0, "cvs": 1.0, "region": 1.0})


def seg_class_weights(masks: np.ndarray, n: int = len(CLASSES), power: float = 0.5,
                      clip: tuple[float, float] = (0.2, 5.0)) -> np.ndarray:
    """Inverse-frequency class weights ``(median / freq) ** power`` for the seg loss."""
    counts = np.bincount(masks[masks != IGNORE_INDEX].reshape(-1), minlength=256)[:n]
    counts = counts.astype(np.float64)
    present = counts > 0
    w = np.ones(n)
    if present.any():
        freq = counts / counts.sum()
        med = np.median(freq[present])
        w[present] = np.clip((med / freq[present]) ** power, *clip)
    return w.astype(np.float32)


def _augment(x, m, gen):
    """Photometric jitter for images x [B,3,H,W] (0..255) and a random zoom for x and m."""
    import torch
    import torch.nn.functional as F

    b = x.shape[0]
    gain = 1 + 0.25 * (torch.rand(b, 1, 1, 1, generator=gen) - 0.5)
    chan = 1 + 0.12 * (torch.rand(b, 3, 1, 1, generator=gen) - 0.5)
    bias = 20 * (torch.rand(b, 1, 1, 1, generator=gen) - 0.5)
    x = (x * gain * chan + bias).clamp(0, 255)
    zoom = torch.rand(b, generator=gen) < 0.5
    if zoom.any():
        s = 1 / (1 + 0.3 * torch.rand(b, generator=gen))
        s = torch.where(zoom, s, torch.ones_like(s))
        tx = (1 - s) * (2 * torch.rand(b, generator=gen) - 1)
        ty = (1 - s) * (2 * torch.rand(b, generator=gen) - 1)
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = s, s, tx, ty
        gx = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, gx, mode="bilinear", padding_mode="border", align_corners=False)
        gm = F.affine_grid(theta, [b, 1, *m.shape[-2:]], align_corners=False)
        m = F.grid_sample(m[:, None].float(), gm, mode="nearest", padding_mode="border",
                          align_corners=False)[:, 0].long()
    x = x + 3.0 * torch.randn(x.shape, generator=gen)
    return x, m


def train_model(train: LabelledFrames, out_dir: Path, val: LabelledFrames | None = None,
                model_cfg: ModelConfig | None = None, cfg: TrainConfig | None = None,
                progress: bool = True, card_info: dict | None = None,
                init_from: Path | None = None) -> dict:
    """Train on ``train``, evaluate on ``val``, write the model directory; returns metrics.

    ``init_from``: a model directory whose weights start the training (fine-tuning, e.g. the
    shipped synthetic model on real data); its architecture config is used.
    """
    import torch

    from vision.models import EncoderNet

    cfg = cfg or TrainConfig()
    model_cfg = model_cfg or ModelConfig()
    if len(train) == 0:
        raise VisionError("no training frames")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if init_from is not None:
        net = modelio.load_torch_model(modelio.resolve_model_dir(init_from))
        model_cfg = net.cfg
    else:
        net = EncoderNet(model_cfg)
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    cw = torch.from_numpy(seg_class_weights(train.masks, len(model_cfg.classes)))
    t_start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.max_steps, desc="train", unit="step")
    step, hist = 0, []
    while step < cfg.max_steps:
        frac = max(step / cfg.max_steps, (time.perf_counter() - t_start) / cfg.time_budget_s)
        if frac >= 1.0:
            break
        warm = min(1.0, (step + 1) / cfg.warmup_steps)
        lr = cfg.lr * warm * 0.5 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.integers(0, len(train), cfg.batch_size)
        x = torch.from_numpy(train.images[idx]).permute(0, 3, 1, 2).float()
        m = torch.from_numpy(train.masks[idx]).long()
        if cfg.augment:
            x, m = _augment(x, m, gen)
        loss = _batch_loss(net(x), m, train, idx, cw, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        step += 1
        hist.append(loss.item())
        if step % 250 == 0:  # checkpoint, so an interrupted run keeps its progress
            modelio.save_model(net, out_dir)
        if bar is not None:
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{np.mean(hist[-50:]):.3f}", lr=f"{lr:.1e}")
    if bar is not None:
        bar.close()
    train_s = time.perf_counter() - t_start
    metrics: dict = {"train_steps": step, "train_seconds": round(train_s, 1),
                     "train_frames": len(train), "final_loss": float(np.mean(hist[-50:]))}
    return _save_trained(net, out_dir, train, val, cfg, card_info, metrics)


def _batch_loss(out: dict, m, train: LabelledFrames, idx: np.ndarray, cw, cfg: TrainConfig):
    """The weighted loss of one batch (frames ``idx``, masks ``m``): segmentation with class
    weights ``cw``, plus each head's loss on the frames that carry its label."""
    import torch
    import torch.nn.functional as F

    hw = cfg.head_weights
    loss = cfg.seg_weight * F.cross_entropy(out["seg"], m, weight=cw,
                                            ignore_index=IGNORE_INDEX)
    ph = torch.from_numpy(train.phase[idx])
    if (ph >= 0).any():
        lp = F.cross_entropy(out["phase"], ph, ignore_index=-1)
        loss = loss + hw["phase"] * lp
    rg = torch.from_numpy(train.region[idx])
    if (rg >= 0).any():
        lr_ = F.cross_entropy(out["region"], rg, ignore_index=-1)
        loss = loss + hw["region"] * lr_
    cv = torch.from_numpy(train.cvs_valid[idx])
    if cv.any():
        lc = F.binary_cross_entropy_with_logits(out["cvs"][cv],
                                                torch.from_numpy(train.cvs[idx])[cv])
        loss = loss + hw["cvs"] * lc
    tv = torch.from_numpy(train.tools_valid[idx])
    if tv.any():
        lt = F.binary_cross_entropy_with_logits(out["tools"][tv],
                                                torch.from_numpy(train.tools[idx])[tv])
        loss = loss + hw["tools"] * lt
    return loss


def _save_trained(net, out_dir: Path, train: LabelledFrames, val: LabelledFrames | None,
                  cfg: TrainConfig, card_info: dict | None, metrics: dict) -> dict:
    """Save the trained net, fit the filters (tuned and evaluated on ``val``), export ONNX,
    write metrics.json and the card; returns the metrics."""
    net.eval()
    modelio.save_model(net, out_dir)
    pf = fit_state_filter(train, "phase")
    rf = fit_state_filter(train, "region")
    if val is not None and len(val):
        predict = torch_predictor(net)
        pf = tune_state_filter(pf, predict, val, "phase")
        rf = tune_state_filter(rf, predict, val, "region", powers=REGION_POWERS,
                               tol=REGION_TOL)
        metrics["val"] = evaluate_frames(predict, val, pf, region_filter=rf)
        metrics["val_frames"] = len(val)
    pf.save(Path(out_dir) / modelio.TEMPORAL)
    rf.save(Path(out_dir) / modelio.REGION_TEMPORAL)
    metrics["train_config"] = asdict(cfg)
    metrics["card_info"] = card_info or {}
    (Path(out_dir) / modelio.METRICS).write_text(json.dumps(metrics, indent=1))
    from vision.export import export_onnx

    _, rep = export_onnx(out_dir)
    metrics["onnx_max_abs_err"] = rep.max_abs_err
    (Path(out_dir) / modelio.METRICS).write_text(json.dumps(metrics, indent=1))
    write_model_card(Path(out_dir), metrics, card_info or {})
    return metrics


def torch_predictor(net):
    """float32 [B, 3, H, W] -> deploy outputs (NumPy) with the PyTorch model."""
    import torch

    from vision.models import OUTPUT_NAMES, DeployModel

    dep = DeployModel(net).eval()

    def predict(x: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            o = dep(torch.from_numpy(x))
        return {n: t.numpy() for n, t in zip(OUTPUT_NAMES, o, strict=True)}

    return predict



def refit_temporal(model_dir: Path | str, train_feeds: list[Path | str],
                   val_feeds: list[Path | str], every: int = 2) -> dict:
    """Refit the phase and region filters of a trained model and re-validate it.

    Rates come from the training feeds' truth.json (full frame rate); emission settings are
    tuned on the validation feeds; metrics.json and the card are updated.
    """
    from vision.datasets.feeds import find_feeds, load_feeds

    d = modelio.resolve_model_dir(model_dir)
    net = modelio.load_torch_model(d)
    filters = fit_filters_from_truth(find_feeds(list(train_feeds)))
    val = load_feeds(list(val_feeds), tuple(net.cfg.input_size), net.cfg.output_size, every)
    predict = torch_predictor(net)
    tune_state_filter(filters["phase"], predict, val, "phase")
    tune_state_filter(filters["region"], predict, val, "region",
                      powers=REGION_POWERS, tol=REGION_TOL)
    filters["phase"].save(d / modelio.TEMPORAL)
    filters["region"].save(d / modelio.REGION_TEMPORAL)
    metrics = json.loads((d / modelio.METRICS).read_text()) if (d / modelio.METRICS).is_file() \
        else {}
    metrics["val"] = evaluate_frames(predict, val, filters["phase"],
                                     region_filter=filters["region"])
    metrics["temporal"] = {"fitted_on": "train truth.json", "tuned_on": "validation feeds"}
    (d / modelio.METRICS).write_text(json.dumps(metrics, indent=1))
    write_model_card(d, metrics, metrics.get("card_info", {}))
    return metrics


def split_feeds_by_seed(feeds: list[Path]) -> tuple[list[Path], list[Path]]:
    """Hold out the highest-seed feed of each scenario for validation (needs >= 2 each)."""
    by: dict[str, list[tuple[int, Path]]] = {}
    for f in feeds:
        t = json.loads((f / "truth.json").read_text())
        by.setdefault(t.get("scenario", "?"), []).append((int(t.get("seed", 0)), f))
    train, val = [], []
    for items in by.values():
        items.sort()
        if len(items) >= 2:
            val.append(items[-1][1])
            items = items[:-1]
        train.extend(p for _, p in items)
    return train, val


def feed_seeds(feeds: list[Path]) -> list[dict]:
    """[{scenario, seed, seconds, path}] for the card."""
    out = []
    for f in feeds:
        t = json.loads((f / "truth.json").read_text())
        out.append({"scenario": t.get("scenario"), "seed": t.get("seed"),
                    "seconds": t.get("duration_s"), "size": [t.get("width"), t.get("height")],
                    "fps": t.get("fps"), "feed": f.name})
    return out


def train_from_feeds(feeds: list[Path | str], out_dir: Path | str,
                     val_feeds: list[Path | str] | None = None,
                     model_cfg: ModelConfig | None = None, cfg: TrainConfig | None = None,
                     progress: bool = True, init_from: Path | str | None = None) -> dict:
    """Decode feeds, train, validate on held-out seeds and write the model directory.

    ``init_from``: start from that model directory's weights (and architecture).
    """
    from vision.datasets.feeds import find_feeds, load_feeds

    cfg = cfg or TrainConfig()
    model_cfg = model_cfg or ModelConfig()
    if init_from is not None:
        model_cfg = modelio.load_config(modelio.resolve_model_dir(init_from))
    train_list = find_feeds(list(feeds))
    if val_feeds:
        val_list = find_feeds(list(val_feeds))
    else:
        train_list, val_list = split_feeds_by_seed(train_list)
    overlap = {p.resolve() for p in train_list} & {p.resolve() for p in val_list}
    if overlap:
        raise VisionError(f"validation feeds also in training: {sorted(map(str, overlap))}")
    ins, outs = tuple(model_cfg.input_size), model_cfg.output_size
    train = load_feeds(train_list, ins, outs, every=cfg.every, progress=progress)
    val = load_feeds(val_list, ins, outs, every=cfg.every, progress=progress) if val_list \
        else None
    info = {"train_feeds": feed_seeds(train_list), "val_feeds": feed_seeds(val_list)}
    if init_from is not None:
        info["init_from"] = str(init_from)
    return train_model(train, Path(out_dir), val, model_cfg, cfg, progress, info,
                       Path(init_from) if init_from is not None else None)
