"""Causal temporal model for the surgical phase.

A continuous-time hidden Markov filter over the per-frame phase probabilities of the
encoder: the hidden phase evolves with a rate matrix ``Q`` (per second) learnt from the
training annotations; each frame's classifier output (raised to ``emission_power`` and
optionally divided by the training prior, ``prior_power``) is the emission likelihood. The
forward recursion uses only past frames (causal), works at any (irregular) frame rate
because transitions use ``expm(Q * dt)``, and costs a 7x7 matrix product per frame.

Two options guard against per-frame errors that are correlated in time (the same wrong class
for many consecutive frames, e.g. a bowel segment confused with its neighbour at a frame size
the encoder was not trained on):

- ``evidence_dt_s``: each frame's emission exponent is scaled by ``dt / evidence_dt_s`` (the
  time since the previous frame over the frame interval the emissions were calibrated at), so
  the evidence gathered per second does not grow with the frame rate.
- an ordered route (:meth:`PhaseFilter.fit` with ``order``): states visited left to right
  (the bowel survey: duodenum D1 ... rectum) may only step to the next state or skip one;
  backward and longer jumps get ``off_route_rate`` (~0), so a wrong segment cannot be
  entered out of order and held at ~1.0. ``belief_floor`` keeps every state reachable.
- a confident step along the route (``fast_p`` > 0, ordered routes only): when the frame
  classifier gives the next route state, or the one after it, at least ``fast_p`` for
  ``fast_frames`` frames in a row spanning at least ``fast_s`` seconds, the belief moves there
  at once instead of waiting for the damped evidence to overturn the old state (the filter
  otherwise lags a clear segment change by ~0.3-0.5 s; a skipped bowel segment is alerted
  only once the segment after it is the filtered state). Less confident or backward runs,
  and longer jumps, still go through the filter.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.linalg import expm

from vision.errors import VisionError


class PhaseFilter:
    """Forward filter ``p(phase_t | frames_<=t)`` over ``n`` phases."""

    def __init__(self, rate: np.ndarray, prior: np.ndarray, initial: np.ndarray | None = None,
                 emission_power: float = 1.0, floor: float = 1e-4,
                 prior_power: float = 0.0, evidence_dt_s: float = 0.0,
                 belief_floor: float = 1e-6, order: list[int] | None = None,
                 fast_p: float = 0.0, fast_s: float = 0.0, fast_frames: int = 2) -> None:
        rate = np.asarray(rate, dtype=np.float64)
        n = rate.shape[0]
        if rate.shape != (n, n) or np.asarray(prior).shape != (n,):
            raise VisionError("phase filter: rate must be [n, n] and prior [n]")
        self.rate = rate
        self.prior = np.clip(np.asarray(prior, dtype=np.float64), 1e-6, None)
        self.prior /= self.prior.sum()
        init = np.full(n, 1.0 / n) if initial is None else np.asarray(initial, np.float64)
        self.initial = init / init.sum()
        self.emission_power = float(emission_power)
        self.prior_power = float(prior_power)
        self.floor = float(floor)
        self.evidence_dt_s = float(evidence_dt_s)
        self.belief_floor = float(belief_floor)
        self.order = [int(i) for i in order] if order else []
        self.fast_p = float(fast_p)
        self.fast_s = float(fast_s)
        self.fast_frames = int(fast_frames)
        self._cache: dict[int, np.ndarray] = {}
        self.reset()

    @property
    def n(self) -> int:
        """Number of phases."""
        return self.rate.shape[0]

    def reset(self) -> None:
        """Forget the past (new video)."""
        self.belief: np.ndarray | None = None
        self.last_t: float | None = None
        self._run: tuple[int, float, int] | None = None  # (state, first t, frames)

    def transition(self, dt: float) -> np.ndarray:
        """Transition matrix over ``dt`` seconds (cached at 10 ms resolution)."""
        key = max(0, int(round(dt * 100)))
        m = self._cache.get(key)
        if m is None:
            m = expm(self.rate * (key / 100.0))
            m = np.clip(m, 0.0, None)
            m /= m.sum(axis=1, keepdims=True)
            if len(self._cache) < 512:
                self._cache[key] = m
        return m

    def update(self, frame_probs: np.ndarray, t_s: float) -> np.ndarray:
        """Fold in one frame's phase probabilities at time ``t_s`` (s); returns the belief."""
        p = np.asarray(frame_probs, dtype=np.float64).reshape(-1)
        dt = None if self.last_t is None else max(0.0, t_s - self.last_t)
        power = self.emission_power
        if self.evidence_dt_s > 0:
            # evidence per second, not per frame (frames a few ms apart are not independent)
            ratio = 1.0 if dt is None else dt / self.evidence_dt_s
            power *= min(max(ratio, 0.05), 2.0)
        lik = (np.clip(p, self.floor, None) / self.prior ** self.prior_power) ** power
        if self.belief is None or dt is None:
            pred = self.initial
        else:
            pred = self.belief @ self.transition(dt)
        b = pred * lik
        s = b.sum()
        b = b / s if s > 0 and np.isfinite(s) else np.full(self.n, 1.0 / self.n)
        # keep every phase reachable so a wrong early lock can be undone
        b = np.clip(b, self.belief_floor, None)
        b = self._fast_step(p, b / b.sum(), t_s)
        self.belief = b / b.sum()
        self.last_t = t_s
        return self.belief.astype(np.float32)

    def _fast_step(self, p: np.ndarray, b: np.ndarray, t_s: float) -> np.ndarray:
        """The confident route step (see the module docstring); returns the belief."""
        if self.fast_p <= 0 or not self.order:
            return b
        k = int(p.argmax())
        if p[k] < self.fast_p:
            self._run = None
            return b
        if self._run is None or self._run[0] != k:
            self._run = (k, t_s, 1)
        else:
            self._run = (k, self._run[1], self._run[2] + 1)
        _, t0, n = self._run
        cur = int(b.argmax())
        if n < self.fast_frames or t_s - t0 < self.fast_s - 1e-9 or cur == k \
                or k not in self.order or cur not in self.order:
            return b
        step = self.order.index(k) - self.order.index(cur)
        if not 1 <= step <= 2:
            return b
        return 0.05 * b + 0.95 * np.eye(self.n)[k]

    # ---- fitting and persistence ----
    @classmethod
    def fit(cls, sequences: list[np.ndarray], fps: list[float], n: int,
            min_rate: float = 1e-3, order: list[int] | None = None, skip_frac: float = 0.1,
            off_route_rate: float = 1e-7) -> PhaseFilter:
        """Estimate the rate matrix and prior from per-frame phase label sequences (-1 ignored).

        ``rate[i, j]`` = transitions i -> j per second spent in i; a small ``min_rate`` towards
        every other phase keeps unseen transitions (skipped steps) possible.

        ``order``: states visited left to right (an ordered route). Between them the rate to
        the next state is the fitted exit rate of the state, a skip of one state gets
        ``skip_frac`` of it plus any skips seen in training, and every other move (backward,
        or past two states) only ``off_route_rate`` per second. States not in ``order`` keep
        the fitted rates with ``min_rate``.
        """
        counts = np.zeros((n, n))
        dwell = np.zeros(n)
        firsts = np.zeros(n)
        for seq, f in zip(sequences, fps, strict=True):
            seq = np.asarray(seq)
            seq = seq[seq >= 0]
            if seq.size == 0:
                continue
            firsts[seq[0]] += 1
            dwell += np.bincount(seq, minlength=n) / f
            change = np.flatnonzero(seq[1:] != seq[:-1])
            for k in change:
                counts[seq[k], seq[k + 1]] += 1
        rate = np.full((n, n), min_rate)
        seen = dwell > 0
        rate[seen] += counts[seen] / dwell[seen, None]
        if seen.any() and not seen.all():
            # a phase never seen in training: leave it at the mean rate of the seen ones
            mean_exit = max(counts[seen].sum() / dwell[seen].sum(), 1e-2)
            rate[~seen] = mean_exit / (n - 1)
        if order:
            _route_rates(rate, counts, dwell, list(order), skip_frac, off_route_rate)
        np.fill_diagonal(rate, 0.0)
        np.fill_diagonal(rate, -rate.sum(axis=1))
        # floor the prior so a phase rare in training is not boosted by dividing by ~0
        prior = np.maximum(dwell / max(dwell.sum(), 1e-9), 0.25 / n)
        initial = firsts + 0.1
        pf = cls(rate, prior / prior.sum(), initial / initial.sum())
        if order:
            pf.belief_floor = min(pf.belief_floor, off_route_rate * 1e-3)
            pf.order = [int(i) for i in order]
        return pf

    def to_dict(self) -> dict:
        """JSON-serialisable parameters."""
        return {
            "kind": "ctmc_forward_filter",
            "rate_per_s": self.rate.tolist(),
            "prior": self.prior.tolist(),
            "initial": self.initial.tolist(),
            "emission_power": self.emission_power,
            "prior_power": self.prior_power,
            "evidence_dt_s": self.evidence_dt_s,
            "belief_floor": self.belief_floor,
            "order": self.order,
            "fast_p": self.fast_p,
            "fast_s": self.fast_s,
            "fast_frames": self.fast_frames,
        }

    @classmethod
    def from_dict(cls, d: dict) -> PhaseFilter:
        """Inverse of :meth:`to_dict`."""
        return cls(np.array(d["rate_per_s"]), np.array(d["prior"]), np.array(d["initial"]),
                   float(d.get("emission_power", 1.0)),
                   prior_power=float(d.get("prior_power", 0.0)),
                   evidence_dt_s=float(d.get("evidence_dt_s", 0.0)),
                   belief_floor=float(d.get("belief_floor", 1e-6)),
                   order=d.get("order") or None, fast_p=float(d.get("fast_p", 0.0)),
                   fast_s=float(d.get("fast_s", 0.0)),
                   fast_frames=int(d.get("fast_frames", 2)))

    def save(self, path: Path) -> None:
        """Write the parameters as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: Path) -> PhaseFilter:
        """Read parameters written by :meth:`save`."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, KeyError) as exc:
            raise VisionError(f"cannot read phase filter {path}: {exc}") from exc

    @classmethod
    def uniform(cls, n: int, mean_dwell_s: float = 60.0) -> PhaseFilter:
        """A filter with no learnt structure: each phase lasts ``mean_dwell_s`` on average."""
        rate = np.full((n, n), 1.0 / (mean_dwell_s * (n - 1)))
        np.fill_diagonal(rate, -1.0 / mean_dwell_s)
        return cls(rate, np.full(n, 1.0 / n))


def _route_rates(rate: np.ndarray, counts: np.ndarray, dwell: np.ndarray, order: list[int],
                 skip_frac: float, off_route_rate: float) -> None:
    """Overwrite ``rate`` among the ``order`` states with a left-to-right structure (in place).

    The exit rate of a route state is its fitted rate of leaving towards later route states
    (the mean exit rate of the route when it was never seen); it goes to the next state, plus
    a ``skip_frac`` share (or the fitted skip count, when larger) to the one after.
    """
    idx = np.asarray(order)
    sub = counts[np.ix_(idx, idx)]
    later = np.triu(sub, 1).sum(axis=1)
    d = dwell[idx]
    seen = d > 0
    mean_exit = later[seen].sum() / d[seen].sum() if seen.any() and later[seen].sum() else 0.2
    for a, i in enumerate(idx):
        exit_rate = later[a] / d[a] if d[a] > 0 and later[a] > 0 else mean_exit
        for b, j in enumerate(idx):
            if b == a:
                continue
            if b == a + 1:
                rate[i, j] = exit_rate
            elif b == a + 2:
                fitted = sub[a, b] / d[a] if d[a] > 0 else 0.0
                rate[i, j] = max(skip_frac * exit_rate, fitted)
            else:
                rate[i, j] = off_route_rate
