"""Fast training of the pretrained-backbone encoder on cached backbone features.

On a shared 2-core CPU (measured here: about 1 s per forward pass of the backbone at
512x288 under the other jobs' load), back-propagating through the backbone gives only a
few epochs per hour. The pretrained body (MobileNetV2 + ASPP, PASCAL VOC weights) is
therefore frozen and run once per training image and variant (original, mirrored), with
ONNX Runtime; its 1/4, 1/8, 1/16 and 1/32 features and the ASPP output are cached as
float16. What is trained (decoder and heads) runs on random 384x224 crops of those maps
(aligned to 32 input pixels, so a crop is exact up to the border padding). Losses are those of
:mod:`vision.train_real` (partial-label CE + soft Dice on real frames, synthetic heads).
Model selection: Endoscapes mIoU on held-out *train* patients (cached the same way).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from vision import modelio
from vision.datasets.common import LabelledFrames
from vision.datasets.endoscapes import ENDOSCAPES_GROUPS
from vision.labels import REGIONS
from vision.partial import group_matrix, label_weights, synthetic_groups
from vision.train_real import (
    N_ENDO,
    RealTrainConfig,
    _train_mode,
    batch_loss,
    endoscapes_confusion,
    endoscapes_iou,
    optimise,
)

UNIT = 32  # crop granularity in input pixels (the backbone's output stride)
FEATS = ("f4", "f8", "f16", "top", "aspp")
#: cells per UNIT at each cached feature's resolution
CELLS = {"f4": 8, "f8": 4, "f16": 2, "top": 1, "aspp": 1}


def _ort_body(net, hw: tuple[int, int], threads: int):
    """The frozen body (with input scaling) as an ONNX Runtime session (faster than eager)."""
    import tempfile

    import onnxruntime as ort
    import torch
    from torch import nn

    class Body(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.mnv2.body((x - self.net.mean) * self.net.inv_std)

    path = Path(tempfile.mkdtemp()) / "body.onnx"
    torch.onnx.export(Body().eval(), (torch.zeros(1, 3, *hw),), str(path), input_names=["x"],
                      output_names=list(FEATS), opset_version=17, dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def extract_front(net, data: LabelledFrames, variants: tuple[str, ...] = ("orig",),
                  threads: int = 2, session=None) -> dict[str, np.ndarray]:
    """Cached body features (float16) of every frame and variant ("orig", "flip")."""
    net.eval()
    sess = session or _ort_body(net, data.images.shape[1:3], threads)
    out: dict[str, list] = {k: [] for k in FEATS + ("masks", "src")}
    for v in variants:
        for i in range(len(data)):
            img, m = data.images[i], data.masks[i]
            if v == "flip":
                img, m = img[:, ::-1], m[:, ::-1]
            x = np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)
            for k, f in zip(FEATS, sess.run(list(FEATS), {"x": x}), strict=True):
                out[k].append(f.astype(np.float16))
            out["masks"].append(np.ascontiguousarray(m))
            out["src"].append(i)
    res = {k: np.concatenate(v) for k, v in out.items() if k in FEATS}
    res["masks"], res["src"] = np.stack(out["masks"]), np.array(out["src"])
    return res


def _crop(c: dict, idx: np.ndarray, units: tuple[int, int], rng) -> tuple:
    """Random crops (``units`` = (w, h) in UNIT pixels) of cached rows ``idx``."""
    import torch

    h16, w16 = c["f16"].shape[-2:]
    uw, uh = w16 // 2, h16 // 2  # input size in UNIT pixels
    cw, ch = min(units[0], uw), min(units[1], uh)
    r = c["masks"].shape[-1] / (uw * UNIT)  # mask pixels per input pixel
    parts: dict[str, list] = {k: [] for k in FEATS}
    ms = []
    for i in idx:
        ox, oy = int(rng.integers(0, uw - cw + 1)), int(rng.integers(0, uh - ch + 1))
        for k in FEATS:
            q = CELLS[k]
            parts[k].append(c[k][i, :, oy * q:(oy + ch) * q, ox * q:(ox + cw) * q])
        k = int(round(UNIT * r))
        ms.append(c["masks"][i, oy * k:(oy + ch) * k:2, ox * k:(ox + cw) * k:2])  # 1/4 res
    t = [torch.from_numpy(np.stack(parts[k])).float() for k in FEATS]
    return (*t, torch.from_numpy(np.stack(ms)).long())


def _tail_labels(net, c: dict, batch: int = 16) -> np.ndarray:
    """Label maps (mask resolution) of cached rows, full frames."""
    import torch
    import torch.nn.functional as F

    out = []
    net.eval()
    with torch.inference_mode():
        for s in range(0, len(c["f4"]), batch):
            o = net.mnv2.head(*(torch.from_numpy(c[k][s:s + batch]).float() for k in FEATS))
            seg = F.interpolate(o["seg"], size=c["masks"].shape[-2:], mode="bilinear",
                                align_corners=False)
            out.append(seg.argmax(1).numpy().astype(np.uint8))
    return np.concatenate(out)


def train_cached(net, real: LabelledFrames, real_c: dict, synth: LabelledFrames | None,
                 synth_c: dict | None, dev_c: dict | None, out_dir: Path,
                 cfg: RealTrainConfig, units: tuple[int, int] = (12, 7),
                 log_path: Path | None = None) -> dict:
    """Train the tail of ``net`` (pretrained weights already loaded); keeps the best dev
    epoch in ``out_dir``; returns the history."""
    import torch

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    body = net.mnv2.body
    for p in body.parameters():
        p.requires_grad_(False)
    ids = {id(p) for p in body.parameters()}
    rest = [p for p in net.parameters() if id(p) not in ids]
    opt = torch.optim.AdamW([{"params": rest, "lr": cfg.lr_head}],
                            weight_decay=cfg.weight_decay)
    base = [cfg.lr_head]
    classes = tuple(net.cfg.classes)
    g_real = torch.from_numpy(group_matrix(ENDOSCAPES_GROUPS, classes))
    g_syn = torch.from_numpy(group_matrix(synthetic_groups(classes), classes))
    w_real = torch.from_numpy(label_weights(real.masks, N_ENDO))
    w_syn = torch.from_numpy(label_weights(synth.masks, len(classes))) if synth else None
    cv = real.cvs[real.cvs_valid]
    pos = torch.from_numpy(np.clip((1 - cv.mean(0)) / np.maximum(cv.mean(0), 1e-3), 1, 10)
                           .astype(np.float32))
    region_ab = REGIONS.index("abdominal_cavity")
    spe = max(1, len(real) // cfg.real_batch)
    total = cfg.epochs * spe
    hist, best, step, t0 = [], -1.0, 0, time.perf_counter()
    _train_mode(net)
    frac = 0.0
    for epoch in range(1, cfg.epochs + 1):
        losses = []
        for _ in range(spe):
            frac = max(step / total, (time.perf_counter() - t0) / cfg.time_budget_s)
            if frac >= 1.0:
                break
            f = min(1.0, (step + 1) / 30) * 0.5 * (1 + math.cos(math.pi * frac))
            for g, b0 in zip(opt.param_groups, base, strict=True):
                g["lr"] = b0 * f
            rows = rng.integers(0, len(real_c["src"]), cfg.real_batch)
            *feats, m = _crop(real_c, rows, units, rng)
            n_r = len(rows)
            src = real_c["src"][rows]
            if synth_c is not None and cfg.synth_batch:
                srows = rng.integers(0, len(synth_c["src"]), cfg.synth_batch)
                *sf, ms = _crop(synth_c, srows, units, rng)
                feats = [torch.cat([a, b]) for a, b in zip(feats, sf, strict=True)]
                sidx = synth_c["src"][srows]
            with_synth = synth_c is not None and cfg.synth_batch
            loss = batch_loss(net.mnv2.head(*feats), n_r, m, cfg,
                              (g_real, w_real, g_syn, w_syn), real, src, pos, region_ab, synth,
                              sidx if with_synth else None, ms if with_synth else None)
            step += 1
            losses.append(optimise(opt, net, loss))
        rec = {"epoch": epoch, "step": step, "loss": float(np.mean(losses)) if losses else None,
               "seconds": round(time.perf_counter() - t0, 1)}
        last = frac >= 1.0 or epoch == cfg.epochs
        if dev_c is not None and (epoch % cfg.eval_every == 0 or last):
            cm = sum(endoscapes_confusion(p, t, classes) for p, t in
                     zip(_tail_labels(net, dev_c), dev_c["masks"], strict=True))
            rec["dev"] = endoscapes_iou(cm)
            _train_mode(net)
            if rec["dev"]["miou"] > best:
                best, rec["best"] = rec["dev"]["miou"], True
                modelio.save_model(net, out_dir)
        hist.append(rec)
        if log_path is not None:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
        if last:
            break
    if dev_c is None:
        modelio.save_model(net.eval(), out_dir)
    return {"history": hist, "best_dev_miou": best,
            "train_seconds": round(time.perf_counter() - t0, 1),
            "method": "frozen pretrained MobileNetV2 + ASPP (VOC) features cached (original "
                      "+ mirrored); decoder and heads trained on 384x224 crops"}


def tail_outputs(net, c: dict, batch: int = 16) -> dict[str, np.ndarray]:
    """Embedding, CVS-head input features and phase / region probabilities of cached rows
    (identical to the full network on those frames: the front is frozen)."""
    import torch

    keys = ("embedding", "cvs_features", "phase", "region")
    out: dict[str, list] = {k: [] for k in keys}
    m = net.mnv2
    net.eval()
    with torch.inference_mode():
        for s in range(0, len(c["f4"]), batch):
            o = m.head(*(torch.from_numpy(c[k][s:s + batch]).float() for k in FEATS))
            out["embedding"].append(o["embedding"].numpy())
            out["cvs_features"].append(torch.cat([o["embedding"], m.seg_features(o["seg"])],
                                                 1).numpy())
            out["phase"].append(torch.softmax(o["phase"], 1).numpy())
            out["region"].append(torch.softmax(o["region"], 1).numpy())
    return {k: np.concatenate(v) for k, v in out.items()}
