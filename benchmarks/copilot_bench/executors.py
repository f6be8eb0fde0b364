"""Fanning feeds out: in this process, a local process pool, or Ray."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.copilot_bench.config import BenchConfig
from benchmarks.copilot_bench.plots import make_plots
from benchmarks.copilot_bench.report import build_report, write_report
from benchmarks.copilot_bench.runner import _tasks, bench_feed
from copilot.errors import CopilotError

log = logging.getLogger(__name__)

def default_workers(n_feeds: int) -> int:
    """Half the cores (benchmarks need room), at least 1, at most the number of feeds."""
    return max(1, min(n_feeds, (os.cpu_count() or 2) // 2))


def run_local(tasks: list[dict], workers: int, progress: bool) -> list[dict]:
    """Feeds in a spawned process pool (one fresh process per feed); workers 0 = here."""
    from tqdm import tqdm

    if workers == 0:
        return [bench_feed(t) for t in tqdm(tasks, desc="feeds", disable=not progress)]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    results: dict[int, dict] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             max_tasks_per_child=1) as pool:
        futs = {pool.submit(bench_feed, t): i for i, t in enumerate(tasks)}
        for fut in tqdm(as_completed(futs), total=len(futs), desc="feeds",
                        disable=not progress):
            results[futs[fut]] = fut.result()
    return [results[i] for i in range(len(tasks))]


def run_ray(tasks: list[dict], address: str, progress: bool) -> list[dict]:
    """Feeds as Ray tasks (one CPU each) on the cluster at ``address`` ("auto": the running
    cluster, else a local one; "local": always a new local one). Reuses an initialised Ray."""
    try:
        import ray
    except ImportError:
        raise CopilotError("--ray needs Ray: pip install 'surgical-copilot[ray]'") from None
    from tqdm import tqdm

    if not ray.is_initialized():
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except ConnectionError:
                if address != "auto":
                    raise CopilotError(f"no Ray cluster at {address}") from None
                log.warning("no running Ray cluster found: starting a local one")
                ray.init(include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=1, max_retries=0)(bench_feed)
    refs = [remote.remote(t) for t in tasks]
    index = {r: i for i, r in enumerate(refs)}
    results: dict[int, dict] = {}
    pending = list(refs)
    with tqdm(total=len(refs), desc="feeds (ray)", disable=not progress) as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for r in done:
                results[index[r]] = ray.get(r)
                bar.update(1)
    return [results[i] for i in range(len(tasks))]


def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    """Run everything, write report.json / report.md / plots into ``cfg.out``; returns the
    report."""
    from benchmarks.machine import machine_info

    cfg.check()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    t0 = time.perf_counter()
    tasks = _tasks(cfg)
    if cfg.ray:
        feeds = run_ray(tasks, cfg.ray, cfg.progress)
        executor = f"ray:{cfg.ray}"
    else:
        workers = cfg.workers if cfg.workers is not None else default_workers(len(tasks))
        feeds = run_local(tasks, workers, cfg.progress)
        executor = f"local:{workers}"
    report = build_report(cfg, feeds, machine, executor, time.perf_counter() - t0)
    report["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["plots"] = make_plots(report, out, feeds)
    write_report(report, out)
    return report
