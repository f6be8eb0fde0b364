"""Decoder speed: decord vs PyAV vs OpenCV on the same 720p and 1080p H.264 files.

Makes one clip per size with the cholecystectomy scene renderer (``vision.synth``: textured
organs, moving camera, instruments, smoke) encoded by PyAV/libx264 (yuv420p, CRF 23,
``veryfast``, the encoder settings of ``vision.writer.Mp4Writer``), then decodes each file
completely to RGB uint8 arrays through ``vision.sources`` (the classes the runtime uses),
round by round: every round runs every (size, decoder) pair once, the decoder order
rotating each round, so machine noise hits all of them alike (this machine is shared).

Reported per size and decoder: frames/s per round and median, CPU-seconds per frame, and
the per-round ratios to PyAV (median over rounds). The recommended default is the fastest
decoder at 720p when it is >= 5 % faster than PyAV at every size and needs no more CPU per
frame; otherwise PyAV (which also opens stream URLs and keeps the frames of a cut file).

Run: ``python -m benchmarks.bench_decoders [--seconds 10] [--rounds 5]``; writes
``benchmarks/results/decoders.{json,md}``.
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

from benchmarks.machine import machine_info, machine_line
from benchmarks.paths import results_dir

RESULTS = results_dir()
DECODERS = ("pyav", "decord", "opencv")
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
REFERENCE = "pyav"
SEED = 4242  # clip content only; never used for accuracy


def make_clip(path: Path, size: tuple[int, int], seconds: float, fps: float = 30.0,
              seed: int = SEED) -> dict:
    """Render a cholecystectomy scene clip to ``path`` (H.264 MP4); returns its description."""
    from vision.synth.cholec import CholecScene, plan_cholecystectomy
    from vision.writer import Mp4Writer

    n = max(1, int(round(seconds * fps)))
    plan = plan_cholecystectomy(n / fps, seed, [])
    scene = CholecScene(plan, size, fps, seed, n)
    t0 = time.perf_counter()
    with Mp4Writer(path, fps, size, crf=23, preset="veryfast") as wr:
        for i in range(n):
            wr.write(scene.render(i).rgb)
    return {"path": str(path), "width": size[0], "height": size[1], "fps": fps, "frames": n,
            "bytes": path.stat().st_size, "kbit_per_s": round(path.stat().st_size * 8 / 1e3
                                                             / (n / fps), 1),
            "make_s": round(time.perf_counter() - t0, 2)}


def decode_all(path: Path, backend: str) -> dict:
    """Decode every frame of ``path`` to RGB with ``backend``; wall and CPU time (s)."""
    from vision.sources import open_source

    t0 = time.perf_counter()
    c0 = time.process_time()
    n = 0
    checksum = 0
    with open_source(path, backend=backend) as src:
        for _i, _t, rgb in src:
            n += 1
            checksum += int(rgb[::97, ::89, 1].sum())  # touch the data, cheap
        truncated = src.truncated
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {"frames": n, "wall_s": wall, "cpu_s": cpu, "fps": n / wall if wall > 0 else 0.0,
            "truncated": truncated, "checksum": checksum}


def run(seconds: float, rounds: int, decoders: tuple[str, ...] = DECODERS,
        sizes: dict[str, tuple[int, int]] = SIZES, workdir: Path | None = None,
        progress: bool = True) -> dict:
    """Make the clips and decode them ``rounds`` times, alternating; returns the record."""
    from tqdm import tqdm

    tmp = tempfile.TemporaryDirectory(prefix="bench_decoders_") if workdir is None else None
    wd = Path(tmp.name) if tmp else Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    try:
        clips = {name: make_clip(wd / f"clip_{name}.mp4", size, seconds)
                 for name, size in sizes.items()}
        for name in sizes:  # one untimed warm-up per pair (imports, page cache)
            for d in decoders:
                decode_all(Path(clips[name]["path"]), d)
        runs: dict[str, dict[str, list[dict]]] = {s: {d: [] for d in decoders} for s in sizes}
        bar = tqdm(total=rounds * len(sizes) * len(decoders), desc="decode", disable=not progress)
        for r in range(rounds):
            order = list(decoders[r % len(decoders):]) + list(decoders[:r % len(decoders)])
            for name in sizes:
                for d in order:
                    res = decode_all(Path(clips[name]["path"]), d)
                    res["round"] = r
                    runs[name][d].append(res)
                    bar.update(1)
        bar.close()
    finally:
        if tmp:
            tmp.cleanup()
    return summarise(clips, runs, decoders)


def summarise(clips: dict, runs: dict[str, dict[str, list[dict]]],
              decoders: tuple[str, ...]) -> dict:
    """Per size / decoder medians and per-round ratios to the reference decoder."""
    out: dict = {"clips": clips, "sizes": {}}
    for name, per in runs.items():
        expected = clips[name]["frames"]
        ref = per.get(REFERENCE)
        sz: dict = {}
        for d, rs in per.items():
            fps = [x["fps"] for x in rs]
            rec = {
                "fps_per_round": [round(x, 1) for x in fps],
                "fps_median": round(statistics.median(fps), 1),
                "fps_min": round(min(fps), 1),
                "fps_max": round(max(fps), 1),
                "cpu_ms_per_frame_median": round(
                    statistics.median(x["cpu_s"] / max(1, x["frames"]) * 1e3 for x in rs), 3),
                "frames": rs[0]["frames"],
                "all_frames": all(x["frames"] == expected for x in rs),
            }
            if ref:
                ratios = [x["fps"] / y["fps"] for x, y in zip(rs, ref, strict=True)]
                rec[f"ratio_to_{REFERENCE}_per_round"] = [round(x, 3) for x in ratios]
                rec[f"ratio_to_{REFERENCE}_median"] = round(statistics.median(ratios), 3)
            sz[d] = rec
        out["sizes"][name] = sz
    out["recommendation"] = recommend(out["sizes"], decoders)
    return out


def recommend(sizes: dict, decoders: tuple[str, ...], margin: float = 0.05) -> dict:
    """The default decoder by measurement.

    A decoder replaces PyAV only when it decodes every frame, is at least ``margin`` faster
    (median per-round ratio) at *every* size, and needs no more CPU per frame (the copilot
    shares 2 cores with the analysis stages, so CPU per frame matters as much as wall fps).
    """
    key = f"ratio_to_{REFERENCE}_median"
    basis = "720p" if "720p" in sizes else next(iter(sizes))
    ranked = sorted(decoders, key=lambda d: -sizes[basis][d].get(key, 1.0))
    fastest = ranked[0]

    def beats(d: str) -> tuple[bool, str]:
        why = []
        for name, per in sizes.items():
            r = per[d].get(key, 1.0)
            cpu, cpu_ref = per[d]["cpu_ms_per_frame_median"], per[REFERENCE][
                "cpu_ms_per_frame_median"]
            if not per[d]["all_frames"]:
                why.append(f"misses frames at {name}")
            if r < 1.0 + margin:
                why.append(f"{r:.3f}x PyAV fps at {name}")
            if cpu > cpu_ref:
                why.append(f"{cpu / cpu_ref:.2f}x PyAV CPU per frame at {name}")
        return not why, "; ".join(why)

    choice = REFERENCE
    if fastest == REFERENCE:
        why = f"PyAV is the fastest at {basis}"
    else:
        ok, reasons = beats(fastest)
        if ok:
            choice = fastest
            why = f"{fastest} is >= {1 + margin:.2f}x PyAV at every size with less CPU"
        else:
            r = sizes[basis][fastest].get(key, 1.0)
            why = (f"{fastest} is fastest at {basis} ({r:.3f}x PyAV) but not better everywhere "
                   f"({reasons}); PyAV stays the default (also opens stream URLs and keeps "
                   "the frames of cut files)")
    return {"default": choice, "fastest_720p": fastest, "ranking": ranked, "basis": basis,
            "reason": why, "agrees_with_code_default": choice == _code_default()}


def _code_default() -> str:
    from vision.sources import DEFAULT_FILE_BACKEND

    return DEFAULT_FILE_BACKEND


def write(record: dict, out: Path = RESULTS, name: str = "decoders") -> None:
    """Write ``name``.json and ``name``.md."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    rec = record["recommendation"]
    lines = [
        "# Decoder benchmark: decord vs PyAV vs OpenCV",
        "",
        f"Command: `{record['command']}`  ",
        "Machine: " + machine_line(record["machine"]) + "  ",
        f"{record['rounds']} rounds, alternated (decoder order rotates each round); each run "
        "decodes the whole file to RGB uint8 through `vision.sources`.",
        "",
        "| clip | size | frames | bitrate kbit/s |",
        "| --- | --- | --- | --- |",
    ]
    for clip, c in record["clips"].items():
        lines.append(f"| {clip} | {c['width']}x{c['height']} | {c['frames']} @ {c['fps']:g} fps |"
                     f" {c['kbit_per_s']} |")
    lines += ["", "| size | decoder | fps median | fps per round | CPU ms/frame | "
              f"ratio to {REFERENCE} (median of per-round) | all frames |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for size, per in record["sizes"].items():
        for d, v in per.items():
            lines.append(
                f"| {size} | {d} | {v['fps_median']} | {', '.join(map(str, v['fps_per_round']))}"
                f" | {v['cpu_ms_per_frame_median']} | {v.get(f'ratio_to_{REFERENCE}_median')} |"
                f" {'yes' if v['all_frames'] else 'NO'} |")
    lines += [
        "",
        f"**Default decoder by measurement: `{rec['default']}`** ({rec['reason']}). "
        f"Ranking at {rec['basis']}: {' > '.join(rec['ranking'])}. "
        f"The code default (`vision.sources.DEFAULT_FILE_BACKEND`) is "
        f"`{_code_default()}`: {'agrees' if rec['agrees_with_code_default'] else 'DIFFERS'}.",
    ]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """CLI entry."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length (s)")
    ap.add_argument("--rounds", type=int, default=5, help="alternated rounds (>= 3)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--name", default="decoders")
    a = ap.parse_args(argv)
    if a.rounds < 1:
        ap.error("--rounds must be >= 1")
    machine = machine_info()
    res = run(a.seconds, a.rounds)
    record = {"benchmark": "decoders",
              "command": "python -m benchmarks.bench_decoders " + " ".join(sys.argv[1:]),
              "seconds": a.seconds, "rounds": a.rounds, "machine": machine,
              "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
              **res}
    write(record, a.out, a.name)
    print(json.dumps({s: {d: v["fps_median"] for d, v in per.items()}
                      for s, per in record["sizes"].items()}))
    print(json.dumps(record["recommendation"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
