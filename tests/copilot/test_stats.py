"""copilot.stats: the one percentile function (methods as the callers had them) and stats_ms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from copilot.stats import percentile, percentiles, stats_ms


def test_linear_is_numpys_default() -> None:
    xs = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0]
    for q in (10, 50, 90, 95, 99):
        assert percentile(xs, q) == float(np.percentile(xs, q))
    assert percentiles(xs, (50, 95)) == {"p50": float(np.percentile(xs, 50)),
                                         "p95": float(np.percentile(xs, 95))}


def test_the_other_methods() -> None:
    xs = list(range(1, 21))  # 1..20
    assert percentile(xs, 95, method="nearest_rank") == 20
    assert percentile(xs, 90, method="nearest_rank") == 18
    assert percentile(xs, 50, method="nearest_rank") == 10
    assert percentile(xs, 95, method="index") == 20  # xs[int(20 * 0.95)]
    assert percentile(xs, 50, method="index") == 11  # the upper median
    assert percentile([1.0, math.nan, 3.0], 50, method="nan_linear") == 2.0
    with pytest.raises(ValueError):
        percentile(xs, 50, method="nearest")


def test_empty_samples() -> None:
    assert percentile([], 50) is None
    assert math.isnan(percentile([], 50, empty=float("nan")))
    assert percentiles([]) == {}
    assert stats_ms([]) is None and stats_ms([None, math.inf]) is None


def test_stats_ms_rounds_to_microseconds() -> None:
    s = stats_ms([1.00049, 2.0, 3.0, None])
    assert s == {"n": 3, "min": 1.0, "p50": 2.0, "p95": 2.9, "p99": 2.98, "max": 3.0,
                 "mean": 2.0}
