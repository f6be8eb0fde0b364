"""Teach by example: new concepts learned at run time in the encoder's feature space.

A surgeon shows an example of something the model has no class for (an accessory duct, an
aberrant artery, a landmark of this patient); from then on it is outlined.

Features: the model's per-pixel ``features`` output ([C, h, w], L2-normalised per cell, at
1/16 of the model input; see :mod:`vision.models`), covering the model input = the frame's
field-of-view box. Positions here are in 0..1 of that grid (x right, y down).

The learner, per concept:

- **example region**: a given mask (any resolution; cells more than half covered), or a point
  grown over similar features: the 4-connected cells around the point whose cosine
  similarity to the point's feature is >= ``grow`` (at most ``max_region`` of the grid),
  then ``refine`` self-training steps: a classifier of that region against the cells
  unlike the point, applied to the same frame, and the connected cells it accepts around
  the point (on dev, 1-point IoU 0.065 without, 0.072 with one step, 0.074 with two; 5
  points 0.091 / 0.088 / 0.088);
- **prototypes**: per example up to ``k_pos`` k-means centroids of the region's features
  (positives) and ``k_neg`` centroids of the cells clearly outside it (negatives); "that is
  not the X" adds its region's centroids to the negatives. Only these centroids are kept
  and saved: never pixels, never whole feature maps;
- **similarity map**: a balanced, L2-regularised logistic regression fitted on the prototypes
  (a linear score per cell: w . f + b, cheap for many concepts), smoothed over time with an
  exponential moving average (``smoothing`` = weight of the newest frame), thresholded at
  ``threshold`` (calibrated on Endoscapes *train* patients by ``benchmarks.bench_teach``,
  stored in ``teach_calibration.json`` next to this module); a frame whose best cell scores
  below ``threshold + gate`` gets no outline (``gate`` None: off; also calibrated).

Concepts are saved with :meth:`ConceptBook.save` as an npz holding only names, example
times / kinds and the prototype vectors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage
from scipy.optimize import minimize

CALIBRATION = Path(__file__).with_name("teach_calibration.json")
#: Used when no calibration file exists (the values the dev calibration chose last).
DEFAULTS = {"threshold": 0.0, "grow": 0.5, "max_region": 0.4, "k_pos": 32, "k_neg": 128,
            "reg": 0.01, "smoothing": 0.6, "neg_margin": 0.0, "gate": None, "refine": 2}
FORMAT = "teach-prototypes-v1"


class TeachError(ValueError):
    """Bad teaching input (unknown concept, empty region, feature size mismatch)."""


def load_calibration(path: Path | None = None) -> dict:
    """Learner settings: :data:`DEFAULTS` updated from the calibration file when present."""
    cfg = dict(DEFAULTS)
    p = Path(path) if path else CALIBRATION
    if p.is_file():
        cfg.update({k: v for k, v in json.loads(p.read_text()).get("settings", {}).items()
                    if k in DEFAULTS})
    return cfg


def normalise(feats: np.ndarray) -> np.ndarray:
    """[C, h, w] features, each cell scaled to unit L2 norm (float32)."""
    f = np.asarray(feats, np.float32)
    return f / np.maximum(np.linalg.norm(f, axis=0, keepdims=True), 1e-6)


def kmeans(x: np.ndarray, k: int, iters: int = 8) -> np.ndarray:
    """Deterministic k-means (farthest-point init) of [N, C] rows -> [<=k, C] unit centroids."""
    x = np.asarray(x, np.float32)
    if len(x) <= k:
        cent = x.copy()
    else:
        idx = [int(np.argmax(np.linalg.norm(x - x.mean(0), axis=1)))]
        d = np.linalg.norm(x - x[idx[0]], axis=1)
        for _ in range(k - 1):
            idx.append(int(np.argmax(d)))
            d = np.minimum(d, np.linalg.norm(x - x[idx[-1]], axis=1))
        cent = x[idx].copy()
        for _ in range(iters):
            a = np.argmax(x @ cent.T, axis=1)
            for j in range(len(cent)):
                if np.any(a == j):
                    cent[j] = x[a == j].mean(0)
    return cent / np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-6)


def mask_cells(mask: np.ndarray, grid_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Boolean mask (any size) -> (inside, outside) cells of the grid: inside = more than half
    covered (or the most covered cell when none is), outside = under 5 % covered."""
    h, w = grid_hw
    frac = cv2.resize(np.asarray(mask, np.float32), (w, h), interpolation=cv2.INTER_AREA)
    inside = frac > 0.5
    if not inside.any() and frac.max() > 0:
        inside = frac >= frac.max()
    return inside, frac < 0.05


def point_cell(point: tuple[float, float], grid_hw: tuple[int, int]) -> tuple[int, int]:
    """(x, y) in 0..1 -> (row, col) of the grid cell."""
    h, w = grid_hw
    x, y = point
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise TeachError(f"point {point} outside 0..1")
    return min(int(y * h), h - 1), min(int(x * w), w - 1)


def point_similarity(feats: np.ndarray, point: tuple[float, float]) -> np.ndarray:
    """Cosine similarity [h, w] of every cell to the cell at ``point`` (normalised feats)."""
    r, c = point_cell(point, feats.shape[1:])
    return np.tensordot(feats[:, r, c], feats, axes=(0, 0))


def grow_region(feats: np.ndarray, point: tuple[float, float], grow: float,
                max_region: float = 0.25) -> np.ndarray:
    """Cells 4-connected to ``point`` with cosine similarity to its feature >= ``grow``.

    ``feats``: normalised [C, h, w]. Returns bool [h, w]; at most ``max_region`` of the grid
    (the most similar cells are kept when the grown region is larger).
    """
    _, h, w = feats.shape
    r, c = point_cell(point, (h, w))
    sim = point_similarity(feats, point)
    lab, _ = ndimage.label(sim >= grow)
    region = lab == lab[r, c] if lab[r, c] else np.zeros((h, w), bool)
    region[r, c] = True
    cap = max(1, int(max_region * h * w))
    if region.sum() > cap:
        cut = np.sort(sim[region])[-cap]
        region &= sim >= cut
    return region


def fit_linear(pos: np.ndarray, neg: np.ndarray, reg: float) -> tuple[np.ndarray, float]:
    """Balanced L2-regularised logistic regression of positives vs negatives -> (w, b)."""
    x = np.concatenate([pos, neg]).astype(np.float64)
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    sw = np.where(y == 1, 0.5 / len(pos), 0.5 / len(neg))

    def loss(p: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ p[:-1] + p[-1]
        q = 1.0 / (1.0 + np.exp(-z))
        ll = np.logaddexp(0, z) - y * z
        g = sw * (q - y)
        val = float((sw * ll).sum() + 0.5 * reg * p[:-1] @ p[:-1])
        return val, np.r_[x.T @ g + reg * p[:-1], g.sum()]

    res = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B",
                   options={"maxiter": 200})
    return res.x[:-1].astype(np.float32), float(res.x[-1])


@dataclass
class Concept:
    """One taught concept: prototype sets and the examples' metadata (no pixels)."""

    name: str
    pos: np.ndarray  # [P, C] unit vectors
    neg: np.ndarray  # [N, C] unit vectors
    examples: list[dict] = field(default_factory=list)  # {"time_s", "kind", "positive"}
    w: np.ndarray | None = None
    b: float = 0.0

    @property
    def n_examples(self) -> int:
        """Positive examples shown."""
        return sum(1 for e in self.examples if e["positive"])

    @property
    def taught_at_s(self) -> float:
        """Time of the first example (s, session clock)."""
        return float(self.examples[0]["time_s"]) if self.examples else 0.0


class ConceptBook:
    """The session's taught concepts: teach / forget / score frames / save / load."""

    def __init__(self, settings: dict | None = None) -> None:
        self.settings = load_calibration() if settings is None else {**DEFAULTS, **settings}
        self.concepts: dict[str, Concept] = {}
        self._ema: dict[str, np.ndarray] = {}

    def names(self) -> list[str]:
        """Taught concept names, in teaching order."""
        return list(self.concepts)

    def __contains__(self, name: str) -> bool:
        return name in self.concepts

    def region(self, feats: np.ndarray, point: tuple[float, float] | None = None,
               mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(inside, outside) cells of an example given by ``point`` or ``mask``."""
        s = self.settings
        h, w = feats.shape[1:]
        if mask is not None:
            inside, outside = mask_cells(mask, (h, w))
        elif point is not None:
            inside = grow_region(feats, point, s["grow"], s["max_region"])
            # negatives: clearly unlike the point (the object may extend beyond the region)
            outside = ~ndimage.binary_dilation(inside, iterations=1) & \
                (point_similarity(feats, point) < s["grow"] - s["neg_margin"])
            for _ in range(int(s.get("refine") or 0)):  # True = one step
                if not outside.any():
                    break
                inside = self._refine(feats, point, inside, outside)
                outside &= ~ndimage.binary_dilation(inside, iterations=1)
        else:
            raise TeachError("an example needs a point or a mask")
        if not inside.any():
            raise TeachError("the example region is empty")
        return inside, outside

    def _refine(self, feats: np.ndarray, point: tuple[float, float], inside: np.ndarray,
                outside: np.ndarray) -> np.ndarray:
        """One self-training step for a point: a classifier of the grown region against the
        unlike cells, applied to the same frame; the connected cells around the point it
        accepts (at most ``max_region`` of the grid) become the region."""
        c = feats.shape[0]
        flat = feats.reshape(c, -1).T
        w, b = fit_linear(kmeans(flat[inside.reshape(-1)], self.settings["k_pos"]),
                          kmeans(flat[outside.reshape(-1)], self.settings["k_neg"]),
                          self.settings["reg"])
        score = (flat @ w + b).reshape(inside.shape)
        lab, _ = ndimage.label(score > self.settings["threshold"])
        r, col = point_cell(point, inside.shape)
        if not lab[r, col]:
            return inside
        region = (lab == lab[r, col]) | inside
        cap = max(1, int(self.settings["max_region"] * inside.size))
        if region.sum() > cap:
            cut = np.sort(score[region])[-cap]
            region &= score >= cut
        return region

    def teach(self, name: str, feats: np.ndarray, point: tuple[float, float] | None = None,
              mask: np.ndarray | None = None, positive: bool = True, time_s: float = 0.0
              ) -> np.ndarray:
        """Add one example of ``name`` (negative: "that is not the <name>").

        ``feats``: [C, h, w] (normalised here). Returns the example's region (bool [h, w]).
        A negative example for an unknown name raises TeachError.
        """
        name = name.strip().lower()
        if not name:
            raise TeachError("empty concept name")
        f = normalise(feats)
        c_dim = f.shape[0]
        inside, outside = self.region(f, point, mask)
        flat = f.reshape(c_dim, -1).T
        s = self.settings
        con = self.concepts.get(name)
        if con is not None and con.pos.shape[1] != c_dim:
            raise TeachError(f"{name}: taught with {con.pos.shape[1]}-d features, got {c_dim}")
        if con is None:
            if not positive:
                raise TeachError(f"nothing called {name!r} was taught")
            con = Concept(name, np.zeros((0, c_dim), np.float32),
                          np.zeros((0, c_dim), np.float32))
            self.concepts[name] = con
        if positive:
            con.pos = np.concatenate([con.pos, kmeans(flat[inside.reshape(-1)], s["k_pos"])])
            if outside.any():
                con.neg = np.concatenate([con.neg, kmeans(flat[outside.reshape(-1)],
                                                          s["k_neg"])])
        else:
            con.neg = np.concatenate([con.neg, kmeans(flat[inside.reshape(-1)], s["k_pos"])])
        con.examples.append({"time_s": float(time_s), "kind": "mask" if mask is not None
                             else "point", "positive": bool(positive)})
        self._refit(con)
        return inside

    def _refit(self, con: Concept) -> None:
        self._ema.pop(con.name, None)
        if len(con.neg) == 0:  # nothing to contrast with yet: similarity to the mean positive
            m = con.pos.mean(0)
            con.w, con.b = (m / max(np.linalg.norm(m), 1e-6)).astype(np.float32), -0.8
            return
        con.w, con.b = fit_linear(con.pos, con.neg, self.settings["reg"])

    def forget(self, name: str) -> bool:
        """Remove ``name``; False when it was not taught."""
        self._ema.pop(name.strip().lower(), None)
        return self.concepts.pop(name.strip().lower(), None) is not None

    def reset_time(self) -> None:
        """Drop the temporal smoothing state (a new video)."""
        self._ema.clear()

    def scores(self, feats: np.ndarray, names: list[str] | None = None, smooth: bool = True
               ) -> dict[str, np.ndarray]:
        """Per concept the score map [h, w] (logit; > threshold = inside), smoothed over the
        frames seen so far when ``smooth``."""
        todo = [n for n in (names or self.names()) if n in self.concepts]
        if not todo:
            return {}
        f = normalise(feats)
        c_dim, h, w = f.shape
        wmat = np.stack([self.concepts[n].w for n in todo])
        bias = np.array([self.concepts[n].b for n in todo], np.float32)
        raw = (wmat @ f.reshape(c_dim, -1) + bias[:, None]).reshape(len(todo), h, w)
        out = {}
        a = float(self.settings["smoothing"])
        for n, s in zip(todo, raw, strict=True):
            prev = self._ema.get(n)
            if smooth and prev is not None and prev.shape == s.shape:
                s = a * s + (1 - a) * prev
            if smooth:
                self._ema[n] = s
            out[n] = s
        return out

    def masks(self, feats: np.ndarray, size: tuple[int, int], names: list[str] | None = None,
              smooth: bool = True) -> dict[str, np.ndarray]:
        """Per concept a bool mask at ``size`` = (width, height) covering the feature grid
        (bilinear upsampling of the score, then the calibrated threshold)."""
        t = float(self.settings["threshold"])
        gate = self.settings.get("gate")
        out = {}
        for n, s in self.scores(feats, names, smooth).items():
            if gate is not None and s.max() < t + gate:  # not in this frame
                out[n] = np.zeros(size[::-1], bool)
            else:
                out[n] = cv2.resize(s, size, interpolation=cv2.INTER_LINEAR) > t
        return out

    def describe(self, name: str) -> dict:
        """Name, first example time (s), positive / negative example counts."""
        con = self.concepts[name.strip().lower()]
        return {"name": con.name, "taught_at_s": con.taught_at_s, "examples": con.n_examples,
                "negatives": len(con.examples) - con.n_examples}

    def save(self, path: Path | str) -> Path:
        """Write prototypes and example metadata (npz; no image data)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "concepts": [
            {"name": c.name, "examples": c.examples} for c in self.concepts.values()]}
        arrays = {}
        for i, c in enumerate(self.concepts.values()):
            arrays[f"pos_{i}"] = c.pos.astype(np.float32)
            arrays[f"neg_{i}"] = c.neg.astype(np.float32)
        with open(path, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
        return path

    def load(self, path: Path | str) -> list[str]:
        """Add the concepts of a saved file (replacing same-named ones); returns their names.

        Raises TeachError for a file that is not a saved concept book.
        """
        try:
            z = np.load(Path(path), allow_pickle=False)
            meta = json.loads(str(z["meta"]))
        except (OSError, ValueError, KeyError) as exc:
            raise TeachError(f"not a taught-concepts file: {path}") from exc
        if meta.get("format") != FORMAT:
            raise TeachError(f"not a taught-concepts file: {path}")
        names = []
        for i, c in enumerate(meta["concepts"]):
            con = Concept(c["name"], z[f"pos_{i}"], z[f"neg_{i}"], list(c["examples"]))
            self._refit(con)
            self.concepts[con.name] = con
            names.append(con.name)
        return names
