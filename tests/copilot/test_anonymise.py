"""Privacy by default (issue 22): on a feed with out-of-body spans and burned-in tower text,
no pixel of those spans and no text pixel reaches annotated.mp4, the UI stream or the report's
images; the spans are in the session log and the report; answers are withheld meanwhile.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from copilot.privacy import Anonymiser, hidden_frame
from copilot.sinks import FrameSink

ASK_AT = {"bookmark": (10, 30, 90, 110), "phase": (30, 110)}  # frame ids (30, 90: hidden)


class Recorder(FrameSink):
    """Keeps every frame it is given: what the UI stream is sent (the UI's LatestFrameSink
    gets the same arrays from the compose loop). ``on_frame(frame_id)`` is called first."""

    name = "recorder"

    def __init__(self, on_frame: Callable[[int], None] | None = None) -> None:
        self.frames: dict[int, np.ndarray] = {}
        self.on_frame = on_frame

    def open(self, fps: float, size: tuple[int, int]) -> None:
        pass

    def write(self, frame_id: int, rgb: np.ndarray) -> None:
        if self.on_frame is not None:
            self.on_frame(frame_id)
        self.frames[frame_id] = rgb.copy()

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def pfeed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from copilot.feeds_privacy import make_privacy_feed

    return make_privacy_feed(tmp_path_factory.mktemp("pfeed") / "feed", seconds=12.0, seed=3)


def _run(feed: Path, out: Path, anonymise: bool = True) -> tuple[object, Recorder]:
    """Run the copilot on ``feed``; typed commands at the frames of ``ASK_AT``."""
    from copilot.app import Copilot, RunConfig

    holder: dict[str, Copilot] = {}

    def ask(frame_id: int) -> None:
        for what, frames in ASK_AT.items():
            if frame_id in frames:
                holder["app"].ask("copilot, bookmark this" if what == "bookmark"
                                  else "copilot, what phase are we in?")

    rec = Recorder(ask)
    cfg = RunConfig(source=str(feed), out=out, vision="heuristic", speech="off",
                    anonymise=anonymise, analyse_every=1)
    app = holder["app"] = Copilot(cfg, extra_sinks=[rec])
    app.compose()
    return app.run(), rec


@pytest.fixture(scope="module")
def runs(pfeed: Path, tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("prun")
    res, rec = _run(pfeed, d / "on")
    return res, rec, d / "on"


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _truth(feed: Path) -> tuple[dict, np.ndarray]:
    truth = json.loads((feed / "truth.json").read_text())
    mask = cv2.imread(str(feed / "text_mask.png"), cv2.IMREAD_GRAYSCALE) > 0
    return truth, mask


def _status_top(h: int) -> int:
    """Rows from here down hold the copilot's own status line (drawn after anonymising)."""
    return h - max(24, h // 8)


def text_contrast(f: np.ndarray, truth: dict, text: np.ndarray) -> float:
    """Largest, over the tower-text boxes, of mean(text pixels) - mean(other pixels) in the
    box (grey levels): burned-in white text gives ~200; a blacked-out or hidden box 0. The
    copilot's own drawings (e.g. a "vision stale" note) fall on both kinds of pixel alike."""
    g = f.max(axis=2).astype(np.float32)
    out = 0.0
    for b in truth["text"]:
        x0, y0, x1, y1 = b["box"]
        m, v = text[y0:y1, x0:x1], g[y0:y1, x0:x1]
        out = max(out, float(v[m].mean() - v[~m].mean()))
    return out


def _check_frames(frames: dict[int, np.ndarray], truth: dict, text: np.ndarray, tol: float
                  ) -> None:
    """No hidden-span frame survives (each is the grey frame) and no tower text survives."""
    hidden = set(truth["hidden_frames"])
    h, w = text.shape
    top = _status_top(h)
    grey = hidden_frame(w, h)[:top].astype(np.int16)
    assert len(frames) == truth["n_frames"]
    for i, f in frames.items():
        if i in hidden:
            diff = np.abs(f[:top].astype(np.int16) - grey).mean()
            assert diff < tol, (i, diff)
        assert text_contrast(f, truth, text) < 30, (i, text_contrast(f, truth, text))


def test_source_feed_has_what_must_be_hidden(pfeed: Path):
    truth, text = _truth(pfeed)
    frames = _decode(pfeed / "video.mp4")
    assert {s["kind"] for s in truth["hidden"]} == {"or_scene", "white", "room"}
    assert min(f[text].mean() for f in frames) > 200  # the text is burned into every frame


def test_video_and_ui_stream_hold_no_hidden_pixel_and_no_text(pfeed: Path, runs):
    res, rec, out = runs
    assert res.exit_code == 0, res.error
    truth, text = _truth(pfeed)
    _check_frames(rec.frames, truth, text, tol=1.0)  # the UI stream: exact arrays
    video = dict(enumerate(_decode(out / "annotated.mp4")))
    _check_frames(video, truth, text, tol=6.0)  # H.264 round trip


def test_in_body_frames_stay_visible(pfeed: Path, runs):
    _, rec, _ = runs
    truth, _ = _truth(pfeed)
    hidden_truth = set(truth["hidden_frames"])
    h, w = next(iter(rec.frames.values())).shape[:2]
    grey = hidden_frame(w, h)[: _status_top(h)].astype(np.int16)
    shown_as_grey = [i for i, f in rec.frames.items() if i not in hidden_truth and
                     np.abs(f[: _status_top(h)].astype(np.int16) - grey).mean() < 1.0]
    # only the hysteresis tail after each span (0.4 s = 4 frames at 10 fps)
    assert len(shown_as_grey) <= 5 * len(truth["hidden"]), shown_as_grey


def test_spans_recorded_in_session_and_report(pfeed: Path, runs):
    from copilot.session import read_session

    _, _, out = runs
    truth, _ = _truth(pfeed)
    s = read_session(out / "session.jsonl")
    assert s.first("start")["anonymise"] is True
    spans = s.of("hidden")
    assert len(spans) == len(truth["hidden"])
    for got, want in zip(spans, truth["hidden"], strict=True):
        assert got["start_s"] <= want["start_s"] + 1e-6 and got["end_s"] >= want["end_s"] - 1e-6
        assert got["reason"] == "out of body"  # trocar frames (no field of view) included
        assert set(got["causes"]) == {"out of body", "no field of view"}, got
        assert "jpeg_b64" not in json.dumps(got)
    html = (out / "report.html").read_text()
    assert re.search(r"0:02-0:0[4-5] hidden: out of body", html), html[:2000]


def test_report_images_hold_no_hidden_frame_and_no_text(pfeed: Path, runs):
    from copilot.session import read_session

    _, _, out = runs
    truth, text = _truth(pfeed)
    hidden = set(truth["hidden_frames"])
    s = read_session(out / "session.jsonl")
    thumbs = [r["thumbnail"] for r in s.of("bookmark", "alert") if r.get("thumbnail")]
    assert len(s.of("bookmark")) == len(ASK_AT["bookmark"])
    assert thumbs, "in-body bookmarks carry a thumbnail"
    html = (out / "report.html").read_text()
    imgs = re.findall(r"data:image/jpeg;base64,([A-Za-z0-9+/=]+)", html)
    assert len(imgs) == len(thumbs)
    for th in thumbs:
        assert th["frame_id"] not in hidden, th
        img = cv2.imdecode(np.frombuffer(base64.b64decode(th["jpeg_b64"]), np.uint8),
                           cv2.IMREAD_GRAYSCALE)
        small = cv2.resize(text.astype(np.uint8) * 255, img.shape[::-1],
                           interpolation=cv2.INTER_AREA) > 20
        assert img[small].max() < 80, th["frame_id"]  # the corners are black


def test_answers_are_withheld_while_hidden(runs):
    from copilot.session import read_session

    _, _, out = runs
    answers = [a for a in read_session(out / "session.jsonl").of("answer")
               if a.get("intent") == "current_phase"]
    assert len(answers) == len(ASK_AT["phase"])
    during, after = sorted(answers, key=lambda a: a["media_t_s"])
    assert during["abstained"] and "hidden" in during["reason"], during
    assert "hidden" not in (after.get("reason") or ""), after


def test_no_anonymise_keeps_the_text_and_says_so(pfeed: Path, tmp_path: Path):
    from copilot.session import read_session

    res, rec = _run(pfeed, tmp_path / "off", anonymise=False)
    assert res.exit_code == 0, res.error
    truth, text = _truth(pfeed)
    contrast = [text_contrast(f, truth, text) for f in rec.frames.values()]
    assert min(contrast) > 100, min(contrast)  # the check above can fail (white frame: 110)
    assert read_session(tmp_path / "off" / "session.jsonl").first("start")["anonymise"] is False
    assert "Not anonymised" in (tmp_path / "off" / "report.html").read_text()


def test_hysteresis_fails_safe_and_fov_not_found_hides():
    an = Anonymiser(clear_s=0.25, clear_frames=3)
    tissue = np.zeros((120, 160, 3), np.uint8)
    cv2.circle(tissue, (80, 60), 58, (180, 60, 50), -1)
    room = np.full((120, 160, 3), (60, 140, 170), np.uint8)
    dark = np.full((120, 160, 3), 4, np.uint8)
    seq = [tissue, room, tissue, tissue, tissue, tissue, dark, tissue, tissue, tissue, tissue]
    flags = []
    for i, f in enumerate(seq):
        an.process(i, i * 0.1, f.copy())
        flags.append(an.is_hidden(i))
    assert flags == [False, True, True, True, True, False, True, True, True, True, False]
    assert [s.reason for s in an.spans] == ["out of body", "no field of view"]
    assert an.is_hidden(999)  # a frame never checked counts as hidden


def _mixed(score_target: str) -> np.ndarray:
    """A circular view; "between": tissue, drapes and grey (colour score ~0.39, under the
    threshold but leaning outside); "tissue": all tissue (score ~0)."""
    img = np.zeros((120, 160, 3), np.uint8)
    cv2.circle(img, (80, 60), 58, (180, 60, 50), -1)
    if score_target == "between":
        img[:, 100:] = np.where(img[:, 100:] > 0, 150, 0).astype(np.uint8)  # grey
        img[:, 84:100] = np.where(img[:, 84:100] > 0, np.array([40, 110, 125], np.uint8), 0)
    return img


def test_fresh_vision_verdict_hides_more_never_less():
    from copilot.privacy import DEFAULT_THRESHOLD, VISION_CONFIRM

    between, tissue = _mixed("between"), _mixed("tissue")
    an = Anonymiser()
    s = an.check(between.copy()).score
    assert VISION_CONFIRM <= s < DEFAULT_THRESHOLD, s
    an.process(0, 0.0, between.copy())
    assert not an.is_hidden(0)  # colour alone: shown
    an.note_vision(0.1, "abdominal_cavity", 0.9, in_domain=0.05, off_label=True)
    an.process(1, 0.2, between.copy())
    an.process(2, 0.3, tissue.copy())
    assert an.is_hidden(1) and an.is_hidden(2)  # off-label + leaning outside; hysteresis
    assert an.spans == [] and an.hiding
    for i in range(3, 12):  # the verdict goes stale after fresh_s; tissue clears the span
        an.process(i, i * 0.1, tissue.copy())
    assert not an.is_hidden(11) and an.spans[0].causes == {
        "vision: off-label (in-domain 0.05)": 1}
    an.note_vision(1.2, "out_of_body", 0.95)  # the region head, sure: tissue stays shown
    an.process(12, 1.2, tissue.copy())
    assert not an.is_hidden(12)
    an.process(13, 1.3, between.copy())
    assert an.is_hidden(13)
    an.note_vision(1.4, "abdominal_cavity", 0.99, in_domain=0.99, off_label=False)
    an.process(14, 1.4, _room_like())
    assert an.is_hidden(14)  # an in-domain verdict never un-hides what the colours hide


def _room_like() -> np.ndarray:
    img = np.zeros((120, 160, 3), np.uint8)
    cv2.circle(img, (80, 60), 58, (40, 110, 125), -1)
    return img


def test_app_reads_the_vision_domain_finding(pfeed: Path):
    """The app hands the region and domain findings of an analysed frame to the anonymiser."""
    from copilot.app import Copilot, RunConfig
    from copilot.messages import Finding, OverlayUpdate

    app = Copilot(RunConfig(source=str(pfeed), vision="heuristic", speech="off"))
    got: list[tuple] = []

    class Spy(Anonymiser):
        def note_vision(self, *a, **k) -> None:  # noqa: ANN002, ANN003
            got.append((a, k))

    app.privacy = Spy()
    base = {"t_ns": 0, "trace_id": "f3", "media_t_s": 0.3, "frame_id": 3, "source": "vision"}
    findings = [Finding(**base, kind="region", name="out_of_body", score=0.9),
                Finding(**base, kind="domain", name="in_domain", score=0.1,
                        attrs={"off_label": True})]
    msg = OverlayUpdate(t_ns=0, trace_id="f3", media_t_s=0.3, frame_id=3, annotations=None)
    assert app._vision_privacy(msg, findings) is True  # frame 3 never processed: hidden
    assert got == [((0.3, "out_of_body", 0.9, 0.1, True), {})]


def test_report_of_a_run_cut_while_hidden(tmp_path: Path):
    """A session cut mid-span (no "hidden" record, no end) still shows where hiding began."""
    from copilot.report import build_report
    from copilot.session import SessionLog

    log = SessionLog(tmp_path / "session.jsonl")
    log.write("start", source="x", mode="fast", anonymise=True)
    log.write("hidden", media_t_s=2.0, start_s=2.0, end_s=4.4, reason="out of body",
              frames=24, causes={"out of body": 18, "no field of view": 2})
    log.write("hiding", media_t_s=2.0, reason="out of body")
    log.write("hiding", media_t_s=41.2, reason="no field of view")
    log.close()
    html = build_report(tmp_path / "session.jsonl", tmp_path / "r.html").read_text()
    assert "0:02-0:04 hidden: out of body (24 frames)" in html
    assert "0:41- hidden: no field of view (the run ended while hidden)" in html
    assert "2 hidden span(s)" in html
