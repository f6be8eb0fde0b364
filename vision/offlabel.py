"""Off-label score: how much a frame looks like the domain the model was validated on.

The encoder's own per-frame ``embedding`` (global means of its deepest features) is compared
with the embeddings of the frames it was validated on, one Gaussian per domain (real
laparoscopic cholecystectomy frames of Endoscapes *train* patients; the project's synthetic
feeds). For a domain, ``d`` = Mahalanobis distance in the top principal components plus the
scaled residual (PCA fitted on that domain's frames), and

    score = sigmoid((log(thr) - log(d)) / scale)

so a frame exactly at the threshold distance scores 0.5. ``thr`` is the 99th percentile of
``d`` on held-out frames of that domain (held-out *train* patients / validation seeds, never
the test split); ``in_domain`` is the best score over the domains and ``off_label`` is
``in_domain < 0.5``. Stored as ``offlabel.npz`` in the model directory.

Pooled features barely move for a dark, blank or heavily blurred view (a black screen
scored as in-domain), so a content check on the model input caps the score: log mean
brightness, log contrast (grey-level std) and log sharpness (variance of the Laplacian),
each with a threshold at half its 5th-percentile value on the train-side frames of the
validated domains (not the 1st: a few Endoscapes train frames are black); ``in_domain`` =
min(feature score, content score).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

OFFLABEL = "offlabel.npz"
#: in_domain below this is off-label (the per-domain thresholds are mapped onto 0.5).
THRESHOLD = 0.5


@dataclass
class DomainGaussian:
    """PCA-Mahalanobis model of one domain's embeddings."""

    name: str
    mean: np.ndarray  # [D]
    comps: np.ndarray  # [k, D] principal directions
    var: np.ndarray  # [k] variances along them
    resid_var: float  # mean variance per dimension outside the k components
    log_thr: float = 0.0
    scale: float = 1.0

    @classmethod
    def fit(cls, name: str, emb: np.ndarray, k: int = 32) -> DomainGaussian:
        """Fit on [N, D] embeddings (k clipped to N - 1)."""
        emb = np.asarray(emb, np.float64)
        mu = emb.mean(0)
        x = emb - mu
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        k = int(min(k, len(emb) - 1, vt.shape[0]))
        var = s[:k] ** 2 / max(len(emb) - 1, 1) + 1e-6
        tail = s[k:] ** 2 / max(len(emb) - 1, 1)
        resid = float(tail.sum() / max(emb.shape[1] - k, 1)) + 1e-6
        return cls(name, mu.astype(np.float32), vt[:k].astype(np.float32),
                   var.astype(np.float32), resid)

    def distance(self, emb: np.ndarray) -> np.ndarray:
        """Normalised Mahalanobis distance of [N, D] embeddings (about 1 in the domain)."""
        x = np.atleast_2d(np.asarray(emb, np.float32)) - self.mean
        z = x @ self.comps.T
        resid = (x * x).sum(1) - (z * z).sum(1)
        d2 = (z * z / self.var).sum(1) + np.maximum(resid, 0) / self.resid_var
        return np.sqrt(d2 / x.shape[1])

    def calibrate(self, held_out: np.ndarray, q: float = 99.0) -> None:
        """Threshold = ``q``-th percentile of held-out in-domain distances."""
        ld = np.log(self.distance(held_out) + 1e-9)
        self.log_thr = float(np.percentile(ld, q))
        self.scale = float(max((self.log_thr - np.median(ld)) / 3.0, 0.05))

    def score(self, emb: np.ndarray) -> np.ndarray:
        """0-1 per row, 0.5 at the threshold distance."""
        ld = np.log(self.distance(emb) + 1e-9)
        return 1.0 / (1.0 + np.exp(np.clip((ld - self.log_thr) / self.scale, -50, 50)))


def content_stats(image: np.ndarray) -> np.ndarray:
    """[log mean, log std, log Laplacian variance] of the grey level of one model input
    ([1, 3, H, W] / [3, H, W] float 0..255, or [H, W, 3] uint8)."""
    import cv2

    a = np.asarray(image, np.float32)
    if a.ndim == 4:
        a = a[0]
    grey = a.mean(axis=0) if a.shape[0] == 3 and a.ndim == 3 and a.shape[-1] != 3 \
        else a.mean(axis=-1)
    lap = cv2.Laplacian(np.ascontiguousarray(grey), cv2.CV_32F)
    return np.log(np.array([grey.mean(), grey.std(), lap.var()], np.float64) + 1.0)


class OffLabelScorer:
    """Best per-domain score of an embedding, capped by the content check (module doc)."""

    def __init__(self, domains: list[DomainGaussian],
                 content_thr: np.ndarray | None = None, content_scale: float = 0.25) -> None:
        self.domains = domains
        self.content_thr = None if content_thr is None else np.asarray(content_thr, float)
        self.content_scale = content_scale

    def fit_content(self, images: np.ndarray, q: float = 5.0) -> None:
        """Thresholds = half the ``q``-th percentile (log - log 2) on in-domain images."""
        st = np.stack([content_stats(im) for im in images])
        self.content_thr = np.percentile(st, q, axis=0) - np.log(2.0)

    def content_score(self, image: np.ndarray) -> float:
        """0-1, 0.5 where the weakest of brightness / contrast / sharpness hits its threshold."""
        if self.content_thr is None:
            return 1.0
        z = (content_stats(image) - self.content_thr) / self.content_scale
        return float(np.min(1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))))

    def score(self, emb: np.ndarray, image: np.ndarray | None = None) -> np.ndarray:
        """in_domain per row of [N, D] (or one [D] embedding -> shape [1]); with ``image``
        (one model input) capped by its content score."""
        s = np.max(np.stack([d.score(emb) for d in self.domains]), axis=0)
        return s if image is None else np.minimum(s, self.content_score(image))

    def save(self, path: Path) -> None:
        """Write ``offlabel.npz``."""
        arrs: dict[str, np.ndarray] = {"names": np.array([d.name for d in self.domains])}
        if self.content_thr is not None:
            arrs["content_thr"] = self.content_thr
            arrs["content_scale"] = np.array(self.content_scale)
        for i, d in enumerate(self.domains):
            arrs[f"{i}_mean"], arrs[f"{i}_comps"], arrs[f"{i}_var"] = d.mean, d.comps, d.var
            arrs[f"{i}_scalars"] = np.array([d.resid_var, d.log_thr, d.scale], np.float64)
        np.savez(path, **arrs)

    @classmethod
    def load(cls, path: Path) -> OffLabelScorer:
        """Read ``offlabel.npz``."""
        z = np.load(path)
        doms = []
        for i, name in enumerate(z["names"]):
            r, t, s = (float(v) for v in z[f"{i}_scalars"])
            doms.append(DomainGaussian(str(name), z[f"{i}_mean"], z[f"{i}_comps"],
                                       z[f"{i}_var"], r, t, s))
        if "content_thr" in z:
            return cls(doms, z["content_thr"], float(z["content_scale"]))
        return cls(doms)


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve of scores ``pos`` (should be high) vs ``neg`` (ties = 0.5)."""
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    if not len(pos) or not len(neg):
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sv = allv[order]
    i = 0
    while i < len(sv):  # average ranks of ties
        j = i
        while j + 1 < len(sv) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    r = ranks[:len(pos)].sum()
    return float((r - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))
