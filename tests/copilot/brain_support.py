"""Shared, process-cached material for the brain tests: fresh feeds (seeds 5311 / 5312, used
by no other test or training run), the real vision pipeline's findings on them, and a brain
run over the truth utterances. Generated once per pytest process (about 25 s in all)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.bench_brain_accuracy import (
    RunOutput,
    analyse_video,
    run_brain,
    truth_transcripts,
)
from copilot.feeds import load_truth, make_feed

FEEDS = {
    "chole": dict(scenario="cholecystectomy", seconds=36.0, seed=5311,
                  events=["large_vessel@9", "clip_before_cvs@16", "bleeding@26"]),
    "bowel": dict(scenario="bowel-survey", seconds=50.0, seed=5312,
                  events=["skip_segment:jejunum", "large_vessel@9.5"]),
}
SIZE = (320, 240)
FPS = 15.0
EVERY = 3


@functools.lru_cache(maxsize=1)
def workdir() -> Path:
    """A temp folder for this test process."""
    return Path(tempfile.mkdtemp(prefix="brain-tests-"))


@functools.cache
def feed(name: str) -> Path:
    """Generate feed ``name`` (chole / bowel) once per process."""
    spec = FEEDS[name]
    return make_feed(workdir() / name, spec["scenario"], spec["seconds"], spec["seed"],
                     size=SIZE, fps=FPS, events=spec["events"])


@functools.cache
def truth(name: str) -> dict[str, Any]:
    """The feed's truth.json."""
    return load_truth(feed(name))


@functools.cache
def frames(name: str) -> list[tuple[int, float, list]]:
    """Real vision findings (shipped model, ONNX Runtime) on every 3rd frame."""
    return analyse_video(feed(name), EVERY)


def brain_run(name: str, session_path: Path | None = None, **brain_kwargs: Any
              ) -> tuple[Any, RunOutput]:
    """A fresh brain fed with the feed's findings and its truth utterances (perfect ASR)."""
    from copilot.brain import Brain
    from copilot.session import SessionLog

    log = SessionLog(session_path) if session_path is not None else None
    brain = Brain(scenario=truth(name)["scenario"], session=log, **brain_kwargs)
    run = run_brain(brain, frames(name), truth_transcripts(truth(name)),
                    truth(name)["duration_s"])
    if log is not None:
        log.write("end", media_t_s=truth(name)["duration_s"],
                  duration_s=truth(name)["duration_s"])
        log.close()
    return brain, run


@functools.cache
def cached_run(name: str) -> tuple[Any, RunOutput, Path]:
    """One brain run per feed with its session file (shared by several tests)."""
    p = workdir() / f"{name}.session.jsonl"
    brain, run = brain_run(name, p)
    return brain, run, p
