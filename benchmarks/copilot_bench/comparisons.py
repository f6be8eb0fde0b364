"""Side-by-side component comparisons on one feed: vision backends, decoders, ASR, loop."""

from __future__ import annotations

import math
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.copilot_bench.scoring import command_accuracy
from benchmarks.copilot_bench.traces import median_ratio
from copilot.stats import stats_ms

# ----------------------------------------------------------------------------- components
_AVAILABLE: dict[str, str | None] = {}


def load_pipeline(backend: str) -> Any:
    """The vision pipeline on ``backend``, without the silent TensorRT -> ONNX Runtime
    fallback (a benchmark must not time one backend under another's name)."""
    from vision.pipeline import VisionPipeline

    kwargs = {"fallback": False} if backend == "tensorrt" else {}
    return VisionPipeline.load(runtime=backend, threads=1, **kwargs)


def backend_unavailable(backend: str) -> str | None:
    """Why ``backend`` cannot run here (None: it can); cached per process."""
    if backend not in _AVAILABLE:
        try:
            load_pipeline(backend)
            _AVAILABLE[backend] = None
        except Exception as exc:  # noqa: BLE001 - the reason is the result
            _AVAILABLE[backend] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    return _AVAILABLE[backend]


def compare_vision(feed: Path, truth: dict | None, backends: list[str], max_frames: int,
                   progress: bool = False) -> dict[str, Any]:
    """Vision backends side by side, frame by frame (order rotating): timings per step and,
    with a truth, mIoU / phase / bowel segment / CVS against the feed's masks."""
    import cv2

    from vision.evaluate import MetricAccumulator
    from vision.sources import open_source

    pipes: dict[str, Any] = {}
    out: dict[str, Any] = {"backends": {}}
    for b in backends:
        try:
            pipes[b] = load_pipeline(b)
        except Exception as exc:  # noqa: BLE001 - e.g. tensorrt not installed
            out["backends"][b] = {"available": False,
                                  "reason": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    if not pipes:
        return out
    names = list(pipes)
    src = open_source(feed / "video.mp4" if feed.is_dir() else feed, "pyav")
    fps = src.info.fps
    n_total = truth["n_frames"] if truth else (src.info.n_frames or max_frames)
    every = max(1, math.ceil(n_total / max_frames))
    timings: dict[str, dict[str, list[float]]] = {b: defaultdict(list) for b in names}
    accs = {b: MetricAccumulator() for b in names}
    fl = truth["frame_labels"] if truth else None
    cholec = bool(truth) and truth.get("scenario") == "cholecystectomy"
    masks = feed / "masks" if feed.is_dir() else None
    k = 0
    try:
        for i, _t, rgb in src:
            if i % every:
                continue
            order = names[k % len(names):] + names[:k % len(names)]
            k += 1
            for b in order:
                t0 = time.perf_counter()
                r = pipes[b].process(rgb, frame_id=i, timestamp_s=i / fps)
                wall = (time.perf_counter() - t0) * 1e3
                for step, ms in r.timing_ms.items():
                    timings[b][step].append(ms)
                timings[b]["wall"].append(wall)
                mpath = masks / f"{i:06d}.png" if masks is not None else None
                if fl is None or mpath is None or not mpath.is_file() or i >= len(fl["phase"]):
                    continue
                m = cv2.imread(str(mpath), cv2.IMREAD_UNCHANGED)
                wo, ho = pipes[b].runtime.config.output_size
                bx = r.fov_box
                m = cv2.resize(np.ascontiguousarray(m[bx.y0:bx.y1, bx.x0:bx.x1]), (wo, ho),
                               interpolation=cv2.INTER_NEAREST)
                phases, regions = list(r.phase), list(r.region)
                accs[b].add(r.label_map, m, int(fl["phase"][i]), phases.index(r.phase_name),
                            int(np.argmax(list(r.phase_frame.values()))), int(fl["region"][i]),
                            regions.index(r.region_name),
                            np.array(list(r.cvs.values())) if cholec else None,
                            np.array(fl["cvs"][i]) if cholec else None,
                            np.array(list(r.tools.values())), np.array(fl["tools"][i]))
    finally:
        src.close()
    base = names[0]
    for b in names:
        t = timings[b]
        acc = accs[b].summary() if fl is not None else {}
        rec = {"available": True, "frames": len(t["wall"]), "every": every,
               "runtime": pipes[b].runtime.describe(),
               "input_size": list(pipes[b].input_size),
               "timing": {s: stats_ms(v) for s, v in t.items()},
               "throughput_per_s": round(1000 / statistics.median(t["wall"]), 1)
               if t["wall"] else None,
               "stage_over_inference": median_ratio(t["total"], t["inference"]),
               "accuracy": {k2: acc.get(k2) for k2 in (
                   "anatomy_miou", "phase_acc", "bowel_segment_acc", "cvs_macro_f1",
                   "tools_macro_f1")} if acc else None}
        if b != base:
            rec["ratio_total_to_" + base] = median_ratio(t["total"], timings[base]["total"])
            rec["ratio_inference_to_" + base] = median_ratio(t["inference"],
                                                             timings[base]["inference"])
        out["backends"][b] = rec
    out["baseline"] = base
    return out


def compare_decoders(feed: Path, decoders: list[str], rounds: int) -> dict[str, Any]:
    """Decoders round by round (order rotating) on the feed's video: fps and ratios."""
    from benchmarks.bench_decoders import decode_all

    video = feed / "video.mp4" if feed.is_dir() else feed
    runs: dict[str, list[dict]] = {d: [] for d in decoders}
    for d in decoders:  # untimed warm-up: imports, page cache
        try:
            decode_all(video, d)
        except Exception:  # noqa: BLE001 - reported by the timed rounds
            pass
    for r in range(rounds):
        for d in decoders[r % len(decoders):] + decoders[:r % len(decoders)]:
            try:
                runs[d].append(decode_all(video, d))
            except Exception as exc:  # noqa: BLE001
                runs[d].append({"error": str(exc), "fps": None, "frames": 0})
    base = decoders[0]
    out: dict[str, Any] = {"baseline": base, "rounds": rounds, "decoders": {}}
    for d, rs in runs.items():
        fps = [x["fps"] for x in rs if x.get("fps")]
        rec = {"fps_per_round": [round(x, 1) for x in fps],
               "fps_median": round(statistics.median(fps), 1) if fps else None,
               "frames": rs[0].get("frames"),
               "cpu_ms_per_frame": round(statistics.median(
                   x["cpu_s"] / max(1, x["frames"]) * 1e3 for x in rs if x.get("fps")), 3)
               if fps else None}
        if d != base:
            rec["ratio_to_" + base] = median_ratio([x["fps"] for x in rs],
                                                   [x["fps"] for x in runs[base]])
        out["decoders"][d] = rec
    return out


def compare_asr(feed: Path, truth: dict | None, asrs: list[str], asr_model_dir: Path | None
                ) -> dict[str, Any]:
    """ASR backends on the feed's audio (whole listener: VAD + wake word + ASR), one after
    the other in this process: real-time factor, per-step time, command accuracy, false
    accepts per hour."""
    from copilot.cli_speech import build_listener
    from speech.audio import load_audio

    wav = feed / "audio.wav" if feed.is_dir() else None
    if wav is None or not wav.is_file():
        return {"skipped": "no audio.wav"}
    audio = load_audio(wav)
    dur = len(audio) / 16000
    out: dict[str, Any] = {"audio_s": round(dur, 2), "backends": {}}
    for a in asrs:
        try:
            lis = build_listener(asr=a, model_dir=asr_model_dir)
        except Exception as exc:  # noqa: BLE001 - e.g. no faster-whisper model offline
            out["backends"][a] = {"available": False,
                                  "reason": f"{type(exc).__name__}: {exc}".splitlines()[0]}
            continue
        t0 = time.perf_counter()
        trs = lis.process(audio)
        wall = time.perf_counter() - t0
        st = lis.stats
        chunks = max(1, st.chunks)
        rec: dict[str, Any] = {
            "available": True, "wall_s": round(wall, 3), "rtf": round(wall / dur, 4),
            "vad_ms_per_chunk": round(st.vad_s / chunks * 1e3, 4),
            "wake_s": round(st.wake_s, 3), "asr_s": round(st.asr_s, 3),
            "asr_rtf": round(st.asr_s / dur, 4), "utterances": st.utterances,
            "final_ms": stats_ms(x * 1e3 for x in st.finals),
        }
        if truth is not None:
            cmds = [{"start_s": t.start_s, "end_s": t.end_s, "text": t.text}
                    for t in trs if t.accepted and t.text]
            rec["commands"] = command_accuracy(truth.get("utterances", []), cmds, dur)
        out["backends"][a] = rec
    return out


def compare_loop(feed: Path, decoder: str, rounds: int) -> dict[str, Any]:
    """``--fast`` passthrough + overlay (no analysis, no speech) against the raw decoder,
    alternated round by round; with and without the H.264 output file."""
    import tempfile

    from benchmarks.bench_decoders import decode_all
    from copilot.app import RunConfig, run_copilot

    video = feed / "video.mp4" if feed.is_dir() else feed
    raw, loop, loop_mp4 = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench_loop_") as tmp:
        decode_all(video, decoder)  # untimed warm-up of both arms
        _loop_fps(run_copilot, RunConfig, video, decoder, None)
        for r in range(rounds):
            steps: list[tuple[str, Callable[[], float]]] = [
                ("raw", lambda: decode_all(video, decoder)["fps"]),
                ("loop", lambda: _loop_fps(run_copilot, RunConfig, video, decoder, None)),
                ("loop_mp4", lambda: _loop_fps(run_copilot, RunConfig, video, decoder,
                                               Path(tmp) / "out.mp4")),
            ]
            for name, fn in steps[r % 3:] + steps[:r % 3]:
                {"raw": raw, "loop": loop, "loop_mp4": loop_mp4}[name].append(fn())
    return {"decoder": decoder, "rounds": rounds,
            "raw_fps": [round(x, 1) for x in raw],
            "loop_fps": [round(x, 1) for x in loop],
            "loop_mp4_fps": [round(x, 1) for x in loop_mp4],
            "ratio_loop_to_raw": median_ratio(loop, raw),
            "ratio_loop_mp4_to_raw": median_ratio(loop_mp4, raw)}


def _loop_fps(run_copilot: Any, RunConfig: Any, video: Path, decoder: str,  # noqa: N803
              out: Path | None) -> float:
    kw = {"analyse_every": 0} if "analyse_every" in RunConfig.__dataclass_fields__ else {}
    # analyse_every=0: no lockstep hand-off to an analysis stage that does not exist here
    cfg = RunConfig(source=str(video), out=out, mode="fast", decoder=decoder, vision="none",
                    speech="off", report=False, **kw)
    res = run_copilot(cfg)
    return res.frames_out / res.wall_s if res.wall_s else 0.0
