"""Partial-label segmentation loss and the label spaces of the training datasets.

A pixel labelled by dataset D only teaches D's label space: its loss is the negative log of
the *marginal* probability of its D-label, the sum of the softmax probabilities of every
model class that D-label covers (log-sum-exp of those logits minus that of all logits).
Endoscapes "tool" covers every instrument class and its background covers every class it
does not annotate (liver, fat, abdominal wall, ...), so no class is pushed to "background"
where it simply was not annotated. The synthetic feeds have no cystic plate or hepatocystic
triangle; their fat, connective-tissue and liver labels therefore also cover those two
classes (the tissue they are made of), so synthetic frames never teach against them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vision.labels import CLASSES, IGNORE_INDEX

#: Synthetic label -> extra model classes it covers (Endoscapes-only classes).
SYNTH_EXTRA = {"fat": ("hepatocystic_triangle",),
               "connective_tissue": ("hepatocystic_triangle", "cystic_plate"),
               "liver": ("cystic_plate",)}


def group_matrix(groups: tuple[tuple[str, ...], ...], classes: tuple[str, ...] = CLASSES
                 ) -> np.ndarray:
    """[n_labels, n_classes] bool: which model classes each dataset label covers."""
    g = np.zeros((len(groups), len(classes)), bool)
    for i, names in enumerate(groups):
        for n in names:
            if n in classes:
                g[i, classes.index(n)] = True
    return g


def synthetic_groups(classes: tuple[str, ...] = CLASSES) -> tuple[tuple[str, ...], ...]:
    """Label space of the synthetic feeds (their masks use model class ids)."""
    return tuple((c, *SYNTH_EXTRA.get(c, ())) for c in classes)


def partial_ce(logits: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor,
               weights: torch.Tensor | None = None) -> torch.Tensor:
    """Marginal-likelihood cross entropy.

    ``logits`` [N, C, H, W]; ``labels`` [N, H, W] dataset label ids (IGNORE_INDEX = none);
    ``groups`` [L, C] bool; ``weights`` [L] per-label weight. Mean over labelled pixels.
    """
    valid = labels != IGNORE_INDEX
    lab = torch.where(valid, labels, torch.zeros_like(labels)).clamp(max=groups.shape[0] - 1)
    cover = groups[lab].permute(0, 3, 1, 2)  # [N, C, H, W]
    lse_all = torch.logsumexp(logits, dim=1)
    lse_in = torch.logsumexp(logits.masked_fill(~cover, -1e4), dim=1)
    nll = lse_all - lse_in
    w = valid.float() if weights is None else weights[lab] * valid.float()
    return (nll * w).sum() / w.sum().clamp(min=1.0)


def group_dice(logits: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor,
               which: list[int]) -> torch.Tensor:
    """Soft Dice loss (1 - Dice, mean over ``which`` labels) on the labels' marginal
    probabilities over the batch; helps thin, rare structures."""
    valid = (labels != IGNORE_INDEX).float()
    p = torch.softmax(logits, dim=1)
    gp = torch.einsum("nchw,lc->nlhw", p, groups.float())
    lab = torch.where(labels != IGNORE_INDEX, labels, torch.zeros_like(labels))
    onehot = F.one_hot(lab.long().clamp(max=groups.shape[0] - 1), groups.shape[0])
    onehot = onehot.permute(0, 3, 1, 2).float() * valid[:, None]
    gp = gp * valid[:, None]
    idx = torch.tensor(which)
    inter = (gp[:, idx] * onehot[:, idx]).sum(dim=(0, 2, 3))
    den = gp[:, idx].sum(dim=(0, 2, 3)) + onehot[:, idx].sum(dim=(0, 2, 3))
    return (1 - (2 * inter + 1.0) / (den + 1.0)).mean()


def label_weights(masks: np.ndarray, n: int, power: float = 0.5,
                  clip: tuple[float, float] = (0.5, 5.0)) -> np.ndarray:
    """Per-label weights ``(median / freq) ** power`` (labels absent from ``masks``: 1)."""
    counts = np.bincount(masks[masks != IGNORE_INDEX].reshape(-1), minlength=256)[:n]
    w = np.ones(n, np.float32)
    present = counts > 0
    if present.any():
        freq = counts[present] / counts.sum()
        w[present] = np.clip((np.median(freq) / freq) ** power, *clip)
    return w
