"""Percentiles: the one function the product and the benchmarks compute them with.

``percentile`` takes samples in any unit and returns the q-th percentile (q in 0-100) in
that unit, unrounded; rounding and scaling stay with each caller. ``stats_ms`` is the summary
dict of millisecond samples that ``copilot bench`` reports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

#: ``linear``: numpy's default (interpolates between the two nearest ranks);
#: ``nearest_rank``: the sample at rank round(q / 100 * n + 0.5), no interpolation;
#: ``nan_linear``: ``linear`` ignoring NaN samples (numpy's nanpercentile);
#: ``index``: the sorted sample at index int(n * q / 100), no interpolation (q = 50: the upper
#: median).
METHODS = ("linear", "nearest_rank", "nan_linear", "index")


def percentile(xs: Sequence[float] | np.ndarray, q: float, method: str = "linear",
               empty: float | None = None) -> float | None:
    """The q-th percentile (0-100) of ``xs`` in their unit; ``empty`` when there are none."""
    if len(xs) == 0:
        return empty
    if method == "linear":
        return float(np.percentile(xs, q))
    if method == "nan_linear":
        return float(np.nanpercentile(xs, q))
    if method == "nearest_rank":
        s = sorted(xs)
        k = max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.5)) - 1))
        return s[k]
    if method == "index":
        return sorted(xs)[int(len(xs) * (q / 100))]
    raise ValueError(f"unknown percentile method {method!r}; choose from {', '.join(METHODS)}")


def percentiles(xs: Sequence[float] | np.ndarray, qs: Iterable[float] = (50, 95, 99)
                ) -> dict[str, float]:
    """``{"p50": ..., "p95": ...}`` (linear, unrounded, in the samples' unit); {} when empty."""
    if len(xs) == 0:
        return {}
    return {f"p{int(q)}": percentile(xs, q) for q in qs}


def stats_ms(xs: Iterable[float]) -> dict[str, float] | None:
    """n, min, p50, p95, p99, max, mean of millisecond samples (None when empty)."""
    a = np.asarray([x for x in xs if x is not None and math.isfinite(x)], dtype=np.float64)
    if a.size == 0:
        return None
    q = percentiles(a, (50, 95, 99))
    return {"n": int(a.size), "min": round(float(a.min()), 3), "p50": round(q["p50"], 3),
            "p95": round(q["p95"], 3), "p99": round(q["p99"], 3),
            "max": round(float(a.max()), 3), "mean": round(float(a.mean()), 3)}
