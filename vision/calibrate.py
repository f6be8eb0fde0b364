"""Post-training fits on held-out *train* data: CVS head (with calibration) and off-label.

CVS: per criterion, a class-balanced logistic regression on one of three feature sets (the
pooled embedding, the segmentation-output features of :class:`vision.mnv2net.MNV2Encoder`,
or both) and strength C, chosen by patient-grouped cross-validation over the real training
patients (out-of-fold balanced accuracy); its out-of-fold logits fit a Platt (logistic)
calibration so that a probability of 0.8 is right about 8 times in 10. The final regression
is fitted on all real training frames (plus synthetic frames at a low weight, so the
synthetic feeds keep their CVS behaviour) and folded, standardisation and calibration
included, into the network's linear ``cvs_head``: the deployed graph stays unchanged.
"""

from __future__ import annotations

import numpy as np

FEATURE_SETS = ("pooled", "seg", "both")
CS = (0.003, 0.03, 0.3)


def extract(net, images: np.ndarray, batch: int = 8) -> dict[str, np.ndarray]:
    """Embedding [N, E] and CVS-head input features [N, F] of uint8 [N, H, W, 3] images."""
    import torch

    emb, feats = [], []
    net.eval()
    m = net.mnv2
    with torch.inference_mode():
        for s in range(0, len(images), batch):
            x = torch.from_numpy(images[s:s + batch]).permute(0, 3, 1, 2).float()
            raw = m((x - net.mean) * net.inv_std)
            feats.append(torch.cat([raw["embedding"], m.seg_features(raw["seg"])], 1).numpy())
            emb.append(raw["embedding"].numpy())
    return {"embedding": np.concatenate(emb), "cvs_features": np.concatenate(feats)}


def _columns(kind: str, n_emb: int, n_all: int) -> np.ndarray:
    if kind == "pooled":
        return np.arange(n_emb)
    if kind == "seg":
        return np.arange(n_emb, n_all)
    return np.arange(n_all)


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean of sensitivity and specificity (0.5 when a class is absent on one side)."""
    y, pred = np.asarray(y, bool), np.asarray(pred, bool)
    parts = [(pred[y] == 1).mean() if y.any() else None,
             (pred[~y] == 0).mean() if (~y).any() else None]
    parts = [p for p in parts if p is not None]
    return float(np.mean(parts)) if parts else float("nan")


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error (equal-width bins of the predicted probability)."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            err += sel.mean() * abs(y[sel].mean() - p[sel].mean())
    return float(err)


def _fit_lr(x, y, c, w=None):
    from sklearn.linear_model import LogisticRegression

    mu, sd = x.mean(0), x.std(0) + 1e-6
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    lr.fit((x - mu) / sd, y, sample_weight=w)
    return lr, mu, sd


def fit_cvs(feats: np.ndarray, y: np.ndarray, groups: np.ndarray, n_emb: int,
            syn_feats: np.ndarray | None = None, syn_y: np.ndarray | None = None,
            folds: int = 5) -> tuple[np.ndarray, np.ndarray, dict]:
    """Choose, calibrate and fit the CVS head; returns (W [3, F], b [3], report)."""
    from sklearn.linear_model import LogisticRegression

    n_all = feats.shape[1]
    ug = np.unique(groups)
    fold_of = {g: i % folds for i, g in enumerate(ug)}
    fold = np.array([fold_of[g] for g in groups])
    w_out = np.zeros((y.shape[1], n_all))
    b_out = np.zeros(y.shape[1])
    report: dict = {"criteria": []}
    for j in range(y.shape[1]):
        yj = y[:, j].astype(int)
        if len(np.unique(yj)) < 2:  # one class only: a constant at its (clipped) rate
            rate = float(np.clip(yj.mean(), 0.02, 0.98))
            b_out[j] = np.log(rate / (1 - rate))
            report["criteria"].append({"features": "none (one class in training data)",
                                       "positive_rate": round(float(yj.mean()), 4)})
            continue
        best = None
        for kind in FEATURE_SETS:
            cols = _columns(kind, n_emb, n_all)
            for c in CS:
                oof = np.zeros(len(yj))
                for f in range(folds):
                    tr, te = fold != f, fold == f
                    if len(np.unique(yj[tr])) < 2 or not te.any():
                        oof[te] = 0.0
                        continue
                    lr, mu, sd = _fit_lr(feats[tr][:, cols], yj[tr], c)
                    oof[te] = lr.decision_function((feats[te][:, cols] - mu) / sd)
                ba = balanced_accuracy(yj, oof >= 0)
                if best is None or ba > best[0]:
                    best = (ba, kind, c, oof)
        ba, kind, c, oof = best
        platt = LogisticRegression(C=1e4).fit(oof[:, None], yj)
        a, a0 = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        p_oof = platt.predict_proba(oof[:, None])[:, 1]
        cols = _columns(kind, n_emb, n_all)
        x, yy, sw = feats[:, cols], yj, np.ones(len(yj))
        if syn_feats is not None and syn_y is not None and len(syn_y):
            x = np.concatenate([x, syn_feats[:, cols]])
            yy = np.concatenate([yy, syn_y[:, j].astype(int)])
            sw = np.concatenate([sw, np.full(len(syn_y), 0.3)])
        lr, mu, sd = _fit_lr(x, yy, c, sw)
        coef = lr.coef_[0] / sd
        w_out[j, cols] = a * coef
        b_out[j] = a * (float(lr.intercept_[0]) - float((coef * mu).sum())) + a0
        report["criteria"].append({
            "features": kind, "C": c, "cv_balanced_accuracy": round(ba, 4),
            "cv_balanced_accuracy_calibrated": round(balanced_accuracy(yj, p_oof >= 0.5), 4),
            "cv_ece_calibrated": round(ece(yj, p_oof), 4), "platt": [a, a0],
            "positive_rate": round(float(yj.mean()), 4)})
    report["selection"] = (f"patient-grouped {folds}-fold cross-validation over "
                           f"{len(ug)} real training patients")
    return w_out.astype(np.float32), b_out.astype(np.float32), report


def set_cvs_head(net, w: np.ndarray, b: np.ndarray) -> None:
    """Write a fitted (calibrated) CVS head into the network."""
    import torch

    with torch.no_grad():
        net.mnv2.cvs_head.weight.copy_(torch.from_numpy(w))
        net.mnv2.cvs_head.bias.copy_(torch.from_numpy(b))


def cvs_scores(y: np.ndarray, p: np.ndarray, names: tuple[str, ...]) -> dict:
    """Per-criterion balanced accuracy (p >= 0.5 = met) and ECE, positives and frames."""
    out = {}
    for j, n in enumerate(names):
        out[n] = {"balanced_accuracy": round(balanced_accuracy(y[:, j], p[:, j] >= 0.5), 4),
                  "ece": round(ece(y[:, j], p[:, j]), 4),
                  "positives": int(y[:, j].sum()), "frames": int(len(y))}
    return out
