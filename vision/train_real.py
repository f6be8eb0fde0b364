"""Training of the pretrained-backbone encoder on real (Endoscapes) and synthetic frames.

Real frames (masks in Endoscapes ids) and synthetic frames (masks in model ids) are mixed in
every batch; each part's segmentation loss is the partial-label loss of :mod:`vision.partial`
in its own label space (plus a soft Dice term on the Endoscapes structures, weighted towards
the rare thin ones). Real frames also teach CVS (surgeons' votes >= 0.5, positive-weighted)
and region = abdominal cavity; synthetic frames teach phase, region, tools and CVS. The
model is evaluated on held-out *train* patients (``dev``) every few epochs and the best
epoch (Endoscapes dev mIoU) is kept: the official ``val`` patients are never looked at here.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vision import modelio
from vision.datasets.common import LabelledFrames
from vision.datasets.endoscapes import ENDOSCAPES_GROUPS, model_to_endoscapes_lut
from vision.labels import CLASSES, IGNORE_INDEX, REGIONS
from vision.partial import group_dice, group_matrix, label_weights, partial_ce, synthetic_groups

N_ENDO = len(ENDOSCAPES_GROUPS)


@dataclass
class RealTrainConfig:
    """Settings of :func:`train_real` (chosen on held-out train patients)."""

    epochs: int = 30  # passes over the real training frames
    real_batch: int = 8
    synth_batch: int = 4
    lr_backbone: float = 4e-4
    lr_head: float = 2e-3
    weight_decay: float = 1e-4
    dice_weight: float = 0.5
    freeze_blocks: int = 4  # backbone features[:n] frozen (pretrained low-level filters)
    crop: float = 1.0  # train on random crops of this fraction of each side
    eval_every: int = 2  # epochs
    time_budget_s: float = 3600.0
    threads: int = 2
    seed: int = 0


def augment(x, m, gen, flip: bool = True, crop: float = 1.0):
    """Batch augmentation: flip, zoom 0.8-1.3, rotation +-12 deg, shift, colour, noise.

    ``x`` [B, 3, H, W] 0..255, ``m`` [B, h, w] labels; pixels moved in from outside are
    ``IGNORE_INDEX``. ``crop`` < 1 returns a random crop of that fraction of each side at
    the input's scale (multiples of 32 pixels; cheaper training steps).
    """
    import torch
    import torch.nn.functional as F

    b = x.shape[0]
    s = 1 / (0.8 + 0.5 * torch.rand(b, generator=gen))
    a = (torch.rand(b, generator=gen) - 0.5) * (24 * math.pi / 180)
    fx = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0) if flip else torch.ones(b)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = s * torch.cos(a) * fx
    theta[:, 0, 1] = -s * torch.sin(a)
    theta[:, 1, 0] = s * torch.sin(a) * fx
    theta[:, 1, 1] = s * torch.cos(a)
    theta[:, :, 2] = (torch.rand(b, 2, generator=gen) - 0.5) * 0.3
    h, w = x.shape[-2:]
    ch, cw = (h, w) if crop >= 1 else (int(h * crop) // 32 * 32, int(w * crop) // 32 * 32)
    if crop < 1:
        theta[:, :, 0] *= cw / w
        theta[:, :, 1] *= ch / h
        theta[:, :, 2] += (torch.rand(b, 2, generator=gen) - 0.5) * 2 * (1 - crop)
    gx = F.affine_grid(theta, [b, 3, ch, cw], align_corners=False)
    x = F.grid_sample(x, gx, mode="bilinear", padding_mode="zeros", align_corners=False)
    r = m.shape[-1] / w
    gm = F.affine_grid(theta, [b, 1, round(ch * r), round(cw * r)], align_corners=False)
    mm = F.grid_sample((m[:, None].float() + 1), gm, mode="nearest", padding_mode="zeros",
                       align_corners=False)[:, 0].long() - 1
    m = torch.where(mm < 0, torch.full_like(mm, IGNORE_INDEX), mm)
    gain = 0.7 + 0.6 * torch.rand(b, 1, 1, 1, generator=gen)
    chan = 1 + 0.2 * (torch.rand(b, 3, 1, 1, generator=gen) - 0.5)
    gamma = 0.75 + 0.5 * torch.rand(b, 1, 1, 1, generator=gen)
    x = 255.0 * (x.clamp(0, 255) / 255.0) ** gamma
    x = (x * gain * chan + 20 * (torch.rand(b, 1, 1, 1, generator=gen) - 0.5)).clamp(0, 255)
    x = x + 4.0 * torch.randn(x.shape, generator=gen)
    return x, m


def endoscapes_confusion(pred: np.ndarray, truth: np.ndarray,
                         classes: tuple[str, ...] = CLASSES) -> np.ndarray:
    """7x7 confusion (Endoscapes ids) of model label maps vs Endoscapes masks (255 ignored)."""
    p = model_to_endoscapes_lut(classes)[pred]
    ok = truth < N_ENDO  # 255 (not labelled) and any stray value are ignored
    return np.bincount(truth[ok].astype(np.int64) * N_ENDO + p[ok], minlength=N_ENDO ** 2
                       ).reshape(N_ENDO, N_ENDO)


def endoscapes_iou(cm: np.ndarray) -> dict:
    """Per-class IoU of the 7 Endoscapes ids and mIoU over the 6 foreground classes."""
    from vision.datasets.endoscapes import ENDOSCAPES_CLASSES

    inter = np.diag(cm).astype(float)
    union = cm.sum(0) + cm.sum(1) - inter
    iou = {n: (float(inter[i] / union[i]) if union[i] else None)
           for i, n in enumerate(ENDOSCAPES_CLASSES)}
    fg = [v for k, v in iou.items() if k != "background" and v is not None]
    return {"iou": iou, "miou": float(np.mean(fg)) if fg else 0.0}


def predict_labels(net, images: np.ndarray, batch: int = 8) -> np.ndarray:
    """Model label maps (output resolution) for uint8 [N, H, W, 3] images."""
    import torch

    out = []
    net.eval()
    with torch.inference_mode():
        for s in range(0, len(images), batch):
            x = torch.from_numpy(images[s:s + batch]).permute(0, 3, 1, 2).float()
            out.append(net(x)["seg"].argmax(1).numpy().astype(np.uint8))
    return np.concatenate(out)


def synth_miou(net, data: LabelledFrames) -> float:
    """Anatomy mIoU of the model on synthetic frames (vision.evaluate's definition)."""
    from vision.evaluate import ANATOMY_CLASSES, confusion, iou_from_confusion

    cm = sum(confusion(p, t) for p, t in zip(predict_labels(net, data.images), data.masks,
                                             strict=True))
    anat = [v for k, v in iou_from_confusion(cm).items() if k in ANATOMY_CLASSES]
    return float(np.mean(anat)) if anat else 0.0


def train_real(real: LabelledFrames, synth: LabelledFrames | None, out_dir: Path,
               model_cfg, dev_real: LabelledFrames | None = None,
               dev_synth: LabelledFrames | None = None, cfg: RealTrainConfig | None = None,
               pretrained: Path | str | None = None, log_path: Path | None = None) -> dict:
    """Train, keep the best dev epoch in ``out_dir`` (config.json + model.pt); returns history."""
    import torch

    from vision.backbone import load_pretrained
    from vision.models import EncoderNet

    cfg = cfg or RealTrainConfig()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = EncoderNet(model_cfg)
    loaded = load_pretrained(net.mnv2.body, pretrained)
    for p in net.mnv2.body.backbone[:cfg.freeze_blocks].parameters():
        p.requires_grad_(False)
    bb = [p for p in net.mnv2.body.parameters() if p.requires_grad]
    ids = {id(p) for p in net.mnv2.body.parameters()}
    rest = [p for p in net.parameters() if id(p) not in ids]
    opt = torch.optim.AdamW([{"params": bb, "lr": cfg.lr_backbone},
                             {"params": rest, "lr": cfg.lr_head}],
                            weight_decay=cfg.weight_decay)
    base_lr = [cfg.lr_backbone, cfg.lr_head]
    g_real = torch.from_numpy(group_matrix(ENDOSCAPES_GROUPS, tuple(model_cfg.classes)))
    g_syn = torch.from_numpy(group_matrix(synthetic_groups(tuple(model_cfg.classes)),
                                          tuple(model_cfg.classes)))
    w_real = torch.from_numpy(label_weights(real.masks, N_ENDO))
    w_syn = torch.from_numpy(label_weights(synth.masks, len(model_cfg.classes))) \
        if synth is not None else None
    cv = real.cvs[real.cvs_valid]
    pos = torch.from_numpy(np.clip((1 - cv.mean(0)) / np.maximum(cv.mean(0), 1e-3), 1, 10)
                           .astype(np.float32))
    region_ab = REGIONS.index("abdominal_cavity")
    steps_per_epoch = max(1, len(real) // cfg.real_batch)
    total = cfg.epochs * steps_per_epoch
    hist: list[dict] = []
    best = -1.0
    t0 = time.perf_counter()
    step = 0
    _train_mode(net)
    for epoch in range(1, cfg.epochs + 1):
        losses = []
        for _ in range(steps_per_epoch):
            frac = max(step / total, (time.perf_counter() - t0) / cfg.time_budget_s)
            if frac >= 1.0:
                break
            lr_f = min(1.0, (step + 1) / 30) * 0.5 * (1 + math.cos(math.pi * frac))
            for g, b0 in zip(opt.param_groups, base_lr, strict=True):
                g["lr"] = b0 * lr_f
            idx = rng.integers(0, len(real), cfg.real_batch)
            x = torch.from_numpy(real.images[idx]).permute(0, 3, 1, 2).float()
            m = torch.from_numpy(real.masks[idx]).long()
            x, m = augment(x, m, gen, crop=cfg.crop)
            n_r = len(idx)
            if synth is not None and cfg.synth_batch:
                sidx = rng.integers(0, len(synth), cfg.synth_batch)
                xs = torch.from_numpy(synth.images[sidx]).permute(0, 3, 1, 2).float()
                ms = torch.from_numpy(synth.masks[sidx]).long()
                xs, ms = augment(xs, ms, gen, flip=False, crop=cfg.crop)
                x = torch.cat([x, xs])
            with_synth = synth is not None and cfg.synth_batch
            loss = batch_loss(net(x), n_r, m, cfg, (g_real, w_real, g_syn, w_syn), real, idx,
                              pos, region_ab, synth, sidx if with_synth else None,
                              ms if with_synth else None)
            step += 1
            losses.append(optimise(opt, net, loss))
        rec = {"epoch": epoch, "step": step, "loss": float(np.mean(losses)) if losses else None,
               "seconds": round(time.perf_counter() - t0, 1)}
        last = frac >= 1.0 or epoch == cfg.epochs
        if dev_real is not None and (epoch % cfg.eval_every == 0 or last):
            cm = sum(endoscapes_confusion(p, t) for p, t in
                     zip(predict_labels(net, dev_real.images), dev_real.masks, strict=True))
            rec["dev"] = endoscapes_iou(cm)
            if dev_synth is not None:
                rec["dev_synth_miou"] = synth_miou(net, dev_synth)
            _train_mode(net)
            if rec["dev"]["miou"] > best:
                best = rec["dev"]["miou"]
                rec["best"] = True
                modelio.save_model(net, out_dir)
        hist.append(rec)
        if log_path is not None:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
        if last:
            break
    if dev_real is None:
        modelio.save_model(net.eval(), out_dir)
    return {"history": hist, "pretrained": loaded, "config": asdict(cfg),
            "best_dev_miou": best, "train_seconds": round(time.perf_counter() - t0, 1)}


def batch_loss(out: dict, n_r: int, m, cfg, groups: tuple, real: LabelledFrames, rows,
               pos, region_ab: int, synth: LabelledFrames | None = None, sidx=None, ms=None):
    """One batch's loss: partial-label cross-entropy + Dice, region and CVS on the ``n_r``
    real rows; partial cross-entropy and the synthetic heads on the rows after them (when
    ``ms`` is given). ``groups`` = (real groups, real weights, synthetic groups, weights)."""
    import torch
    import torch.nn.functional as F

    g_real, w_real, g_syn, w_syn = groups
    seg = out["seg"]
    loss = partial_ce(seg[:n_r], m, g_real, w_real)
    loss = loss + cfg.dice_weight * group_dice(seg[:n_r], m, g_real, [1, 2, 3, 4, 5, 6])
    loss = loss + 0.5 * F.cross_entropy(out["region"][:n_r], torch.full((n_r,), region_ab))
    cvm = torch.from_numpy(real.cvs_valid[rows])
    if cvm.any():
        loss = loss + 0.2 * F.binary_cross_entropy_with_logits(
            out["cvs"][:n_r][cvm], torch.from_numpy(real.cvs[rows])[cvm], pos_weight=pos)
    if ms is not None:
        s_ = slice(n_r, None)
        loss = loss + partial_ce(seg[s_], ms, g_syn, w_syn)
        loss = loss + _synth_heads(out, s_, synth, sidx)
    return loss


def optimise(opt, net, loss) -> float:
    """One optimiser step on ``loss`` (gradient norm clipped at 5); returns its value."""
    import torch

    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
    opt.step()
    return loss.item()


def _train_mode(net) -> None:
    """Train mode, but the pretrained body's BatchNorm layers stay in eval mode: they hold
    the folded TF weights (identity statistics), which small-batch statistics would undo."""
    from torch import nn

    net.train()
    for m in net.mnv2.body.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


def _synth_heads(out, s_, synth: LabelledFrames, sidx: np.ndarray):
    """Phase / region / tools / CVS losses of the synthetic part of a batch."""
    import torch
    import torch.nn.functional as F

    loss = torch.zeros(())
    ph = torch.from_numpy(synth.phase[sidx])
    if (ph >= 0).any():
        loss = loss + F.cross_entropy(out["phase"][s_], ph, ignore_index=-1)
    rg = torch.from_numpy(synth.region[sidx])
    if (rg >= 0).any():
        loss = loss + F.cross_entropy(out["region"][s_], rg, ignore_index=-1)
    tv = torch.from_numpy(synth.tools_valid[sidx])
    if tv.any():
        loss = loss + 0.5 * F.binary_cross_entropy_with_logits(
            out["tools"][s_][tv], torch.from_numpy(synth.tools[sidx])[tv])
    cv = torch.from_numpy(synth.cvs_valid[sidx])
    if cv.any():
        loss = loss + 0.2 * F.binary_cross_entropy_with_logits(
            out["cvs"][s_][cv], torch.from_numpy(synth.cvs[sidx])[cv])
    return loss
