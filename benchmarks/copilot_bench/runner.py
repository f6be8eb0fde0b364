"""Running the app: one ``run_copilot`` per variant and repeat, one feed's results and ratios."""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.copilot_bench.comparisons import (
    backend_unavailable,
    compare_asr,
    compare_decoders,
    compare_loop,
    compare_vision,
)
from benchmarks.copilot_bench.config import BenchConfig, Variant
from benchmarks.copilot_bench.scoring import (
    _alert_time,
    _rec_span,
    scripted_events,
    session_accuracy,
)
from benchmarks.copilot_bench.traces import (
    ResourceSampler,
    median_ratio,
    read_jsonl,
    trace_latencies,
)
from copilot.stats import stats_ms


# ----------------------------------------------------------------------------- one app run
def run_app(feed: Path, variant: Variant, run_dir: Path, mode: str,
            max_seconds: float | None, asr_model_dir: Path | None,
            truth: dict | None) -> dict[str, Any]:
    """One ``run_copilot`` on ``feed`` with ``variant``; returns measurements and accuracy."""
    from copilot.app import RunConfig, run_copilot

    run_dir.mkdir(parents=True, exist_ok=True)
    trace_path = run_dir / "trace.jsonl"
    cfg = RunConfig(source=str(feed), out=run_dir, mode=mode, decoder=variant.decoder,
                    vision="model", runtime=variant.backend, asr=variant.asr,
                    voice=variant.voice,
                    asr_model_dir=asr_model_dir, trace=trace_path, faults=[],
                    max_seconds=max_seconds)
    rec: dict[str, Any] = {"variant": variant.key, "mode": mode, "dir": str(run_dir)}
    why = backend_unavailable(variant.backend)
    if why is not None:
        rec.update(ok=False, available=False, error=f"{variant.backend} not available: {why}")
        return rec
    try:
        with ResourceSampler() as rs:
            res = run_copilot(cfg)
    except Exception as exc:  # noqa: BLE001 - an unavailable backend is a result, not a crash
        rec.update(ok=False, error=f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        return rec
    rec.update(rs.as_dict())
    rec.update(ok=res.exit_code == 0, error=res.error, exit_code=res.exit_code,
               frames_in=res.frames_in, frames_out=res.frames_out, dropped=res.dropped,
               wall_s=round(res.wall_s, 3),
               throughput_fps=round(res.frames_out / res.wall_s, 2) if res.wall_s else 0.0,
               alerts=res.alerts, answers=res.answers, asr_backend=res.asr_backend,
               voice_backend=res.voice_backend, voice_backend_reason=res.voice_backend_reason,
               outputs={k: str(v) for k, v in res.outputs.items()},
               health={k: {kk: v.get(kk) for kk in ("state", "errors", "hangs", "restarts",
                                                   "processed")}
                       for k, v in res.health.items()})
    dead = [f"{k}: {v.get('last_error')}" for k, v in res.health.items()
            if v.get("errors") and not v.get("processed")]
    if dead:  # a stage that never worked (e.g. an ASR backend without its model)
        rec.update(ok=False, available=False, error="stage never ran: " + "; ".join(dead)[:300])
    src_fps = float(truth["fps"]) if truth else None
    if src_fps and res.wall_s:
        rec["speed_x_realtime"] = round(res.frames_out / src_fps / res.wall_s, 3)
    trace = read_jsonl(trace_path)
    samples, detail = trace_latencies(trace, truth)
    rec["samples_ms"] = {k: [round(x, 3) for x in v] for k, v in samples.items()}
    rec["latency"] = {k: stats_ms(v) for k, v in samples.items()}
    rec["trace_detail"] = detail
    session = read_jsonl(run_dir / "session.jsonl")
    rec["session_records"] = len(session)
    if truth is not None:
        rec["accuracy"] = session_accuracy(session, truth) if session else None
        rec["timeline"] = {
            "alerts": [{"t": _alert_time(a, float(truth["fps"])), "rule": a.get("rule")}
                       for a in session if a.get("type") == "alert"],
            "answers": [{"t": (_rec_span(a) or (None,))[0], "text": str(a.get("text"))[:80]}
                        for a in session if a.get("type") == "answer"],
            "utterances_heard": [
                {"t0": u.get("start_s"), "t1": u.get("end_s"), "accepted": u.get("accepted")}
                for u in trace if u.get("stage") == "speech" and u.get("name") == "utterance"],
        }
    return rec


# ----------------------------------------------------------------------------- one feed
def bench_feed(task: dict[str, Any]) -> dict[str, Any]:
    """All runs and comparisons of one feed (picklable in and out: a pool / Ray task)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    feed = Path(task["feed"])
    out_dir = Path(task["out_dir"])
    variants = [Variant(**v) for v in task["variants"]]
    truth = None
    if feed.is_dir() and (feed / "truth.json").is_file():
        from copilot.feeds import load_truth

        truth = load_truth(feed)
    res: dict[str, Any] = {
        "feed": str(feed), "name": feed.name if feed.is_dir() else feed.stem,
        "scenario": truth.get("scenario") if truth else None,
        "seed": truth.get("seed") if truth else None,
        "duration_s": truth.get("duration_s") if truth else None,
        "fps": truth.get("fps") if truth else None,
        "size": [truth["width"], truth["height"]] if truth else None,
        "truth": truth is not None, "runs": [], "host": os.uname().nodename, "pid": os.getpid(),
    }
    if truth is not None:
        res["scripted_events"] = [{"kind": e["kind"], "time_s": e["time_s"]}
                                  for e in scripted_events(truth)]
        res["utterances"] = [{"start_s": u["start_s"], "end_s": u["end_s"],
                              "addressed": u["addressed"], "text": u["text"]}
                             for u in truth.get("utterances", [])]
    from tqdm import tqdm

    steps = task["repeat"] * len(variants)
    bar = tqdm(total=steps, desc=res["name"], disable=not task.get("progress"), leave=False)
    t_start = time.perf_counter()
    for r in range(task["repeat"]):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for v in order:
            d = out_dir / "runs" / res["name"] / f"{v.key.replace('/', '_')}_r{r}"
            rec = run_app(feed, v, d, task["mode"], task.get("max_seconds"),
                          Path(task["asr_model_dir"]) if task.get("asr_model_dir") else None,
                          truth)
            rec["repeat"] = r
            res["runs"].append(rec)
            bar.update(1)
    bar.close()
    comp: dict[str, Any] = {}
    if task.get("components", True):
        comp["vision"] = compare_vision(feed, truth, task["backends"], task["vision_frames"])
        comp["decoders"] = compare_decoders(feed, task["decoders"], task["decoder_rounds"])
        comp["asr"] = compare_asr(feed, truth, task["asr"],
                                  Path(task["asr_model_dir"]) if task.get("asr_model_dir")
                                  else None)
        if task.get("loop_check", True):
            try:
                comp["loop"] = compare_loop(feed, task["decoders"][0],
                                            task["decoder_rounds"])
            except Exception as exc:  # noqa: BLE001
                comp["loop"] = {"error": f"{type(exc).__name__}: {exc}"}
    res["components"] = comp
    res["wall_s"] = round(time.perf_counter() - t_start, 2)
    res["ratios"] = feed_ratios(res, variants)
    return res


def feed_ratios(res: dict[str, Any], variants: list[Variant]) -> list[dict[str, Any]]:
    """Per-repeat paired ratios of each variant's end-to-end numbers to the baseline's."""
    base = variants[0]
    out = []
    by: dict[tuple[str, int], dict] = {(r["variant"], r["repeat"]): r for r in res["runs"]}
    for v in variants[1:]:
        axis = ("backend" if v.backend != base.backend else
                "decoder" if v.decoder != base.decoder else
                "asr" if v.asr != base.asr else "voice")
        for metric, key in (("throughput_fps", None), ("vision_p50_ms", "vision"),
                            ("decode_p50_ms", "decode"),
                            ("speech_chunk_p50_ms", "speech_chunk")):
            a, b = [], []
            for r in range(max((x["repeat"] for x in res["runs"]), default=-1) + 1):
                ra, rb = by.get((v.key, r)), by.get((base.key, r))
                if not ra or not rb or not ra.get("ok") or not rb.get("ok"):
                    continue
                if key is None:
                    a.append(ra.get(metric))
                    b.append(rb.get(metric))
                else:
                    la, lb = ra["latency"].get(key), rb["latency"].get(key)
                    if la and lb:
                        a.append(la["p50"])
                        b.append(lb["p50"])
            val = median_ratio(a, b)
            if val is not None:
                out.append({"axis": axis, "a": v.key, "b": base.key, "metric": metric,
                            "ratio": val, "pairs": len(a)})
    return out


# ----------------------------------------------------------------------------- many feeds
def _tasks(cfg: BenchConfig) -> list[dict[str, Any]]:
    variants = [asdict(v) for v in cfg.variants()]
    in_process = (cfg.workers or 0) <= 1 and not cfg.ray
    return [{"feed": str(Path(f).resolve()), "out_dir": str(Path(cfg.out).resolve()),
             "variants": variants, "repeat": cfg.repeat, "mode": cfg.mode,
             "max_seconds": cfg.max_seconds,
             "asr_model_dir": str(cfg.asr_model_dir) if cfg.asr_model_dir else None,
             "components": cfg.components, "loop_check": cfg.loop_check,
             "backends": list(cfg.backends), "decoders": list(cfg.decoders),
             "asr": list(cfg.asr), "vision_frames": cfg.vision_frames,
             "decoder_rounds": cfg.decoder_rounds,
             "progress": cfg.progress and in_process} for f in cfg.feeds]
