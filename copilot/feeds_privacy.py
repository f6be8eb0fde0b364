"""A test feed for privacy: out-of-body segments and burned-in text, with their truth.

``make_privacy_feed(out_dir)`` writes a feed folder (``video.mp4``, ``truth.json``,
``text_mask.png``): a synthetic cholecystectomy (``copilot.feeds.make_feed``) interrupted by
the kinds of view a laparoscope films when it is pulled out, each seen through the scope's
circular optics, entered and left through a few dark frames (the trocar):

- ``or_scene``: an operating room with staff whose faces come from a small procedural face
  generator (skin tone, eyes, brows, nose, mouth, hair, caps and masks vary by seed) and a
  wall monitor showing a real portrait (matplotlib's sample photograph of Grace Hopper);
- ``white``: a bright, nearly white frame (the scope against a lamp);
- ``room``: a hand-held view of a room (walls, window, door, cabinets, monitor, people),
  shaking and panning as a hand would.

Every frame carries tower text burned into its four corners, outside the circle (patient name,
id, date, hospital: ``truth["text"]`` and ``text_mask.png``). ``truth["hidden"]`` lists the
out-of-body spans (media s) and ``truth["hidden_frames"]`` their frame indices.

``python -m copilot.feeds_privacy OUT [--seconds S] [--seed N] [--size WxH] [--fps F]``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

from copilot.errors import CopilotError

TOWER_TEXT = ("DOE^JANE", "ID 42137", "07/12/26", "14:32:07")
#: (kind, start, end) as fractions of the feed; trocar frames open and close each span.
LAYOUT = (("or_scene", 0.17, 0.33), ("white", 0.46, 0.54), ("room", 0.67, 0.83))
TROCAR_FRAMES = 2


def _portrait() -> np.ndarray:
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def draw_face(img: np.ndarray, centre: tuple[int, int], size: int,
              rng: np.random.Generator) -> None:
    """Draw one procedural face (``size`` px tall) in place: a synthetic person."""
    x, y = centre
    tones = [(255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66),
             (141, 85, 36), (92, 56, 30)]
    skin = tuple(int(v) for v in tones[int(rng.integers(len(tones)))])
    rw, rh = int(size * rng.uniform(0.33, 0.4)), size // 2
    cv2.ellipse(img, (x, y), (rw, rh), 0, 0, 360, skin, -1, cv2.LINE_AA)
    hair = tuple(int(v) for v in rng.integers(10, 120, 3))
    if rng.random() < 0.5:  # surgical cap
        cap = (60, 110, 170) if rng.random() < 0.5 else (70, 140, 110)
        cv2.ellipse(img, (x, y - rh // 2), (rw + 2, rh // 2 + 2), 0, 180, 360, cap, -1)
    else:
        cv2.ellipse(img, (x, y - rh // 3), (rw + 3, rh * 2 // 3), 0, 190, 350, hair, -1)
    ey, ex = y - rh // 6, rw // 2
    for sx in (-1, 1):
        c = (x + sx * ex, ey)
        cv2.ellipse(img, c, (max(2, rw // 4), max(1, rh // 10)), 0, 0, 360, (250, 250, 250), -1)
        cv2.circle(img, c, max(1, rh // 12), tuple(int(v) for v in rng.integers(20, 110, 3)), -1)
        cv2.line(img, (c[0] - rw // 4, ey - rh // 5), (c[0] + rw // 4, ey - rh // 5 - 2),
                 hair, max(1, size // 40))
    if rng.random() < 0.5:  # surgical mask
        cv2.rectangle(img, (x - rw, y + rh // 8), (x + rw, y + rh * 3 // 4), (120, 170, 200), -1)
    else:
        cv2.line(img, (x, ey + 2), (x - rw // 6, y + rh // 5), (0, 0, 0), 1, cv2.LINE_AA)
        cv2.ellipse(img, (x, y + rh // 2 - 2), (rw // 3, max(1, rh // 10)), 0, 0, 180,
                    (150, 60, 60), max(1, size // 30), cv2.LINE_AA)


def _person(img: np.ndarray, x: int, floor: int, height: int, rng: np.random.Generator) -> None:
    gown = [(70, 120, 170), (60, 150, 120), (90, 100, 160)][int(rng.integers(3))]
    head = height // 5
    cv2.rectangle(img, (x - height // 5, floor - height + head), (x + height // 5, floor), gown, -1)
    draw_face(img, (x, floor - height + head // 2), head, rng)


def or_scene(w: int, h: int, rng: np.random.Generator, portrait: np.ndarray) -> np.ndarray:
    """An operating room: wall, drapes, lamp, a monitor with a portrait, 2-3 staff."""
    img = np.full((h, w, 3), (178, 184, 188), np.uint8)
    img[int(h * 0.7):] = (150, 152, 150)
    cv2.rectangle(img, (0, int(h * 0.62)), (w, h), (40, 110, 125), -1)  # draped table
    cv2.circle(img, (int(w * 0.8), int(h * 0.12)), h // 8, (252, 252, 240), -1)  # lamp
    mw, mh = w // 4, h // 4
    mx, my = int(w * 0.08), int(h * 0.08)
    cv2.rectangle(img, (mx - 4, my - 4), (mx + mw + 4, my + mh + 4), (25, 25, 25), -1)
    img[my:my + mh, mx:mx + mw] = cv2.resize(portrait, (mw, mh), interpolation=cv2.INTER_AREA)
    for _ in range(int(rng.integers(2, 4))):
        _person(img, int(rng.uniform(0.3, 0.9) * w), int(h * 0.75),
                int(h * rng.uniform(0.55, 0.75)), rng)
    return img


def room_canvas(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A room twice the view's size, panned over by ``room_view``."""
    cw, ch = w * 2, h * 2
    img = np.full((ch, cw, 3), (200, 196, 186), np.uint8)
    img[int(ch * 0.72):] = (120, 126, 132)  # floor
    cv2.rectangle(img, (int(cw * 0.08), int(ch * 0.15)), (int(cw * 0.3), int(ch * 0.45)),
                  (170, 205, 235), -1)  # window
    cv2.rectangle(img, (int(cw * 0.4), int(ch * 0.25)), (int(cw * 0.52), int(ch * 0.72)),
                  (110, 130, 150), -1)  # door
    for i in range(3):  # cabinets
        x0 = int(cw * (0.6 + 0.12 * i))
        cv2.rectangle(img, (x0, int(ch * 0.45)), (x0 + int(cw * 0.1), int(ch * 0.72)),
                      (150, 160, 175), -1)
    cv2.rectangle(img, (int(cw * 0.62), int(ch * 0.12)), (int(cw * 0.85), int(ch * 0.35)),
                  (30, 40, 60), -1)  # wall monitor
    for _ in range(int(rng.integers(2, 4))):
        _person(img, int(rng.uniform(0.1, 0.9) * cw), int(ch * 0.8),
                int(ch * rng.uniform(0.4, 0.55)), rng)
    return img


def room_view(canvas: np.ndarray, w: int, h: int, k: int, rng: np.random.Generator
              ) -> np.ndarray:
    """Frame ``k`` of a hand-held pan over ``canvas`` (shake and a little rotation)."""
    ch, cw = canvas.shape[:2]
    cx = cw / 2 + (cw - w) * 0.35 * np.sin(k / 9.0) + rng.normal(0, 4)
    cy = ch / 2 + (ch - h) * 0.2 * np.cos(k / 13.0) + rng.normal(0, 4)
    m = cv2.getRotationMatrix2D((cx, cy), float(rng.normal(0, 2.0)), 1.0)
    m[0, 2] -= cx - w / 2
    m[1, 2] -= cy - h / 2
    view = cv2.warpAffine(canvas, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    return cv2.GaussianBlur(view, (5, 5), 0)


def closeup_probe(w: int, h: int, rng: np.random.Generator, portrait: np.ndarray | None = None
                  ) -> np.ndarray:
    """A hard probe (not in the feed): one face filling the scope's circle, procedural, or
    the portrait photograph when given."""
    if portrait is not None:
        img = cv2.resize(portrait, (w, h), interpolation=cv2.INTER_AREA)
    else:
        img = np.full((h, w, 3), (180, 184, 188), np.uint8)
        draw_face(img, (w // 2, h // 2 + h // 20), int(h * 1.1), rng)
    fov = np.zeros((h, w), np.uint8)
    cv2.circle(fov, (w // 2, h // 2), int(min(w * 0.43, h * 0.76)), 255, -1)
    return cv2.bitwise_and(img, img, mask=fov)


def white_frame(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A bright, nearly white frame with a faint gradient and noise."""
    g = np.linspace(238, 255, w, dtype=np.float32)[None, :, None]
    img = np.broadcast_to(g, (h, w, 3)) + rng.normal(0, 3, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def text_layer(w: int, h: int, fov: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """(mask of the tower text (uint8 0/255), its boxes) in the four corners outside ``fov``."""
    scale = max(0.26, h / 900)
    thick = 1
    mask = np.zeros((h, w), np.uint8)
    boxes = []
    pad = 3
    for i, text in enumerate(TOWER_TEXT):
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        right, bottom = i % 2 == 1, i >= 2
        x = w - tw - pad if right else pad
        y = h - int(h * 0.11) if bottom else th + pad
        cv2.putText(mask, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick,
                    cv2.LINE_AA)
        boxes.append({"text": text, "box": [x, y - th, x + tw, y + base]})
    if np.count_nonzero(mask & fov):
        raise CopilotError(f"the tower text does not fit outside the field of view at {w}x{h}; "
                           "use a wider frame (e.g. 428x240)")
    return mask, boxes


def make_privacy_feed(out_dir: str | Path, seconds: float = 12.0, seed: int = 0,
                      size: tuple[int, int] = (428, 240), fps: float = 10.0) -> Path:
    """Write the privacy feed folder (see the module doc); returns its path."""
    import av

    from copilot.feeds import make_feed
    from vision.writer import Mp4Writer

    w, h = size
    out = Path(out_dir)
    base = out / "_base"
    make_feed(base, "cholecystectomy", seconds, seed, size=(w, h), fps=fps, audio=False)
    with av.open(str(base / "video.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    shutil.rmtree(base, ignore_errors=True)
    n = len(frames)
    lit = np.max(np.stack(frames[: min(n, 10)]), axis=0).max(axis=2) > 40
    fov = np.zeros((h, w), np.uint8)
    pts = cv2.findNonZero(lit.astype(np.uint8))
    cv2.fillConvexPoly(fov, cv2.convexHull(pts), 255)
    fov = cv2.erode(fov, np.ones((5, 5), np.uint8))  # the optics' dark rim
    text, boxes = text_layer(w, h, cv2.dilate(fov, np.ones((25, 25), np.uint8)))  # >= 12 px
    rng = np.random.default_rng(seed + 9176)
    portrait = _portrait()
    canvas = room_canvas(w, h, rng)
    spans, hidden_frames = [], []
    kinds = [""] * n
    for kind, a, b in LAYOUT:
        i0, i1 = int(round(a * n)), int(round(b * n))
        for i in range(i0, min(i1, n)):
            kinds[i] = kind
        spans.append({"kind": kind, "start_s": round(i0 / fps, 4), "end_s": round(i1 / fps, 4),
                      "first_frame": i0, "last_frame": i1 - 1})
        hidden_frames.extend(range(i0, min(i1, n)))
    scene = None
    for i, kind in enumerate(kinds):
        if not kind:
            continue
        first = i == 0 or kinds[i - 1] != kind
        last = i == n - 1 or kinds[i + 1] != kind
        k = i - next(s["first_frame"] for s in spans if s["kind"] == kind)
        if k < TROCAR_FRAMES or (last and kind != "white"):  # inside the trocar: dark
            view = np.full((h, w, 3), 6, np.uint8)
        elif kind == "or_scene":
            if first or scene is None or k == TROCAR_FRAMES:
                scene = or_scene(w, h, rng, portrait)
            dx = int(3 * np.sin(k / 3.0))
            view = np.roll(scene, dx, axis=1)
        elif kind == "white":
            view = white_frame(w, h, rng)
        else:
            view = room_view(canvas, w, h, k, rng)
        frames[i] = view if kind == "room" else cv2.bitwise_and(view, view, mask=fov)
    video = out / "video.mp4"
    with Mp4Writer(video, fps, (w, h), crf=18) as wr:
        for f in frames:
            f = f.copy()
            f[text > 0] = 255  # the tower's white text over everything
            wr.write(f)
    cv2.imwrite(str(out / "text_mask.png"), text)
    truth = {"scenario": "cholecystectomy", "seed": seed, "fps": fps, "size": [w, h],
             "n_frames": n, "hidden": spans, "hidden_frames": hidden_frames, "text": boxes,
             "note": "synthetic out-of-body spans and tower text (copilot.feeds_privacy)"}
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: make the privacy feed folder."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m copilot.feeds_privacy", description=__doc__
                                .split("\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--seconds", type=float, default=12.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="428x240", help="WxH")
    p.add_argument("--fps", type=float, default=10.0)
    a = p.parse_args(argv)
    try:
        w, h = (int(v) for v in a.size.lower().split("x"))
        path = make_privacy_feed(a.out, a.seconds, a.seed, (w, h), a.fps)
    except (CopilotError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
