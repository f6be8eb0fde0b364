"""Privacy by default (issue 22): how much real in-body video the anonymiser hides, whether it
hides every out-of-body frame of the generated privacy feeds, and what it costs per frame.

Data (dev chooses, test reports):

- dev: the CholecT50 clips of patient VID47 (2 clips), synthetic cholecystectomy / bowel-survey
  feeds (seeds 5010, 7201), privacy feeds of seeds 0-4 (``copilot.feeds_privacy``) and hard
  probes (a face filling the scope, seeds 0-4, and the portrait photograph): the colour
  threshold is the highest in-body score plus a 0.1 margin, rounded up to 0.05 (erring on
  hiding). The first run used the midpoint between in-body max and out-of-body min (0.55);
  the portrait probe (dev) scored 0.54 under it, so the rule became the one above. That first
  run's numbers on the test clips had been printed (0 hidden), not used;
- test: the other 7 real clips (patients VID43, VID26), privacy feeds of seeds 100-104 and
  close-up probes of seeds 100-104.

Goals: fewer than 1 % of the real clips' in-body frames hidden (all 9 clips, hysteresis
included); every out-of-body frame of the test privacy feeds hidden; the anonymiser's cost
<= 1 ms per 854x480 frame, next to the copilot loop's own time per frame measured side by
side (``copilot run --fast``, passthrough, anonymise on and off, alternated).

Run: ``python -m benchmarks.bench_privacy [--rounds 3]`` -> ``benchmarks/results/privacy.
{json,md}``. Needs ``../shared/data/real/cholect50-clips`` (exits 2 with one line without).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from benchmarks.machine import machine_info, machine_line
from benchmarks.paths import results_dir
from copilot import privacy
from copilot.privacy import Anonymiser
from copilot.stats import percentile

RESULTS = results_dir()
CLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "cholect50-clips"
DEV_PATIENTS = ("VID47",)
DEV_SEEDS, TEST_SEEDS = range(5), range(100, 105)
MARGIN = 0.1  # threshold = dev in-body maximum + this (rounded up to 0.05)


def patient(clip: Path) -> str:
    """The CholecT50 video a clip shows: VIDa for suffix a, VIDb for suffix b."""
    parts = clip.stem.split("_")
    return parts[1] if parts[-1] == "a" else parts[4]


def frames_of(path: Path):
    """RGB frames of a video (PyAV)."""
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            yield f.to_ndarray(format="rgb24")


def scan(path: Path, fps: float) -> tuple[list[float], list[bool], list[bool]]:
    """(colour scores (nan where no field of view), own verdicts, hidden with hysteresis)."""
    an = Anonymiser()
    scores, own, hidden = [], [], []
    for i, rgb in enumerate(frames_of(path)):
        c = an.check(rgb.copy())
        scores.append(c.score if c.reason != privacy.REASON_NO_FOV else float("nan"))
        own.append(c.outside)
        an.process(i, i / fps, rgb)
        hidden.append(an.is_hidden(i))
    return scores, own, hidden


def real_clips() -> dict[str, dict]:
    out = {}
    for clip in sorted(CLIPS.glob("*.mp4")):
        scores, own, hidden = scan(clip, 25.0)
        out[clip.name] = {"patient": patient(clip), "set": "dev" if patient(clip)
                          in DEV_PATIENTS else "test", "frames": len(hidden),
                          "hidden": int(sum(hidden)), "own_out": int(sum(own)),
                          "score_max": round(float(np.nanmax(scores)), 4),
                          # frames a fresh vision verdict could hide (colour >= its bar)
                          "vision_could_hide": int(np.sum(np.nan_to_num(scores, nan=1.0)
                                                          >= privacy.VISION_CONFIRM)),
                          "score_p99": round(percentile(scores, 99, method="nan_linear"), 4)}
        print(f"{clip.name}: {out[clip.name]}", flush=True)
    return out


def synthetic_in_body(tmp: Path) -> dict[str, float]:
    from copilot.feeds import make_feed

    out = {}
    for scen, seed in (("cholecystectomy", 5010), ("bowel-survey", 7201)):
        p = make_feed(tmp / f"{scen}{seed}", scen, 20.0, seed, size=(320, 240), fps=10,
                      audio=False)
        scores, _, hidden = scan(p / "video.mp4", 10.0)
        out[f"{scen}-{seed}"] = {"score_max": round(float(np.nanmax(scores)), 4),
                                 "hidden": int(sum(hidden)), "frames": len(hidden)}
    return out


def privacy_feeds(tmp: Path, seeds: range) -> dict[str, dict]:
    from copilot.feeds_privacy import make_privacy_feed

    out = {}
    for seed in seeds:
        p = make_privacy_feed(tmp / f"p{seed}", 12.0, seed)
        truth = json.loads((p / "truth.json").read_text())
        want = set(truth["hidden_frames"])
        scores, _, hidden = scan(p / "video.mp4", truth["fps"])
        out_scores = [s for i, s in enumerate(scores) if i in want and s == s]
        in_scores = [s for i, s in enumerate(scores) if i not in want]
        out[str(seed)] = {
            "out_frames": len(want), "out_hidden": sum(hidden[i] for i in want),
            "in_frames": len(scores) - len(want),
            "in_hidden": sum(h for i, h in enumerate(hidden) if i not in want),
            "out_score_min": round(min(out_scores), 4), "in_score_max": round(max(in_scores), 4),
            "spans": len(truth["hidden"])}
        print(f"privacy feed {seed}: {out[str(seed)]}", flush=True)
    return out


def hard_probes(seeds: range, portrait: bool) -> list[float]:
    """Colour scores of close-up faces filling the scope (``closeup_probe``; + the portrait)."""
    from copilot.feeds_privacy import _portrait, closeup_probe

    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        out.append(Anonymiser().check(closeup_probe(428, 240, rng)).score)
    if portrait:
        out.append(Anonymiser().check(closeup_probe(428, 240, None, _portrait())).score)
    return [round(x, 4) for x in out]


def per_frame_cost(clip: Path, n: int = 400) -> dict[str, float]:
    """ms per 854x480 frame: the anonymiser's ``process`` (check + border) on real frames,
    and the grey frame handed out for a hidden one."""
    frames = [f for _, f in zip(range(n), frames_of(clip), strict=False)]
    an = Anonymiser()
    wall, cpu = [], []
    for rep in range(3):
        for i, f in enumerate(frames):
            g = f.copy()
            c0, t0 = time.thread_time(), time.perf_counter()
            an.process(rep * n + i, (rep * n + i) / 25.0, g)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
    h, w = frames[0].shape[:2]
    c0 = time.thread_time()
    for _ in range(300):
        privacy.hidden_frame(w, h)
    grey = (time.thread_time() - c0) / 300
    return {"size": f"{w}x{h}", "frames": len(cpu),
            "process_cpu_mean_ms": round(statistics.fmean(cpu) * 1e3, 4),
            "process_wall_p50_ms": round(statistics.median(wall) * 1e3, 4),
            "process_wall_mean_ms": round(statistics.fmean(wall) * 1e3, 4),
            "process_wall_p99_ms": round(percentile(wall, 99) * 1e3, 4),
            "hidden_frame_cpu_ms": round(grey * 1e3, 4)}


def loop_side_by_side(tmp: Path, rounds: int) -> dict[str, float]:
    """``copilot run --fast`` passthrough on a 854x480 synthetic feed (10 s, 25 fps),
    anonymise on / off alternated: wall ms per frame of each."""
    from copilot.app import RunConfig, run_copilot
    from copilot.feeds import make_feed

    p = make_feed(tmp / "loop", "cholecystectomy", 10.0, 9001, size=(854, 480), fps=25,
                  audio=False, preset="veryfast")
    ms: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds):
        for anon in (True, False):
            c0 = time.process_time()
            res = run_copilot(RunConfig(source=str(p), vision="none", speech="off",
                                        report=False, anonymise=anon))
            n = max(1, res.frames_out)
            ms[anon].append(res.wall_s / n * 1e3)
            cpu[anon].append((time.process_time() - c0) / n * 1e3)
    med = {k: statistics.median(v) for k, v in ms.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    return {"frames": n, "rounds": rounds,
            "wall_ms_per_frame_anonymise": round(med[True], 3),
            "wall_ms_per_frame_plain": round(med[False], 3),
            "cpu_ms_per_frame_anonymise": round(cmed[True], 3),
            "cpu_ms_per_frame_plain": round(cmed[False], 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)
    if not CLIPS.is_dir() or not any(CLIPS.glob("*.mp4")):
        print(f"error: the real clips are missing ({CLIPS})", file=sys.stderr)
        return 2
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        real = real_clips()
        syn = synthetic_in_body(tmp)
        dev_feeds = privacy_feeds(tmp, DEV_SEEDS)
        test_feeds = privacy_feeds(tmp, TEST_SEEDS)
        dev_in = max([r["score_max"] for r in real.values() if r["set"] == "dev"]
                     + [s["score_max"] for s in syn.values()]
                     + [f["in_score_max"] for f in dev_feeds.values()])
        dev_out = min(f["out_score_min"] for f in dev_feeds.values())
        probes_dev = hard_probes(DEV_SEEDS, portrait=True)
        probes_test = hard_probes(TEST_SEEDS, portrait=False)
        # erring on hiding: the dev in-body maximum plus a 0.1 margin, rounded up to 0.05
        chosen = float(np.ceil((dev_in + MARGIN) / 0.05 - 1e-9) * 0.05)
        cost = per_frame_cost(sorted(CLIPS.glob("*.mp4"))[0])
        loop = loop_side_by_side(tmp, a.rounds)
    load1 = os.getloadavg()
    n_all = sum(r["frames"] for r in real.values())
    h_all = sum(r["hidden"] for r in real.values())
    test = [r for r in real.values() if r["set"] == "test"]
    n_test, h_test = sum(r["frames"] for r in test), sum(r["hidden"] for r in test)
    out_n = sum(f["out_frames"] for f in test_feeds.values())
    out_h = sum(f["out_hidden"] for f in test_feeds.values())
    in_n = sum(f["in_frames"] for f in test_feeds.values())
    in_h = sum(f["in_hidden"] for f in test_feeds.values())
    tail = in_h / max(1, sum(f["spans"] for f in test_feeds.values()))
    frac_all = h_all / n_all
    ratio = cost["process_cpu_mean_ms"] / loop["cpu_ms_per_frame_plain"]
    goals = [
        {"issue": 22, "name": "real in-body frames hidden (9 CholecT50 clips)",
         "target": "< 0.01", "value": round(frac_all, 5), "pass": frac_all < 0.01,
         "note": f"{h_all} of {n_all} frames; test clips only (7, patients VID43/VID26): "
                 f"{h_test} of {n_test} ({h_test / n_test:.4f})"},
        {"issue": 22, "name": "out-of-body frames hidden (test privacy feeds)",
         "target": ">= 1.0", "value": round(out_h / out_n, 4), "pass": out_h == out_n,
         "note": f"{out_h} of {out_n} frames, seeds 100-104 (OR scene with faces, white "
                 f"frame, hand-held room view); in-body frames hidden {in_h} of {in_n} "
                 f"(hysteresis tails, {tail:.1f} frames per span)"},
        {"issue": 22, "name": "anonymiser CPU ms per 854x480 frame", "target": "<= 1.0",
         "value": cost["process_cpu_mean_ms"], "pass": cost["process_cpu_mean_ms"] <= 1.0,
         "note": f"{ratio:.3f} of the loop's own {loop['cpu_ms_per_frame_plain']} CPU ms per "
                 f"frame (copilot run --fast passthrough, all threads, alternated in this run); "
                 f"loop with / without: {loop['cpu_ms_per_frame_anonymise']} / "
                 f"{loop['cpu_ms_per_frame_plain']} CPU ms, {loop['wall_ms_per_frame_anonymise']}"
                 f" / {loop['wall_ms_per_frame_plain']} wall ms; wall p50 of the call "
                 f"{cost['process_wall_p50_ms']} ms (mean {cost['process_wall_mean_ms']}: "
                 f"a loaded machine preempts)"},
    ]
    result = {
        "command": "python -m benchmarks.bench_privacy " + " ".join(argv or sys.argv[1:]),
        "machine": machine_info(), "loadavg_before": load0, "loadavg_after": load1,
        "dev": {"real_patients": list(DEV_PATIENTS), "privacy_seeds": list(DEV_SEEDS),
                "synthetic": list(syn)},
        "test": {"real_patients": sorted({r["patient"] for r in test}),
                 "privacy_seeds": list(TEST_SEEDS)},
        "threshold": {"dev_in_body_max": dev_in, "dev_out_of_body_min": dev_out,
                      "rule": f"dev in-body max + {MARGIN}, rounded up to 0.05",
                      "chosen": round(chosen, 2), "in_code": privacy.DEFAULT_THRESHOLD,
                      "vision_confirm_in_code": privacy.VISION_CONFIRM,
                      "vision_confirm_rule": "dev in-body max rounded up to 0.05"},
        "real_clips": real, "synthetic_in_body": syn, "privacy_feeds_dev": dev_feeds,
        "privacy_feeds_test": test_feeds, "cost": cost, "loop": loop, "goals": goals,
        "hard_probes": {"what": "one face filling the scope (procedural; dev also the "
                                "portrait photograph), colour score alone",
                        "dev": probes_dev, "test": probes_test,
                        "test_hidden": sum(x >= privacy.DEFAULT_THRESHOLD for x in probes_test)},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "privacy.json").write_text(json.dumps(result, indent=2))
    md = [
        "# Privacy by default (issue 22)", "",
        f"Command: `{result['command'].strip()}`  ",
        f"Machine: {machine_line(result['machine'])}; load average before {load0[0]:.1f}, "
        f"after {load1[0]:.1f}", "",
        "Dev (threshold chosen): real clips of patient VID47 (2), synthetic feeds "
        f"{', '.join(syn)}, privacy feeds seeds 0-4, close-up probes 0-4 and the portrait. "
        "Test: the 7 other real clips (VID43, VID26), privacy feeds and close-up probes of "
        "seeds 100-104. The real clips are scanned by the anonymiser alone (colour and field "
        "of view); a fresh vision verdict can hide only frames scoring >= "
        f"{privacy.VISION_CONFIRM}: {sum(r['vision_could_hide'] for r in real.values())} "
        "real frames do.", "",
        f"Colour threshold: dev in-body max {dev_in} + {MARGIN} margin (erring on hiding) = "
        f"{chosen:.2f}; dev out-of-body min {dev_out}; the code uses "
        f"{privacy.DEFAULT_THRESHOLD}. A fresh vision verdict of "
        f"'outside' hides a frame whose score is >= {privacy.VISION_CONFIRM} (the dev in-body "
        "max rounded up to 0.05).", "",
        "| goal | target | value | pass | note |", "|---|---|---|---|---|",
        *[f"| {g['name']} | {g['target']} | {g['value']} | {g['pass']} | {g['note']} |"
          for g in goals], "",
        "| real clip | patient | set | frames | hidden | score max |", "|---|---|---|---|---|---|",
        *[f"| {k} | {r['patient']} | {r['set']} | {r['frames']} | {r['hidden']} | "
          f"{r['score_max']} |" for k, r in real.items()], "",
        f"Hard probes (a face filling the scope; colour alone): dev scores {probes_dev}; test "
        f"{probes_test}: {sum(x >= privacy.DEFAULT_THRESHOLD for x in probes_test)} of "
        f"{len(probes_test)} hidden by colour alone (a face scoring under the threshold needs "
        "the vision's verdict or the hysteresis of the room views around it).", "",
        f"Per-frame cost ({cost['size']}, {cost['frames']} calls on real frames): CPU mean "
        f"{cost['process_cpu_mean_ms']} ms; wall p50 {cost['process_wall_p50_ms']}, mean "
        f"{cost['process_wall_mean_ms']}, p99 {cost['process_wall_p99_ms']} ms (preemption "
        f"on a loaded machine); a hidden frame's grey copy {cost['hidden_frame_cpu_ms']} CPU "
        "ms. Loop side by side: " + json.dumps(loop), "",
    ]
    (RESULTS / "privacy.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0 if all(g["pass"] for g in goals) else 1


if __name__ == "__main__":
    raise SystemExit(main())
