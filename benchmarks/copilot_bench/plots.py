"""PNG plots of a report (matplotlib Agg)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.copilot_bench.report import _pool
from benchmarks.copilot_bench.traces import FRAME_STAGES


# ----------------------------------------------------------------------------- plots
def make_plots(report: dict[str, Any], out: Path, feeds_raw: list[dict]) -> dict[str, str]:
    """latency_cdf.png, stage_bars.png, timeline.png (matplotlib Agg) from the report and the
    feed results with their latency samples; returns name -> file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = report["variants"][0]["key"]
    pooled = _pool(feeds_raw, base)
    files: dict[str, str] = {}

    # 1. latency CDFs per path (baseline), video paths and speech / alert paths
    groups = {"video path": ("decode", "vision", "overlay", "sink", "frame_to_overlay",
                             "preprocess", "inference", "postprocess"),
              "speech / alerts": ("speech_chunk", "speech_end_to_transcript", "reasoning",
                                  "tts_first_audio", "speech_end_to_answer_audio",
                                  "end_of_speech_wait", "last_sample_to_transcript",
                                  "event_to_alert", "event_to_alert_audio", "brain_findings")}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, (title, keys) in zip(axes, groups.items(), strict=True):
        drawn = 0
        for k in keys:
            xs = pooled.get(k)
            if not xs:
                continue
            a = np.sort(np.asarray(xs))
            ax.plot(np.maximum(a, 1e-3), np.arange(1, a.size + 1) / a.size, label=k)
            drawn += 1
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log)")
        ax.set_ylabel("fraction <= x")
        ax.set_title(f"{title} ({base})")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no samples", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(out / "latency_cdf.png", dpi=90)
    plt.close(fig)
    files["latency_cdf"] = "latency_cdf.png"

    # 2. per-stage stacked bars: mean ms per frame per variant (app) and per vision backend
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    names = [v["key"] for v in report["variants"]]
    bottom = np.zeros(len(names))
    for st in FRAME_STAGES:
        vals = np.array([((report["latency"].get(n) or {}).get(st) or {}).get("mean", 0.0)
                         for n in names])
        ax.bar(range(len(names)), vals, bottom=bottom, label=st)
        bottom += vals
    ax.set_xticks(range(len(names)), [n.replace("/", "\n") for n in names], fontsize=7)
    ax.set_ylabel("mean ms per frame")
    ax.set_title("copilot run: per-stage time per frame")
    ax.legend(fontsize=7)
    ax = axes[1]
    vis: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for f in report["feeds"]:
        for b, rec in (((f.get("components") or {}).get("vision") or {}).get("backends")
                       or {}).items():
            for st in ("preprocess", "inference", "postprocess"):
                s = (rec.get("timing") or {}).get(st)
                if s:
                    vis[b][st].append(s["p50"])
    bnames = list(vis)
    bottom = np.zeros(len(bnames))
    for st in ("preprocess", "inference", "postprocess"):
        vals = np.array([float(np.mean(vis[b][st])) if vis[b][st] else 0.0 for b in bnames])
        ax.bar(range(len(bnames)), vals, bottom=bottom, label=st)
        bottom += vals
    ax.set_xticks(range(len(bnames)), bnames, fontsize=8)
    ax.set_ylabel("median ms per frame")
    ax.set_title("vision backends side by side")
    if bnames:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "stage_bars.png", dpi=90)
    plt.close(fig)
    files["stage_bars"] = "stage_bars.png"

    # 3. timeline: scripted events, utterances, alerts and answers per feed (baseline run)
    feeds = report["feeds"]
    fig, axes = plt.subplots(len(feeds), 1, figsize=(12, 1.9 * len(feeds) + 0.6),
                             squeeze=False)
    for ax, f in zip(axes[:, 0], feeds, strict=True):
        r0 = next((r for r in f["runs"] if r["variant"] == base and r.get("ok")), {})
        tl = r0.get("timeline") or {}
        for u in f.get("utterances", []):
            ax.barh(2, u["end_s"] - u["start_s"], left=u["start_s"], height=0.5,
                    color="tab:blue" if u["addressed"] else "lightgray")
        for u in tl.get("utterances_heard", []):
            if u.get("t0") is not None:
                ax.barh(1.5, (u["t1"] or u["t0"]) - u["t0"], left=u["t0"], height=0.3,
                        color="tab:cyan" if u.get("accepted") else "silver")
        for e in f.get("scripted_events", []):
            ax.plot(e["time_s"], 1, "v", color="tab:red", ms=9)
            ax.annotate(e["kind"], (e["time_s"], 1.15), fontsize=6, ha="center")
        for a in tl.get("alerts", []):
            if a.get("t") is not None:
                ax.plot(a["t"], 0.5, "^", color="tab:orange", ms=9)
        for a in tl.get("answers", []):
            if a.get("t") is not None:
                ax.plot(a["t"], 0.5, "o", color="tab:green", ms=6)
        ax.set_yticks([0.5, 1, 1.5, 2], ["alerts ^ / answers o", "scripted events",
                                         "heard", "utterances"], fontsize=7)
        ax.set_ylim(0.1, 2.5)
        ax.set_xlim(0, f.get("duration_s") or 1)
        ax.set_title(f"{f['name']} ({f['scenario']})", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("media time (s)")
    fig.tight_layout()
    fig.savefig(out / "timeline.png", dpi=90)
    plt.close(fig)
    files["timeline"] = "timeline.png"
    return files
