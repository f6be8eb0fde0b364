"""Teach by example (issue 23) on real Endoscapes frames, leave-one-class-out.

Encoder (``--encoder voc``, the default and the acceptance protocol): the DeepLabV3-MobileNetV2
body with its PASCAL VOC weights, frozen. It has never seen an Endoscapes label, so for each of
the five anatomy classes it is an encoder trained without that class's labels. Per-pixel
features: :func:`vision.models.pixel_features` (the model's ``features`` output).
``--encoder shipped``: the shipped real-frame model's body (fine-tuned on all five classes
since session 12), the features the copilot teaches with; NOT leave-one-class-out (the body
saw every class's labels), so optimistic; it chooses the product's settings
(``vision/teach_calibration.json``) and writes ``teach_shipped_body.{json,md}``. The shipped
decoder is never used for teaching; it only gives the supervised IoU to compare with (same
query frames, same resolution 256x144).

Protocol per class, K in (1, 3, 5), example kind in (point, mask): K frames showing the class
are drawn from randomly chosen patients; each gives its mask, or its point (the mask's
interior point farthest from its border); IoU (pixels summed over the query frames) on every
frame of the OTHER patients (including frames without the class: false outlines count);
``REPS`` draws per setting, mean reported. Frames are stills, so no temporal smoothing.

Dev / test: settings (score threshold, point-growing similarity) are chosen on Endoscapes
*train* patients (30): for the reported class, on the other four classes only
(leave-one-class-out calibration); with ``--encoder shipped`` the product's settings on all
five are written to ``vision/teach_calibration.json``. Reported on the official *val* split (10
patients).

Run: ``python -m benchmarks.bench_teach [--encoder voc|shipped]`` ->
``benchmarks/results/teach.{json,md}`` (voc) or ``teach_shipped_body.{json,md}``.
"""

from __future__ import annotations

import os

from benchmarks.paths import results_dir

# teaching runs in the copilot's brain thread: NumPy's BLAS on one thread (torch gets 2
# threads for the feature extraction only)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.machine import machine_info  # noqa: E402
from copilot.stats import percentile

ROOT = Path(__file__).resolve().parents[1]
ENDO = ROOT.parent / "shared" / "data" / "real" / "endoscapes-seg201"
RESULTS = results_dir()
CLASSES = {1: "cystic_plate", 2: "calot_triangle", 3: "cystic_artery", 4: "cystic_duct",
           5: "gallbladder"}
KS = (1, 3, 5)
REPS = 6
MIN_PIXELS = 50  # a frame "shows" the class with >= 50 labelled pixels at 256x144
THRESHOLDS = np.round(np.arange(-1.5, 1.501, 0.05), 2)
GROWS = (0.4, 0.5, 0.6)
#: frame gating: no outline in a frame whose best score is below threshold + gate (None: off)
GATES = (None, 0.1, 0.2, 0.3, 0.5, 0.75)


def every_nth(data: Any, n: int) -> Any:
    """``data`` (LabelledFrames) with every ``n``-th frame only (n <= 1: all)."""
    if n <= 1:
        return data
    keep = np.arange(0, len(data), n)
    return dataclasses.replace(data, **{f.name: getattr(data, f.name)[keep]
                                        for f in dataclasses.fields(data)
                                        if isinstance(getattr(data, f.name), np.ndarray)})


def features(images: np.ndarray, model_dir: Path | None = None) -> np.ndarray:
    """[N, H, W, 3] uint8 -> [N, C, H/16, W/16] float32 pixel features of the VOC body, or of
    the body of the model in ``model_dir``."""
    import torch

    from vision import modelio
    from vision.backbone import load_pretrained
    from vision.models import EncoderNet, mnv2_config, pixel_features

    h, w = images.shape[1:3]
    if model_dir is None:
        net = EncoderNet(mnv2_config((w, h))).eval()
        load_pretrained(net.mnv2.body)
    else:
        net = modelio.load_torch_model(model_dir).eval()
    torch.set_num_threads(2)
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), 8):
            x = torch.from_numpy(images[i:i + 8].transpose(0, 3, 1, 2).astype(np.float32))
            f4, f8, f16 = net.mnv2.body.front((x - net.mean) * net.inv_std)
            out.append(pixel_features(f16, net.mnv2.body.back(f16)[1]).numpy())
    torch.set_num_threads(1)  # no idle torch threads competing with the timed part
    return np.concatenate(out)


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) in 0..1: the mask pixel farthest from the mask's border."""
    d = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(d)), d.shape)
    return (x + 0.5) / mask.shape[1], (y + 0.5) / mask.shape[0]


def draws(masks: np.ndarray, vid: np.ndarray, cls: int, k: int, seed: int
          ) -> tuple[list[int], list[int]]:
    """(support frames, query frames): K frames showing ``cls`` from random patients, and
    every frame of the other patients."""
    rng = np.random.default_rng(seed)
    shows = [i for i in range(len(masks)) if (masks[i] == cls).sum() >= MIN_PIXELS]
    pats = rng.permutation(sorted({vid[i] for i in shows}))
    sup: list[int] = []
    for p in pats:
        frames = [i for i in shows if vid[i] == p]
        sup += list(rng.permutation(frames)[:k - len(sup)])
        if len(sup) >= k:
            break
    used = {vid[i] for i in sup}
    return [int(i) for i in sup], [i for i in range(len(masks)) if vid[i] not in used]


def episode(feats: np.ndarray, masks: np.ndarray, sup: list[int], query: list[int], cls: int,
            kind: str, settings: dict, stride: int = 1) -> dict:
    """Teach from ``sup``, score ``query``: per threshold of :data:`THRESHOLDS` the
    intersection and union pixel counts (masks subsampled by ``stride``)."""
    from vision.teach import ConceptBook

    book = ConceptBook(settings)
    for i in sup:
        m = masks[i] == cls
        if kind == "mask":
            book.teach("x", feats[i], mask=m)
        else:
            book.teach("x", feats[i], point=interior_point(m))
    h, w = masks.shape[1:]
    pos_l, all_l, tsum, smax = [], [], [], []
    edges = np.r_[-np.inf, THRESHOLDS, np.inf]
    for i in query:
        raw = book.scores(feats[i], smooth=False)["x"]
        s = cv2.resize(raw, (w, h), interpolation=cv2.INTER_LINEAR)[::stride, ::stride]
        m = masks[i][::stride, ::stride]
        valid = m != 255
        t = (m == cls)[valid]
        s = s[valid]
        # pixels with score > THRESHOLDS[j]: cumulative histogram from the top
        pos_l.append(np.cumsum(np.histogram(s[t], edges)[0][::-1])[::-1][1:])
        all_l.append(np.cumsum(np.histogram(s, edges)[0][::-1])[::-1][1:])
        tsum.append(t.sum())
        smax.append(raw.max())  # the grid's best cell, as vision.teach gates
    return {"pos": np.array(pos_l, float), "all": np.array(all_l, float),
            "tsum": np.array(tsum, float), "smax": np.array(smax)}


def iou_at(ep: dict, j: int, gate: float | None = None) -> float:
    """IoU at threshold index ``j``; ``gate``: frames whose highest score is below
    THRESHOLDS[j] + gate get no outline (None: no gating)."""
    keep = np.ones(len(ep["tsum"]), bool) if gate is None else \
        ep["smax"] >= THRESHOLDS[j] + gate
    inter = ep["pos"][keep, j].sum()
    union = (ep["all"][keep, j] + ep["tsum"][keep] - ep["pos"][keep, j]).sum() + \
        ep["tsum"][~keep].sum()
    return float(inter / max(union, 1))


def run_split(feats, masks, vid, settings_by_grow: dict, stride: int, reps: int = REPS
              ) -> dict:
    """Episodes per (class, kind, K, grow): {key: [episode per draw]}."""
    res = {}
    for cls in CLASSES:
        for k in KS:
            for r in range(reps):
                sup, query = draws(masks, vid, cls, k, seed=1000 * cls + 10 * k + r)
                for kind in ("mask", "point"):
                    grows = settings_by_grow if kind == "point" else {0: None}
                    for g in grows:
                        s = settings_by_grow[g] if g else next(iter(settings_by_grow.values()))
                        res.setdefault((cls, kind, k, g), []).append(
                            episode(feats, masks, sup, query, cls, kind, s, stride))
    return res


def mean_iou(eps: list[dict], j: int, gate: float | None) -> float:
    """Mean over draws of the IoU at threshold index ``j`` with ``gate``."""
    return float(np.mean([iou_at(e, j, gate) for e in eps]))


def calibrate(dev: dict, classes: list[int]) -> tuple[float, float, float | None, float]:
    """(threshold, grow, gate, dev mean IoU) maximising the mean dev IoU over ``classes``,
    both kinds and every K."""
    best, arg = -1.0, (0.0, GROWS[0], None)
    for g in GROWS:
        keys = [(c, "mask", k, 0) for c in classes for k in KS] + \
               [(c, "point", k, g) for c in classes for k in KS]
        for gate in GATES:
            mean = [np.mean([mean_iou(dev[key], j, gate) for key in keys])
                    for j in range(len(THRESHOLDS))]
            j = int(np.argmax(mean))
            if mean[j] > best:
                best, arg = float(mean[j]), (float(THRESHOLDS[j]), g, gate)
    return (*arg, best)


def supervised_labels(images: np.ndarray, model_dir: Path) -> np.ndarray:
    """Endoscapes ids predicted by the shipped supervised head, [N, 144, 256] uint8."""
    from vision.datasets.endoscapes import model_to_endoscapes_lut
    from vision.runtimes import OrtRuntime

    rt = OrtRuntime(model_dir, threads=2)
    lut = model_to_endoscapes_lut()
    out = []
    for img in images:
        x = np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)
        out.append(lut[rt.run(x)["seg_labels"][0].astype(np.uint8)])
    return np.stack(out)


def sup_iou(pred: np.ndarray, masks: np.ndarray, query: list[int], cls: int) -> float:
    m, p = masks[query], pred[query]
    valid = m != 255
    t, q = (m == cls) & valid, (p == cls) & valid
    return float((t & q).sum() / max((t | q).sum(), 1))


def timings(fva: np.ndarray, masks: np.ndarray, settings: dict) -> dict:
    """Teaching time per example (ms; 5 examples per concept, masks and points) and the
    added time per frame of 5 taught concepts (score + threshold at 256x144)."""
    from vision.teach import ConceptBook

    teach_ms = []
    book = ConceptBook(settings)
    for n, cls in enumerate(CLASSES):
        shows = [i for i in range(len(masks)) if (masks[i] == cls).sum() >= MIN_PIXELS][:5]
        for j, i in enumerate(shows):
            m = masks[i] == cls
            t0 = time.perf_counter()
            if j % 2:
                book.teach(f"concept {n}", fva[i], point=interior_point(m))
            else:
                book.teach(f"concept {n}", fva[i], mask=m)
            teach_ms.append((time.perf_counter() - t0) * 1e3)
    frame_ms, copilot_ms = [], []
    for _ in range(3):
        for f in fva:
            t0 = time.perf_counter()
            book.masks(f, (256, 144))
            frame_ms.append((time.perf_counter() - t0) * 1e3)
    # what the copilot adds per analysed frame: the same plus outlines in frame pixels
    from copilot.teaching import TaughtConcepts

    taught = TaughtConcepts(book)
    lm = np.zeros((144, 256), np.uint8)
    for _ in range(3):
        for i, f in enumerate(fva):
            t0 = time.perf_counter()
            taught.on_features({"features": f, "label_map": lm, "fov_box": (0, 0, 854, 480)},
                               i, i * 0.1, (854, 480))
            copilot_ms.append((time.perf_counter() - t0) * 1e3)
    return {"teach_ms_median": float(np.median(teach_ms)),
            "teach_ms_p95": percentile(teach_ms, 95),
            "teach_ms_max": float(np.max(teach_ms)), "teach_n": len(teach_ms),
            "concepts": len(book.names()),
            "frame_ms_median": float(np.median(frame_ms)),
            "frame_ms_p95": percentile(frame_ms, 95), "frame_n": len(frame_ms),
            "copilot_frame_ms_median": float(np.median(copilot_ms)),
            "copilot_frame_ms_p95": percentile(copilot_ms, 95)}


def main() -> None:
    """CLI entry."""
    from vision import modelio
    from vision.models import mnv2_config
    from vision.real_data import load_real, video_ids
    from vision.teach import CALIBRATION, DEFAULTS

    ap = argparse.ArgumentParser(description="teach by example on real Endoscapes frames")
    ap.add_argument("--reps", type=int, default=REPS)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/vis/cache"))
    ap.add_argument("--model-dir", type=Path, default=None, help="supervised head to compare")
    ap.add_argument("--encoder", choices=("voc", "shipped"), default="voc",
                    help="voc: the frozen VOC body, leave-one-class-out (the acceptance "
                         "protocol); shipped: the shipped model's body (the copilot's "
                         "features; saw every class; chooses the product's settings)")
    ap.add_argument("--calibration", type=Path, default=None,
                    help="where the chosen settings go (default: the product's, vision/, "
                         "with --encoder shipped; nowhere with voc)")
    ap.add_argument("--every", type=int, default=1,
                    help="every n-th train / val frame only (smoke run; not a result)")
    a = ap.parse_args()
    if not (ENDO / "matches.json").is_file():
        print(f"error: real data not found: {ENDO}", file=sys.stderr)
        sys.exit(2)
    load0 = os.getloadavg()
    mc = mnv2_config((512, 288))
    ins, outs = tuple(mc.input_size), mc.output_size
    cache = a.cache if a.cache.is_dir() else None
    tr = every_nth(load_real(ENDO, "train", ins, outs, cache), a.every)
    va = every_nth(load_real(ENDO, "val", ins, outs, cache), a.every)
    model_dir = modelio.resolve_model_dir(a.model_dir)
    body = model_dir if a.encoder == "shipped" else None
    ftr, fva = features(tr.images, body), features(va.images, body)
    vtr, vva = video_ids(tr), video_ids(va)
    sets = {g: {**DEFAULTS, "grow": g} for g in GROWS}
    dev = run_split(ftr, tr.masks, vtr, sets, stride=2, reps=a.reps)
    thr, grow, gate, dev_iou = calibrate(dev, list(CLASSES))
    product = {**DEFAULTS, "threshold": thr, "grow": grow, "gate": gate}
    calibration = a.calibration or (CALIBRATION if a.encoder == "shipped" else None)
    if calibration is not None:
        calibration.write_text(json.dumps({
            "settings": product, "chosen_on": "Endoscapes2023 official train split (30 "
            "patients), teaching episodes of the five anatomy classes, K = 1, 3, 5, points and "
            f"masks, features of the {a.encoder} body (python -m benchmarks.bench_teach "
            f"--encoder {a.encoder})", "dev_mean_iou": round(dev_iou, 4)}, indent=1) + "\n")
    pred = supervised_labels(va.images, model_dir)
    per_class: dict[str, dict] = {}
    for cls, name in CLASSES.items():
        t, g, gate, dev_iou = calibrate(dev, [c for c in CLASSES if c != cls])
        j = list(THRESHOLDS).index(t)
        s = {**DEFAULTS, "threshold": t, "grow": g, "gate": gate}
        row = {"calibrated_on_other_classes": {"threshold": t, "grow": g, "gate": gate,
                                               "dev_mean_iou_other_classes": round(dev_iou, 4)}}
        sup = []
        for k in KS:
            for kind in ("mask", "point"):
                ious = []
                for r in range(a.reps):
                    support, query = draws(va.masks, vva, cls, k, seed=1000 * cls + 10 * k + r)
                    ious.append(iou_at(episode(fva, va.masks, support, query, cls, kind, s), j,
                                       gate))
                    if kind == "mask":
                        sup.append(sup_iou(pred, va.masks, query, cls))
                row[f"{kind}_k{k}"] = round(float(np.mean(ious)), 4)
        row["supervised_same_queries"] = round(float(np.mean(sup)), 4)
        row["val_frames_showing"] = int(sum((m == cls).sum() >= MIN_PIXELS for m in va.masks))
        per_class[name] = row
    tim = timings(fva, va.masks, product)
    load1 = os.getloadavg()
    report(per_class, tim, product, model_dir, load0, load1, len(tr), len(va), a.reps,
           a.encoder)


ENCODERS = {
    "voc": "DeepLabV3-MobileNetV2 body with PASCAL VOC weights, frozen: never trained on any "
           "Endoscapes label, so for each class it is an encoder trained without that class's "
           "labels (leave-one-class-out; since session 12 the shipped body is fine-tuned, so "
           "this is not the copilot's own encoder: see teach_shipped_body.md); features = "
           "vision.models.pixel_features (1/16 backbone + ASPP, 352 channels)",
    "shipped": "the shipped real-frame model's body (fine-tuned on all five anatomy classes of "
               "the 30 train patients): the features the copilot teaches with. NOT "
               "leave-one-class-out: the body saw every reported class's labels, so these "
               "numbers are optimistic for a concept it was never trained on; no goal rows"}


DISCLOSURE_VOC = ("before this protocol existed, one exploratory run printed the val IoU of "
                  "four feature choices (1/8, 1/16, ASPP, 1/16 + ASPP; one threshold); the "
                  "choice (1/16 + ASPP) is also the best of them on dev. Every other setting "
                  "was chosen on dev (train patients) only, but this benchmark was run on "
                  "val five times during development, once after each dev-chosen change "
                  "(1-point ratio 0.22 (2 draws), 0.23, 0.30, 0.33, 0.37; 5-mask ratio "
                  "0.63 (2 draws), 0.46, 0.67, 0.67, 0.69): the last run is reported, so "
                  "the val numbers are not untouched by selection. Since session 12 the "
                  "supervised column is the fine-tuned shipped head (val mIoU 0.393; "
                  "before, the frozen-body head: 0.250); the taught IoUs did not change, "
                  "the ratios fell (they were 0.685 / 0.371 against the weaker head).")
DISCLOSURE_SHIPPED = ("first run of this encoder (session 12), after the leave-one-class-out "
                      "runs on the VOC body; the product's settings were chosen on dev (train "
                      "patients) only; val gave these numbers in the first run, and a second "
                      "run that changed only this report's wording gave the same")


def report(per_class: dict, tim: dict, product: dict, model_dir: Path, load0, load1,
           n_tr: int, n_va: int, reps: int, encoder: str = "voc") -> None:
    """Write teach.json / teach.md with the goals (voc), or teach_shipped_body.* (shipped)."""
    metrics = json.loads((model_dir / "metrics.json").read_text()) \
        if (model_dir / "metrics.json").is_file() else {}
    card = metrics.get("real_val", {}).get("iou_frame_resolution", {}).get("iou", {})
    sup = np.mean([r["supervised_same_queries"] for r in per_class.values()])

    def ratio(key: str) -> float:
        return float(np.mean([r[key] for r in per_class.values()]) / max(sup, 1e-9))

    loads = f"load average {load0[0]:.1f} at start, {load1[0]:.1f} at end (2 cores shared)"
    goals = [
        {"issue": 23, "name": "5 mask examples: taught IoU / supervised IoU (means over the 5 "
         "anatomy classes)", "target": ">= 0.6", "value": round(ratio("mask_k5"), 3),
         "pass": ratio("mask_k5") >= 0.6, "note": "Endoscapes val (test), leave-one-class-out"},
        {"issue": 23, "name": "1 point example: taught IoU / supervised IoU", "target": ">= 0.35",
         "value": round(ratio("point_k1"), 3), "pass": ratio("point_k1") >= 0.35,
         "note": "Endoscapes val (test), leave-one-class-out"},
        {"issue": 23, "name": "teaching one example p95 (ms)", "target": "<= 200",
         "value": round(tim["teach_ms_p95"], 1), "pass": tim["teach_ms_p95"] <= 200,
         "note": f"{tim['teach_n']} examples (1st-5th of a concept); {loads}"},
        {"issue": 23, "name": "5 taught concepts, added time per frame median (ms)",
         "target": "<= 3", "value": round(tim["copilot_frame_ms_median"], 2),
         "pass": tim["copilot_frame_ms_median"] <= 3,
         "note": f"p95 {tim['copilot_frame_ms_p95']:.2f} ms: copilot.teaching per analysed "
                 f"frame (scores, smoothing, threshold at 256x144, outlines in 854x480 frame "
                 f"px) of 5 concepts (the learner alone: median {tim['frame_ms_median']:.2f}"
                 f" ms); one thread (the brain's) on the 2-core machine; {loads}"}]
    res = {
        "goals": goals if encoder == "voc" else [],
        "command": f"python -m benchmarks.bench_teach --encoder {encoder}",
        "machine": machine_info(), "load_avg_start": list(load0),
        "load_avg_end": list(load1),
        "dev": f"Endoscapes2023 official train split ({n_tr} frames, 30 patients): thresholds "
               "and point growing chosen here (per reported class on the other four only)",
        "test": f"Endoscapes2023 official val split ({n_va} frames, 10 patients): reported only",
        "encoder": ENCODERS[encoder],
        "protocol": f"K frames showing the class (>= {MIN_PIXELS} px) from random val patients; "
                    "point = mask pixel farthest from its border; IoU over every frame of the "
                    f"other patients at 256x144; mean of {reps} draws; no temporal smoothing",
        "supervised": f"shipped head ({model_dir.name}) on the same query frames at 256x144 "
                      "(trained on all five classes); the model card's val IoU at frame "
                      f"resolution: {card}",
        "disclosure": DISCLOSURE_SHIPPED if encoder == "shipped" else DISCLOSURE_VOC,
        "per_class": per_class, "timing": tim, "product_settings": product,
        "mean_taught_over_mean_supervised": {k: round(ratio(k), 3) for k in next(
            iter(per_class.values())) if k.startswith(("mask_", "point_"))},
        "mean_supervised": round(float(sup), 4)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "teach" if encoder == "voc" else "teach_shipped_body"
    (RESULTS / f"{stem}.json").write_text(json.dumps(res, indent=1) + "\n")
    cols = [f"{kind}_k{k}" for kind in ("point", "mask") for k in KS]
    title = "" if encoder == "voc" else ": the shipped body (not leave-one-class-out)"
    lines = [f"# Teach by example (issue 23){title}", "", res["encoder"] + ".", "",
             f"Dev: {res['dev']}. Test: {res['test']}.", "", res["protocol"] + ".", "",
             "| class | " + " | ".join(cols) + " | supervised |",
             "|---" * (len(cols) + 2) + "|"]
    for name, r in per_class.items():
        lines.append(f"| {name} | " + " | ".join(f"{r[c]:.3f}" for c in cols)
                     + f" | {r['supervised_same_queries']:.3f} |")
    lines.append("| **taught / supervised** | " + " | ".join(
        f"{res['mean_taught_over_mean_supervised'][c]:.2f}" for c in cols) + " | 1 |")
    lines += ["", "| goal | target | value | pass |", "|---|---|---|---|"]
    lines += [f"| {g['name']} | {g['target']} | {g['value']} | {g['pass']} |"
              for g in res["goals"]]
    lines += ["", f"Timing: {loads}. Settings chosen on dev, all five classes ({encoder} body"
              f"{', the product' + chr(39) + 's' if encoder == 'shipped' else ''}): {product}.",
              "", f"Disclosure: {res['disclosure']}", ""]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
