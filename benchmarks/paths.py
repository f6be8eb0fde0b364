"""Where the benchmarks write their results.

``benchmarks/results/`` (committed), unless ``$COPILOT_BENCH_RESULTS`` names another folder:
``make bench-quick`` (``benchmarks.run_all --quick``) sets it to a scratch folder so that a
smoke run never touches the committed results.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the committed results folder
COMMITTED = Path(__file__).resolve().parent / "results"
#: environment variable naming another results folder
ENV = "COPILOT_BENCH_RESULTS"


def results_dir() -> Path:
    """``$COPILOT_BENCH_RESULTS`` if set, else ``benchmarks/results/``."""
    other = os.environ.get(ENV)
    return Path(other) if other else COMMITTED
