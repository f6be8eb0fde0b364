"""The report: ``report.json`` (schema-checked), ``report.md``, goals and ratios."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.copilot_bench.config import BenchConfig
from copilot.errors import CopilotError
from copilot.stats import stats_ms

SCHEMA_VERSION = 1
SCHEMA_PATH = (Path(__file__).resolve().parents[2] / "copilot" / "schemas"
               / "bench_report.schema.json")

# ----------------------------------------------------------------------------- report
def _pool(feeds: list[dict], variant: str) -> dict[str, list[float]]:
    pooled: dict[str, list[float]] = defaultdict(list)
    for f in feeds:
        for r in f["runs"]:
            if r["variant"] == variant and r.get("ok"):
                for k, v in r.get("samples_ms", {}).items():
                    pooled[k].extend(v)
    return pooled


def _mean(xs: Iterable[float | None]) -> float | None:
    v = [x for x in xs if x is not None]
    return round(float(np.mean(v)), 4) if v else None


VOICE_PATHS = ("tts_first_audio", "event_to_alert_audio", "speech_end_to_answer_audio")


def _voice_lines(report: dict[str, Any]) -> list[str]:
    """Markdown: the voice that spoke in each variant and its audio paths (p95, ms)."""
    spoke: dict[str, set[str]] = defaultdict(set)
    for f in report["feeds"]:
        for r in f["runs"]:
            if r.get("ok") and r.get("voice_backend"):
                spoke[r["variant"]].add(r["voice_backend"])
    L = ["", "## The copilot's voice per variant (p95 ms over all feeds and repeats)", "",
         "| variant | voice that spoke | " + " | ".join(VOICE_PATHS) + " |",
         "| --- " * (len(VOICE_PATHS) + 2) + "|"]
    for v in report["variants"]:
        lat = report["latency"].get(v["key"], {})
        cells = [_f((lat.get(p) or {}).get("p95")) for p in VOICE_PATHS]
        L.append(f"| {v['key']} | {', '.join(sorted(spoke.get(v['key'], ()))) or '-'} | "
                 + " | ".join(cells) + " |")
    return L


def build_report(cfg: BenchConfig, feeds: list[dict], machine: dict, executor: str,
                 wall_s: float) -> dict[str, Any]:
    """The report.json object (see docs/bench_report.md)."""
    variants = cfg.variants()
    base = variants[0].key
    latency = {}
    for v in variants:
        pooled = _pool(feeds, v.key)
        latency[v.key] = {k: stats_ms(x) for k, x in sorted(pooled.items())}
    runs_ok = [r for f in feeds for r in f["runs"] if r.get("ok")]
    base_runs = [r for r in runs_ok if r["variant"] == base]
    throughput = {
        "fps_median": round(statistics.median([r["throughput_fps"] for r in base_runs]), 2)
        if base_runs else None,
        "speed_x_realtime_median": round(statistics.median(
            [r["speed_x_realtime"] for r in base_runs if "speed_x_realtime" in r]), 3)
        if any("speed_x_realtime" in r for r in base_runs) else None,
        "frames_in": sum(r["frames_in"] for r in base_runs),
        "frames_out": sum(r["frames_out"] for r in base_runs),
        "dropped": sum(r["dropped"] for r in base_runs),
        "cpu_percent_median": round(statistics.median([r["cpu_percent"] for r in base_runs]),
                                    1) if base_runs else None,
        "peak_rss_mb_max": max((r["peak_rss_mb"] for r in base_runs), default=None),
    }
    # accuracy (baseline runs, first repeat, mean over feeds) + component accuracy
    acc_rows = []
    for f in feeds:
        row: dict[str, Any] = {"feed": f["name"], "scenario": f["scenario"]}
        r0 = next((r for r in f["runs"] if r["variant"] == base and r.get("ok")), None)
        a = (r0 or {}).get("accuracy") or {}
        row["phase_accuracy"] = a.get("phase_accuracy")
        row["bowel_segment_accuracy"] = a.get("bowel_segment_accuracy")
        row["command_accuracy"] = (a.get("commands") or {}).get("accuracy")
        row["wake_false_accepts_per_hour"] = (a.get("commands") or {}).get(
            "false_accepts_per_hour")
        row["alert_precision"] = (a.get("alerts") or {}).get("precision")
        row["alert_recall"] = (a.get("alerts") or {}).get("recall")
        media_lat = (a.get("alerts") or {}).get("media_latency_s")
        row["alert_latency_p50_s"] = round(media_lat["p50"] / 1000, 3) if media_lat else None
        row["answer_accuracy"] = (a.get("answers") or {}).get("accuracy")
        row["chatter_triggered"] = a.get("chatter_triggered")
        vis = ((f.get("components") or {}).get("vision") or {}).get("backends", {})
        vb = vis.get(cfg.backends[0]) or {}
        va = vb.get("accuracy") or {}
        row["segmentation_miou"] = va.get("anatomy_miou")
        row["vision_phase_accuracy"] = va.get("phase_acc")
        row["vision_bowel_segment_accuracy"] = va.get("bowel_segment_acc")
        row["cvs_macro_f1"] = va.get("cvs_macro_f1")
        asr = ((f.get("components") or {}).get("asr") or {}).get("backends", {})
        ab = (asr.get(cfg.asr[0]) or {}).get("commands") or {}
        row["asr_command_accuracy"] = ab.get("accuracy")
        row["asr_false_accepts_per_hour"] = ab.get("false_accepts_per_hour")
        acc_rows.append(row)
    keys = [k for k in (acc_rows[0] if acc_rows else {}) if k not in ("feed", "scenario")]
    accuracy = {"per_feed": acc_rows,
                "mean": {k: _mean(r.get(k) for r in acc_rows) for k in keys}}
    ratios = comparison_ratios(feeds, cfg)
    report = {
        "schema_version": SCHEMA_VERSION,
        "tool": "copilot bench",
        "command": cfg.command or "copilot bench " + " ".join(map(str, cfg.feeds)),
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_s": round(wall_s, 2),
        "executor": executor,
        "machine": machine,
        "config": {"feeds": [str(f) for f in cfg.feeds], "backends": cfg.backends,
                   "decoders": cfg.decoders, "asr": cfg.asr, "voices": cfg.voices,
                   "repeat": cfg.repeat,
                   "mode": cfg.mode, "max_seconds": cfg.max_seconds,
                   "components": cfg.components, "vision_frames": cfg.vision_frames,
                   "decoder_rounds": cfg.decoder_rounds},
        "variants": [{"key": v.key, "backend": v.backend, "decoder": v.decoder, "asr": v.asr,
                      "voice": v.voice, "baseline": v.key == base} for v in variants],
        "latency": latency,
        "throughput": throughput,
        "accuracy": accuracy,
        "ratios": ratios,
        "feeds": [_strip_samples(f) for f in feeds],
    }
    report["goals"] = goals(report, cfg)
    return report


def _strip_samples(f: dict) -> dict:
    g = dict(f)
    g["runs"] = [{k: v for k, v in r.items() if k != "samples_ms"} for r in f["runs"]]
    return g


def comparison_ratios(feeds: list[dict], cfg: BenchConfig) -> list[dict[str, Any]]:
    """Every comparison as a ratio: end-to-end (variant vs baseline, per repeat) and the
    side-by-side components (vision backends per frame, decoders and loop per round)."""
    rows: list[dict[str, Any]] = []
    grouped: dict[tuple, list[float]] = defaultdict(list)
    for f in feeds:
        for r in f.get("ratios", []):
            grouped[("run", r["axis"], r["a"], r["b"], r["metric"])].append(r["ratio"])
        comp = f.get("components") or {}
        vis = comp.get("vision") or {}
        vb = vis.get("backends", {})
        for b, rec in vb.items():
            for key in ("ratio_total_to_", "ratio_inference_to_"):
                k = key + str(vis.get("baseline"))
                if rec.get(k) is not None:
                    grouped[("component", "backend", b, vis["baseline"],
                             key.removeprefix("ratio_").removesuffix("_to_") + "_ms")
                            ].append(rec[k])
            if rec.get("stage_over_inference") is not None:
                grouped[("component", "backend", b, b + " session.run",
                         "stage_over_inference")].append(rec["stage_over_inference"])
        dec = comp.get("decoders") or {}
        for d, rec in (dec.get("decoders") or {}).items():
            k = "ratio_to_" + str(dec.get("baseline"))
            if rec.get(k) is not None:
                grouped[("component", "decoder", d, dec["baseline"], "fps")].append(rec[k])
        loop = comp.get("loop") or {}
        for key, a in (("ratio_loop_to_raw", "fast passthrough+overlay"),
                       ("ratio_loop_mp4_to_raw", "fast passthrough+overlay+H.264 out")):
            if loop.get(key) is not None:
                grouped[("component", "loop", a, f"raw {loop['decoder']} decode", "fps")
                        ].append(loop[key])
    for (kind, axis, a, b, metric), vals in grouped.items():
        rows.append({"kind": kind, "axis": axis, "a": a, "b": b, "metric": metric,
                     "ratio": round(float(statistics.median(vals)), 4),
                     "per_feed": [round(x, 4) for x in vals]})
    return rows


def goals(report: dict[str, Any], cfg: BenchConfig) -> list[dict[str, Any]]:
    """The ratio / latency goals of the issues this run can judge, with pass / fail."""
    base = report["variants"][0]["key"]
    lat = report["latency"].get(base, {})
    out: list[dict[str, Any]] = []

    def add(issue: int, name: str, value: float | None, target: str, ok: bool | None,
            unit: str = "") -> None:
        out.append({"issue": issue, "goal": name, "value": value, "unit": unit,
                    "target": target, "pass": ok})

    fps_src = [f["fps"] for f in report["feeds"] if f.get("fps")]
    frame_ms = 1000 / min(fps_src) if fps_src else 1000 / 30
    if cfg.mode == "realtime" and lat.get("overlay"):
        v = lat["overlay"]["p99"]
        add(2, "realtime overlay added latency p99 (overlay.compose)", v,
            f"<= {frame_ms:.1f} ms (one frame)",
            v <= frame_ms, "ms")
    for r in report["ratios"]:
        if r["axis"] == "loop" and r["a"] == "fast passthrough+overlay":
            add(2, "fast passthrough+overlay / raw decoder fps", r["ratio"], ">= 0.9",
                r["ratio"] >= 0.9)
        if r["axis"] == "backend" and r["metric"] == "total_ms" and r["a"] == "onnxruntime" \
                and r["b"] == "torch":
            add(4, "ONNX Runtime / PyTorch eager latency", r["ratio"], "<= 0.5",
                r["ratio"] <= 0.5)
        if r["axis"] == "backend" and r["metric"] == "total_ms" and r["a"] == "torch" \
                and r["b"] == "onnxruntime":
            inv = round(1 / r["ratio"], 4) if r["ratio"] else None
            add(4, "ONNX Runtime / PyTorch eager latency", inv, "<= 0.5",
                inv is not None and inv <= 0.5)
        if r["metric"] == "stage_over_inference" and r["a"] == "onnxruntime":
            add(4, "vision stage time / bare session.run", r["ratio"], "<= 1.15",
                r["ratio"] <= 1.15)
    if lat.get("speech_end_to_answer_audio"):
        v = lat["speech_end_to_answer_audio"]["p95"]
        wait = (lat.get("end_of_speech_wait") or {}).get("p95")
        add(7, "last spoken sample -> answer first audio p95 (end-of-speech wait included"
            + (f"; the wait alone p95 {wait:.0f} ms)" if wait is not None else ")"), v,
            "<= 1000 ms", v <= 1000, "ms")
    if lat.get("event_to_alert_audio"):
        v = lat["event_to_alert_audio"]["p95"]
        add(7, "event frame -> alert first audio p95", v, "<= 500 ms", v <= 500, "ms")
    if lat.get("speech_end_to_transcript"):
        v = lat["speech_end_to_transcript"]["p95"]
        add(5, "speech end -> final transcript p95 (app)", v, "<= 300 ms", v <= 300, "ms")
    m = report["accuracy"]["mean"]
    if m.get("alert_recall") is not None:
        add(7, "scripted events alerted (recall)", m["alert_recall"], "= 1.0",
            m["alert_recall"] >= 1.0)
    if m.get("alert_precision") is not None:
        v = round(1 - m["alert_precision"], 4)
        add(7, "alerts where nothing was scripted (fraction)", v, "<= 0.10", v <= 0.10)
    if m.get("answer_accuracy") is not None:
        add(7, "answers with the expected facts", m["answer_accuracy"], "= 1.0",
            m["answer_accuracy"] >= 1.0)
    return out


def write_report(report: dict[str, Any], out: Path) -> None:
    """report.json and report.md."""
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (out / "report.md").write_text(markdown(report))


def _f(x: Any, nd: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}".rstrip("0").rstrip(".") if abs(x) < 1e6 else f"{x:.3g}"
    return str(x)


def markdown(report: dict[str, Any]) -> str:
    """report.md: headline tables, ratios, accuracy, goals, per-feed notes, plots."""
    from benchmarks.machine import machine_line

    base = report["variants"][0]["key"]
    L = ["# copilot bench report", "",
         f"Command: `{report['command']}`  ",
         "Machine: " + machine_line(report["machine"]) + "  ",
         f"Load average at the end {report.get('load_avg_at_end')} (a shared machine: "
         "absolute times are inflated by other work; ratios are paired).  ",
         f"Created {report['created_utc']}, {report['wall_s']} s, executor "
         f"{report['executor']}, mode {report['config']['mode']}, repeat "
         f"{report['config']['repeat']}.", "",
         "Feeds: " + ", ".join(f"{f['name']} ({f['scenario'] or 'video'}, "
                               f"{f['duration_s']} s, {f['size']})" for f in report["feeds"]),
         "", "## Latency (ms, baseline variant " + f"`{base}`, all feeds and repeats)", "",
         "| path | n | min | p50 | p95 | p99 | max |", "| --- " * 7 + "|"]
    for k, s in report["latency"].get(base, {}).items():
        if s:
            cells = [k, s["n"], *(_f(s[x]) for x in ("min", "p50", "p95", "p99", "max"))]
            L.append("| " + " | ".join(map(str, cells)) + " |")
    t = report["throughput"]
    L += ["", f"Throughput: {_f(t['fps_median'])} frames/s median "
          f"({_f(t['speed_x_realtime_median'])}x real time), {t['frames_out']} of "
          f"{t['frames_in']} frames out, {t['dropped']} dropped, CPU "
          f"{_f(t['cpu_percent_median'])} % (100 = one core), peak RSS "
          f"{_f(t['peak_rss_mb_max'])} MiB.", "",
          "## Ratios (median of paired per-round / per-frame ratios)", "",
          "| kind | axis | a | b | metric | a / b | per feed |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["ratios"]:
        L.append(f"| {r['kind']} | {r['axis']} | {r['a']} | {r['b']} | {r['metric']} | "
                 f"{_f(r['ratio'])} | {', '.join(_f(x) for x in r['per_feed'])} |")
    L += _voice_lines(report)
    acc = report["accuracy"]
    if acc["per_feed"]:
        keys = list(acc["mean"])
        L += ["", "## Accuracy against truth.json", "",
              "| feed | " + " | ".join(keys) + " |", "| --- " * (len(keys) + 1) + "|"]
        for row in acc["per_feed"]:
            L.append(f"| {row['feed']} | " + " | ".join(_f(row.get(k)) for k in keys) + " |")
        L.append("| **mean** | " + " | ".join(_f(acc["mean"][k]) for k in keys) + " |")
    if report["goals"]:
        L += ["", "## Goals", "", "| issue | goal | measured | target | pass |",
              "| --- | --- | --- | --- | --- |"]
        for g in report["goals"]:
            L.append(f"| {g['issue']} | {g['goal']} | {_f(g['value'])} {g['unit']} | "
                     f"{g['target']} | {'yes' if g['pass'] else 'NO'} |")
    L += ["", "## Runs", "", "| feed | variant | repeat | ok | frames in/out | dropped | fps | "
          "CPU % | peak RSS MiB | error |", "| --- " * 10 + "|"]
    for f in report["feeds"]:
        for r in f["runs"]:
            L.append(f"| {f['name']} | {r['variant']} | {r['repeat']} | "
                     f"{'yes' if r.get('ok') else 'NO'} | {r.get('frames_in', '-')}/"
                     f"{r.get('frames_out', '-')} | {r.get('dropped', '-')} | "
                     f"{_f(r.get('throughput_fps'))} | {_f(r.get('cpu_percent'))} | "
                     f"{_f(r.get('peak_rss_mb'))} | {(r.get('error') or '')[:80]} |")
    skipped = [(f["name"], kind, name, rec.get("reason")) for f in report["feeds"]
               for kind in ("vision", "asr")
               for name, rec in (((f.get("components") or {}).get(kind) or {})
                                 .get("backends") or {}).items() if not rec.get("available")]
    if skipped:
        L += ["", "Not available here: " + "; ".join(
            f"{k} {n} ({why})" for _, k, n, why in dict.fromkeys(skipped))]
    if report.get("plots"):
        L += ["", "## Plots", ""] + [f"![{k}]({v})" for k, v in report["plots"].items()]
    return "\n".join(L) + "\n"


def validate_report(report: dict[str, Any]) -> None:
    """Validate against copilot/schemas/bench_report.schema.json (CopilotError if not)."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    try:
        jsonschema.validate(report, schema)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(x) for x in exc.absolute_path)
        raise CopilotError(f"report.json invalid at {path or '(root)'}: {exc.message}"
                           ) from None
