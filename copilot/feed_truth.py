"""The truth of a synthetic feed (truth.json, docs/feed_format.md): built from the scene
plan and the per-frame labels, read back and checked against its schema. Times are seconds
from the start of the feed, rounded to 0.1 ms.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from copilot.errors import CopilotError
from vision.labels import CLASSES, CVS_CRITERIA, PHASES, REGIONS, SEGMENTS, TOOLS

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("schemas") / "truth.schema.json"


def round_s(x: float) -> float:
    """Seconds (or any figure of the truth) rounded to 4 decimals."""
    return round(float(x), 4)


def _intervals(values: list[int], fps: float, names: Sequence[str], times: dict[str, tuple]
               ) -> list[dict]:
    """[{name, start_s, end_s, start_frame, end_frame}] from per-frame indices."""
    out: list[dict] = []
    for i, v in enumerate(values):
        if v < 0:
            continue
        if out and out[-1]["_v"] == v and out[-1]["end_frame"] == i:
            out[-1]["end_frame"] = i + 1
        else:
            out.append({"_v": v, "start_frame": i, "end_frame": i + 1})
    res = []
    for o in out:
        name = names[o["_v"]]
        s, e = times.get(name, (o["start_frame"] / fps, o["end_frame"] / fps))
        res.append({"name": name, "start_s": round_s(s), "end_s": round_s(e),
                    "start_frame": o["start_frame"], "end_frame": o["end_frame"]})
    return res


def truth_of(scenario: str, plan: Any, scene: Any, labels: dict, fps: float, seed: int,
             size: tuple[int, int], n_frames: int, duration: float, options: dict) -> dict:
    """The truth dict of a rendered feed of ``n_frames`` frames at ``fps`` (``size`` (w, h)
    px, ``duration`` s); utterances and noise stay empty until the audio fills them in."""
    w, h = size
    events_out = list(plan.events) + scene.located_events()
    for e in events_out:
        e["time_s"] = round_s(e["time_s"])
        e["frame"] = min(n_frames - 1, max(0, math.ceil(e["time_s"] * fps - 1e-6)))
    events_out.sort(key=lambda e: (e["time_s"], e["kind"]))
    if scenario == "cholecystectomy":
        times = {p.name: (p.start_s, p.end_s) for p in plan.phases}
        phases = _intervals(labels["phase"], fps, PHASES, times)
        segments: list[dict] = []
    else:
        phases = []
        times = {s.name: (s.start_s, s.end_s) for s in plan.segments}
        segments = _intervals([r - 1 for r in labels["region"]], fps, SEGMENTS, times)
    truth: dict = {
        "schema_version": SCHEMA_VERSION,
        "scenario": scenario,
        "seed": seed,
        "fps": fps,
        "width": w,
        "height": h,
        "n_frames": n_frames,
        "duration_s": round_s(duration),
        "classes": list(CLASSES),
        "phases": phases,
        "segments": segments,
        "frame_labels": labels,
        "events": events_out,
        "utterances": [],
        "noise": {},
        "options": options,
        "regions": list(REGIONS),
        "tools": list(TOOLS),
        "phase_names": list(PHASES),
        "cvs_criteria": list(CVS_CRITERIA),
    }
    return truth


# ----------------------------------------------------------------------------- reading
def load_truth(feed_dir: str | Path) -> dict:
    """Read and check a feed's truth.json (CopilotError when missing or malformed)."""
    p = Path(feed_dir) / "truth.json"
    if not p.is_file():
        raise CopilotError(f"no truth.json in {feed_dir} (not a feed folder?)")
    try:
        truth = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise CopilotError(f"corrupt {p}: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(truth, dict) or truth.get("schema_version") != SCHEMA_VERSION:
        raise CopilotError(f"{p}: unsupported schema_version {truth.get('schema_version')!r}")
    return truth


def validate_truth(truth: dict) -> None:
    """Validate against copilot/schemas/truth.schema.json (CopilotError on violations)."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    try:
        jsonschema.validate(truth, schema)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(x) for x in exc.absolute_path)
        raise CopilotError(f"truth.json invalid at {path or '(root)'}: {exc.message}") from exc

