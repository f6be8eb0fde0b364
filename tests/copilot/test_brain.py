"""Brain: the vision adapter on real results, the bounded perception timeline, speed and
thread safety of on_findings, the overlay (coverage map, banners)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from brain_support import feed, frames, truth

from copilot.brain import Brain, findings_from_result
from copilot.overlay import AnnotationSet, Banner, Box, Compositor, Outline
from copilot.perception import PerceptionTimeline
from kg_reasoning.timeline import Observation
from vision.labels import CVS_CRITERIA, PHASES, REGIONS


@pytest.mark.slow
def test_adapter_maps_a_real_vision_result():
    from vision.pipeline import VisionPipeline
    from vision.sources import open_source

    pipe = VisionPipeline.load()
    results = {}
    for name in ("chole", "bowel"):
        src = open_source(str(feed(name) / "video.mp4"))
        i, t, rgb = next(iter(src))
        src.close()
        pipe.reset()
        results[name] = (rgb.shape, findings_from_result(pipe.process(rgb, i, t), i, t))
    (h, w, _), fs = results["chole"]
    kinds = {f.kind for f in fs}
    assert {"structure", "instrument", "region", "phase", "cvs"} <= kinds
    assert {f.name for f in fs if f.kind == "cvs"} == set(CVS_CRITERIA)
    assert all(f.name in PHASES for f in fs if f.kind == "phase")
    region = next(f for f in fs if f.kind == "region")
    assert region.name in REGIONS and (region.attrs["frame_w"], region.attrs["frame_h"]) == (w, h)
    for f in fs:
        assert 0.0 <= f.score <= 1.0 and f.frame_id == 0
        if f.kind == "structure":
            assert 0 < f.attrs["area"] <= 1 and all(0 <= c <= 1 for c in f.attrs["centroid"])
            for p in f.attrs["polygons"]:
                assert p.dtype == np.int32 and p.shape[1] == 2
                assert p[:, 0].max() <= w and p[:, 1].max() <= h
    _, fs = results["bowel"]
    assert not [f for f in fs if f.kind in ("phase", "cvs")]  # not a laparoscopic view
    assert next(f for f in fs if f.kind == "region").name.startswith("duodenum")


def test_timeline_keeps_recent_detail_and_bounded_history():
    tl = PerceptionTimeline(recent_s=60.0, record_hz=10.0, max_history=40_000)
    names = [f"s{k}" for k in range(8)]
    t = 0.0
    for fid in range(36_000):  # one hour at 10 Hz, 10 observations per frame
        t = fid * 0.1
        obs = [Observation(t, fid, "structure", n, 0.9, {"area": 0.01}) for n in names]
        obs += [Observation(t, fid, "region", "abdominal_cavity", 0.99),
                Observation(t, fid, "phase", PHASES[(fid // 6000) % 7], 0.9)]
        tl.add_frame(t, obs)
    sizes = tl.sizes()
    assert sizes["added"] == 360_000
    assert sizes["recent"] <= 60 * 10 * 10 + 10
    assert sizes["history"] <= 40_000  # 18 per second in history: about 37 min kept
    assert len(tl.window(t - 10, t, "structure")) == 10 * 10 * 8 + 8  # full detail
    old = tl.window(t - 1500, t - 1490, "structure")  # downsampled: 1 per name per s
    assert 8 * 9 <= len(old) <= 8 * 11
    # region / phase keep 5 per second in history
    assert 45 <= len(tl.window(t - 1500, t - 1490, "region")) <= 55
    assert not tl.window(0, t - 3000)  # the oldest went first
    assert tl.latest_t() == pytest.approx(t)
    w = tl.window(t - 1000, t)
    assert all(a.t_s <= b.t_s for a, b in zip(w, w[1:], strict=False))


def test_timeline_throttles_to_record_hz():
    tl = PerceptionTimeline(record_hz=5.0)
    kept = sum(tl.add_frame(i / 30, [Observation(i / 30, i, "region", "rectum", 0.9)])
               for i in range(300))
    assert 49 <= kept <= 51


@pytest.mark.slow
def test_on_findings_is_fast_and_thread_safe():
    fr = frames("chole")
    brain = Brain(scenario="cholecystectomy")
    times = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                brain.overlay(brain.frame_id)
                brain.timeline.window(0, 1e9)
                brain.visible_overlays()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    th = threading.Thread(target=reader)
    th.start()
    for fid, t, fs in fr:
        t0 = time.perf_counter()
        brain.on_findings(fid, t, fs)
        times.append((time.perf_counter() - t0) * 1e3)
    stop.set()
    th.join()
    assert not errors
    assert float(np.median(times)) < 2.0, f"median {np.median(times):.2f} ms"
    assert brain.timeline.frames > 0


@pytest.mark.slow
def test_overlay_draws_banner_outline_and_coverage_on_a_frame():
    brain = Brain(scenario="bowel-survey")
    alert_frame = None
    for fid, t, fs in frames("bowel"):
        if brain.on_findings(fid, t, fs) and alert_frame is None:
            alert_frame = fid
            break
    assert alert_frame is not None
    ann = brain.overlay(alert_frame)
    assert isinstance(ann, AnnotationSet) and ann.source == "brain"
    assert any(isinstance(i, Banner) for i in ann.items)
    assert any(isinstance(i, Box) for i in ann.items)  # coverage map cells
    assert any(isinstance(i, Outline) for i in ann.items)  # the vessel in red
    from copilot.messages import VideoFrame

    w, h = truth("bowel")["width"], truth("bowel")["height"]
    img = np.zeros((h, w, 3), np.uint8)
    out = Compositor(status_line=False).compose(
        VideoFrame(t_ns=0, trace_id="x", frame_id=alert_frame, image=img, fps=15.0), [ann])
    assert out.any()
    # the banner disappears after banner_s of media time
    later = frames("bowel")[-1]
    brain.on_findings(*later)
    ann2 = brain.overlay(later[0])
    assert ann2 is None or not any(isinstance(i, Banner) for i in ann2.items)


@pytest.mark.slow
def test_evidence_thumbnails_reach_the_session_and_report(tmp_path):
    from copilot.report import build_report
    from copilot.session import SessionLog, read_session
    from vision.sources import open_source

    fr = {fid: (t, fs) for fid, t, fs in frames("chole")}
    p = tmp_path / "session.jsonl"
    with SessionLog(p) as log:
        brain = Brain(scenario="cholecystectomy", session=log)
        src = open_source(str(feed("chole") / "video.mp4"))
        for i, t, rgb in src:
            brain.on_frame(i, t, rgb)
            if i in fr:
                brain.on_findings(i, *fr[i])
        src.close()
    s = read_session(p)
    alerts = s.of("alert")
    assert alerts and all(a["thumbnail"] for a in alerts)
    th = alerts[0]["thumbnail"]
    assert abs(th["t_s"] - alerts[0]["media_t_s"]) <= 0.5
    import base64

    import cv2

    img = cv2.imdecode(np.frombuffer(base64.b64decode(th["jpeg_b64"]), np.uint8), 1)
    assert img.shape[1] == 192 and img.mean() > 10
    assert len(brain._thumbs) <= brain.cfg.thumb_hz * brain.cfg.thumb_keep_s + 1
    html = build_report(p, tmp_path / "report.html").read_text()
    assert html.count("class='thumb'") == len(alerts)
