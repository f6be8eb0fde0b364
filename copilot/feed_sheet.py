"""Contact sheet of a feed: frames, their masks blended in class colours and the truth at
each frame's time, as one palette PNG (``copilot feed show``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from copilot.errors import CopilotError
from copilot.feed_truth import load_truth
from vision.labels import PHASES, REGIONS, TOOLS


def _decode_frames(video: Path, indices: Sequence[int]) -> dict[int, np.ndarray]:
    """Decode the frames with the given indices (RGB uint8) from an MP4, in one pass."""
    import av

    want = set(indices)
    out: dict[int, np.ndarray] = {}
    try:
        with av.open(str(video)) as c:
            for i, fr in enumerate(c.decode(video=0)):
                if i in want:
                    out[i] = fr.to_ndarray(format="rgb24")
                if len(out) == len(want):
                    break
    except av.error.FFmpegError as exc:
        raise CopilotError(f"cannot decode {video}: {exc}") from exc
    return out


def _text(img: np.ndarray, lines: list[str], x: int, y: int, scale: float = 0.38,
          colour: tuple[int, int, int] = (235, 235, 235)) -> None:
    import cv2

    for k, ln in enumerate(lines):
        cv2.putText(img, ln, (x, y + int(k * 30 * scale * 1.25)), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, colour, 1, cv2.LINE_AA)


def show_feed(feed_dir: str | Path, out_png: str | Path | None = None, n: int = 8,
              thumb_width: int = 240, frames: Sequence[int] | None = None) -> Path:
    """Contact sheet of ``n`` frames (evenly spaced, or the given ``frames``): each cell is
    the frame, its mask blended in class colours, and the truth at that time (phase / segment,
    CVS, tools, classes, nearby events, the line being spoken). Written as a palette PNG."""
    from PIL import Image

    from vision.labels import CLASS_COLOURS

    feed = Path(feed_dir)
    truth = load_truth(feed)
    nf = truth["n_frames"]
    if n < 1 or thumb_width < 64:
        raise CopilotError("need at least one frame and a thumbnail width >= 64")
    if frames is None:
        idx = sorted({int(round(x)) for x in np.linspace(0.03 * nf, 0.97 * nf - 1, n)})
    else:
        idx = sorted({int(i) for i in frames})
        if any(i < 0 or i >= nf for i in idx):
            raise CopilotError(f"frame index out of range 0..{nf - 1}")
    imgs = _decode_frames(feed / "video.mp4", idx)
    lut = np.zeros((256, 3), np.uint8)
    for i, c in enumerate(truth["classes"]):
        lut[i] = CLASS_COLOURS.get(c, (255, 255, 255))
    lut[255] = (128, 128, 128)
    tw = thumb_width
    th = int(round(tw * truth["height"] / truth["width"]))
    text_h = 96  # six lines of small text (14 px apart)
    cells = []
    for i in idx:
        rgb = imgs.get(i)
        if rgb is None:
            raise CopilotError(f"video.mp4 has fewer frames than truth.json says ({i})")
        cells.append(_cell(feed, truth, i, rgb, lut, (tw, th), text_h))
    cols = 2 if len(cells) > 1 else 1
    rows = [np.concatenate(cells[r:r + cols] + [np.zeros_like(cells[0])] *
                           (cols - len(cells[r:r + cols])), 1) for r in range(0, len(cells), cols)]
    sheet = np.concatenate(rows, 0)
    sheet = np.concatenate([_legend(truth, idx, lut, sheet.shape[1]), sheet], 0)
    out = Path(out_png) if out_png is not None else feed / "contact_sheet.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                    dither=Image.Dither.NONE).save(out, optimize=True)
    return out


def _cell(feed: Path, truth: dict, i: int, rgb: np.ndarray, lut: np.ndarray,
          thumb: tuple[int, int], text_h: int) -> np.ndarray:
    """One cell of the sheet: frame ``i`` and its mask side by side (``thumb`` (w, h) px
    each), the truth at its time in ``text_h`` px of text below."""
    import cv2

    tw, th = thumb
    mpath = feed / "masks" / f"{i:06d}.png"
    mask = cv2.imread(str(mpath), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise CopilotError(f"missing mask {mpath}")
    a = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA)
    m = cv2.resize(mask, (tw, th), interpolation=cv2.INTER_NEAREST)
    ov = (a.astype(np.uint16) * 2 // 5 + lut[m].astype(np.uint16) * 3 // 5).astype(np.uint8)
    edge = (m != np.roll(m, 1, 0)) | (m != np.roll(m, 1, 1))
    ov[edge] = (255, 255, 255)
    cell = np.zeros((th + text_h, 2 * tw + 4, 3), np.uint8)
    cell[:th, :tw] = a
    cell[:th, tw + 4:] = ov
    _text(cell, _cell_lines(truth, i, tw), 4, th + 12)
    return cell


def _cell_lines(truth: dict, i: int, tw: int) -> list[str]:
    """The truth at frame ``i`` (phase / segment, CVS, tools, classes, nearby events, the
    line being spoken), wrapped to a cell ``2 * tw`` px wide, six lines at most."""
    fl = truth["frame_labels"]
    t = i / truth["fps"]
    lines = [f"t={t:6.2f}s  frame {i}"]
    if truth["scenario"] == "cholecystectomy":
        ph = fl["phase"][i]
        cvs = "".join(str(c) for c in fl["cvs"][i])
        lines[0] += f"  {PHASES[ph] if ph >= 0 else '-'}  CVS {cvs}"
    else:
        lines[0] += f"  segment {REGIONS[fl['region'][i]]}"
    tools = [TOOLS[k] for k, v in enumerate(fl["tools"][i]) if v]
    lines.append("tools: " + (", ".join(tools) or "-"))
    names = [truth["classes"][c] for c in fl["classes_present"][i] if c != 0]
    lines.append("classes: " + ", ".join(names))
    near = [e["kind"] for e in truth["events"] if abs(e["time_s"] - t) <= 1.0
            and e["kind"] not in ("cautery", "suction")]
    sp = [u for u in truth["utterances"] if u["start_s"] - 0.2 <= t <= u["end_s"] + 0.2]
    extra = []
    if near:
        extra.append("events: " + ", ".join(near))
    if sp:
        extra.append(f"{sp[0]['speaker']}: \"{sp[0]['text']}\"")
    lines += extra[:2]
    _wrap = []
    for ln in lines:
        maxc = int(2 * tw / 6.2)
        while len(ln) > maxc:
            _wrap.append(ln[:maxc])
            ln = "  " + ln[maxc:]
        _wrap.append(ln)
    return _wrap[:6]


def _legend(truth: dict, idx: list[int], lut: np.ndarray, width: int) -> np.ndarray:
    """Title line and a swatch per class present in frames ``idx``, ``width`` px wide."""
    import cv2

    fl, fps = truth["frame_labels"], truth["fps"]
    used = sorted({c for i in idx for c in fl["classes_present"][i]})
    leg = np.zeros((22 * ((len(used) + 5) // 6) + 24, width, 3), np.uint8)
    title = (f"{truth['scenario']}  seed {truth['seed']}  {truth['width']}x{truth['height']} "
             f"@ {fps:g} fps  {truth['duration_s']:.1f} s  left: frame, right: mask")
    _text(leg, [title], 6, 15, 0.42)
    colw = width // 6
    for k, c in enumerate(used):
        x, y = 6 + (k % 6) * colw, 26 + (k // 6) * 22
        cv2.rectangle(leg, (x, y), (x + 14, y + 14), tuple(int(v) for v in lut[c]), -1)
        _text(leg, [truth["classes"][c]], x + 18, y + 12, 0.4)
    return leg
