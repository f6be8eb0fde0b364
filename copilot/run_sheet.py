"""Contact sheet of a ``copilot run`` output folder, to review a run as a surgeon would.

``copilot sheet RUN_DIR [--out sheet.png] [--n 12]``: evenly spaced frames of the annotated
video (what the overlay showed), each with what the copilot believed at that moment (phase,
region, in-domain score, off-label, structures it found), then one line per alert and per
answer of the run (time, rule, text). Made for reviewing real video: the PNG shows the clip's
pixels, so for the project's real clips keep it out of the repository.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from copilot.errors import CopilotError


def _session(run_dir: Path) -> list[dict[str, Any]]:
    p = run_dir / "session.jsonl"
    if not p.is_file():
        raise CopilotError(f"no session.jsonl in {run_dir} (not a copilot run folder?)")
    recs = []
    for line in p.read_text().splitlines():
        try:
            recs.append(json.loads(line))
        except ValueError:
            continue
    return recs


def _belief(obs: list[dict[str, Any]], t: float) -> list[str]:
    """What the copilot believed near media time ``t`` (the newest frame at or before t)."""
    before = [o for o in obs if o.get("t_s", 0.0) <= t + 1e-6]
    if not before:
        return ["(nothing analysed yet)"]
    fid = before[-1]["frame_id"]
    frame = [o for o in before if o["frame_id"] == fid]
    by = {}
    for o in frame:
        by.setdefault(o["kind"], []).append(o)
    out = []
    for kind in ("phase", "region", "domain"):
        for o in by.get(kind, [])[:1]:
            out.append(f"{kind}: {o['name'] if kind != 'domain' else 'in-domain'} "
                       f"{o['score']:.2f}")
    st = sorted(by.get("structure", []), key=lambda o: -o["score"])
    if st:
        out.append("sees: " + ", ".join(f"{o['name']} {o['score']:.2f}" for o in st[:4]))
    return out


def run_contact_sheet(run_dir: str | Path, out_png: str | Path | None = None, n: int = 12,
                      thumb_width: int = 320) -> Path:
    """Write the sheet (PNG) and return its path (default ``RUN_DIR/sheet.png``)."""
    import cv2
    from PIL import Image

    from copilot.feeds import _decode_frames, _text

    run = Path(run_dir)
    video = run / "annotated.mp4"
    if not video.is_file():
        raise CopilotError(f"no annotated.mp4 in {run}")
    if n < 1 or thumb_width < 64:
        raise CopilotError("need at least one frame and a thumbnail width >= 64")
    recs = _session(run)
    start = next((r for r in recs if r["type"] == "start"), {})
    fps = float(start.get("fps") or 25.0)
    nf = int(start.get("n_frames") or 0)
    if nf <= 0:
        import av

        with av.open(str(video)) as c:
            nf = c.streams.video[0].frames or int(float(c.duration or 0) / 1e6 * fps)
    idx = sorted({int(round(x)) for x in np.linspace(0.02 * nf, 0.98 * nf - 1, n)})
    imgs = _decode_frames(video, idx)
    obs = [r for r in recs if r["type"] == "obs"]
    tw = thumb_width
    cells = []
    for i in idx:
        rgb = imgs.get(i)
        if rgb is None:
            continue
        th = int(round(tw * rgb.shape[0] / rgb.shape[1]))
        cell = np.zeros((th + 80, tw, 3), np.uint8)
        cell[:th] = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA)
        lines = [f"t={i / fps:6.2f}s frame {i}", *_belief(obs, i / fps)]
        _text(cell, [ln[:int(tw / 6)] for ln in lines[:5]], 4, th + 12, scale=0.36)
        cells.append(cell)
    if not cells:
        raise CopilotError(f"no frame of {video} could be decoded")
    cols = min(4, len(cells))
    h = max(c.shape[0] for c in cells)
    rows = [cells[k:k + cols] for k in range(0, len(cells), cols)]
    grid = np.zeros((h * len(rows), tw * cols, 3), np.uint8)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            grid[r * h:r * h + cell.shape[0], c * tw:(c + 1) * tw] = cell
    events = [r for r in recs if r["type"] in ("alert", "answer", "off_label",
                                                "cvs_confirmation")]
    lines = [f"{start.get('source', '')}  procedure {start.get('procedure', '?')}  "
             f"vision {start.get('vision_backend', '?')}  cvs {start.get('cvs_source', '?')}"]
    for r in events:
        t = r.get("media_t_s") or 0.0
        what = {"alert": lambda r: f"ALERT {r.get('rule')}: {r.get('text')}",
                "answer": lambda r: f"answer ({r.get('intent')}): {r.get('text')}",
                "off_label": lambda r: f"off-label {r.get('event')}: {r.get('reason')}",
                "cvs_confirmation": lambda r: f"surgeon CVS confirmed={r.get('confirmed')}"}
        lines.append(f"{t:6.1f}s {what[r['type']](r)}")
    if len(events) == 0:
        lines.append("no alerts, answers or off-label spans")
    foot = np.zeros((16 * len(lines) + 12, grid.shape[1], 3), np.uint8)
    _text(foot, [ln[:int(grid.shape[1] / 6)] for ln in lines], 4, 14, scale=0.38)
    sheet = np.vstack([grid, foot])
    out = Path(out_png) if out_png is not None else run / "sheet.png"
    Image.fromarray(sheet).convert("P", palette=Image.ADAPTIVE, colors=256).save(out)
    return out
