"""Synthetic recorded feeds: files, truth consistency, determinism, CLI, contact sheet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import soundfile as sf

from copilot.errors import CopilotError
from copilot.feeds import (
    DEMO_RECIPE,
    fact_in_answer,
    load_truth,
    make_feed,
    parse_event,
    parse_size,
    show_feed,
    validate_truth,
)
from vision.errors import VisionError
from vision.labels import CLASS_ID, PHASES, SEGMENTS, TOOLS

INTENTS = {"outline_structure", "hide_overlay", "show_overlay", "identify_structure",
           "missed_segments", "cvs_status", "skipped_step", "relation_query", "locate_structure",
           "current_phase", "show_coverage", "explain", "repeat", "stop", "acknowledge",
           "mute_alerts", "bookmark"}

CHOLE_EVENTS = ["large_vessel@3", "clip_before_cvs@8.5", "bleeding@13",
                "skip_phase:CleaningCoagulation"]
BOWEL_EVENTS = ["large_vessel@7.5", "brief_segment:jejunum"]


@pytest.fixture(scope="session")
def chole(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("feeds") / "chole"
    return make_feed(out, "cholecystectomy", 20, seed=3, size=(320, 240), fps=15,
                     events=CHOLE_EVENTS)


@pytest.fixture(scope="session")
def bowel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("feeds") / "bowel"
    return make_feed(out, "bowel-survey", 16, seed=4, size=(320, 240), fps=15,
                     skip_segments=["duodenum_d4"], events=BOWEL_EVENTS, route="upper")


def _decode(path: Path) -> tuple[list[np.ndarray], dict]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        info = {"codec": s.codec_context.name, "rate": float(s.average_rate), "w": s.width,
                "h": s.height}
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return frames, info


def _masks(feed: Path, n: int) -> list[np.ndarray]:
    return [cv2.imread(str(feed / "masks" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
            for i in range(n)]


@pytest.mark.parametrize("name", ["chole", "bowel"])
def test_files_and_durations(name, request):
    feed = request.getfixturevalue(name)
    truth = load_truth(feed)
    validate_truth(truth)
    frames, info = _decode(feed / "video.mp4")
    assert info["codec"] == "h264"
    assert (info["w"], info["h"]) == (truth["width"], truth["height"]) == (320, 240)
    assert info["rate"] == pytest.approx(truth["fps"])
    assert len(frames) == truth["n_frames"] == round(truth["duration_s"] * truth["fps"])
    audio, sr = sf.read(str(feed / "audio.wav"), dtype="int16")
    assert sr == 16000 and audio.ndim == 1
    assert abs(len(audio) / sr - len(frames) / truth["fps"]) <= 1 / truth["fps"]
    assert len(list((feed / "masks").glob("*.png"))) == truth["n_frames"]
    for key in ("phase", "region", "cvs", "tools", "classes_present"):
        assert len(truth["frame_labels"][key]) == truth["n_frames"]


@pytest.mark.parametrize("name", ["chole", "bowel"])
def test_classes_present_match_masks(name, request):
    feed = request.getfixturevalue(name)
    truth = load_truth(feed)
    masks = _masks(feed, truth["n_frames"])
    for i, m in enumerate(masks):
        assert m.dtype == np.uint8 and m.shape == (truth["height"], truth["width"])
        present = set(np.unique(m).tolist()) - {255}
        assert present == set(truth["frame_labels"]["classes_present"][i]), i
        assert max(present) < len(truth["classes"])


@pytest.mark.parametrize("name", ["chole", "bowel"])
def test_masks_consistent_with_pixels(name, request):
    """Outside the field of view is black; lumen is darker than mucosa; blood is red."""
    feed = request.getfixturevalue(name)
    truth = load_truth(feed)
    frames, _ = _decode(feed / "video.mp4")
    masks = _masks(feed, truth["n_frames"])
    for i in range(0, truth["n_frames"], 7):
        rgb, m = frames[i].astype(np.float32), masks[i]
        bg = m == 0
        inner = cv2.erode(bg.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert rgb[inner].mean() < 12
        assert rgb[~bg].mean() > 40
        lum = m == CLASS_ID["lumen"]
        gi = m == CLASS_ID["gi_tract"]
        if lum.sum() > 50 and gi.sum() > 50:
            assert rgb[lum].mean() < 0.5 * rgb[gi].mean()
        blood = m == CLASS_ID["blood"]
        if blood.sum() > 100:
            r, g, b = rgb[blood].mean(0)
            assert r > g + 40 and r > b + 40


def test_events_phases_utterances_within_duration(chole, bowel):
    for feed in (chole, bowel):
        t = load_truth(feed)
        dur, n = t["duration_s"], t["n_frames"]
        for e in t["events"]:
            assert 0 <= e["time_s"] < dur and 0 <= e["frame"] < n
            assert abs(e["frame"] - e["time_s"] * t["fps"]) <= 1
        for iv in t["phases"] + t["segments"]:
            assert 0 <= iv["start_s"] < iv["end_s"] <= dur + 1e-6
            assert 0 <= iv["start_frame"] < iv["end_frame"] <= n
        for u in t["utterances"]:
            assert 0 <= u["start_s"] < u["end_s"] <= dur
        ends = [u["end_s"] for u in t["utterances"]]
        starts = [u["start_s"] for u in t["utterances"]]
        assert all(s >= e for s, e in zip(starts[1:], ends[:-1], strict=False))


def test_chole_phases_and_events(chole):
    t = load_truth(chole)
    names = [p["name"] for p in t["phases"]]
    assert "CleaningCoagulation" not in names
    assert names == [p for p in PHASES if p in names]  # Cholec80 order
    fl = t["frame_labels"]
    for p in t["phases"]:
        assert set(fl["phase"][p["start_frame"]:p["end_frame"]]) == {PHASES.index(p["name"])}
    kinds = {e["kind"] for e in t["events"]}
    assert {"phase_skipped", "clip_applied", "bleeding_onset", "large_vessel"} <= kinds
    skipped = [e for e in t["events"] if e["kind"] == "phase_skipped"]
    assert skipped[0]["phase"] == "CleaningCoagulation"
    clips = [e for e in t["events"] if e["kind"] == "clip_applied"]
    assert clips[0]["time_s"] == pytest.approx(8.5, abs=1e-3)
    assert clips[0]["cvs_reached"] is False
    assert not all(fl["cvs"][clips[0]["frame"]])
    # CVS criteria never switch off again
    cvs = np.array(fl["cvs"])
    assert (np.diff(cvs, axis=0) >= 0).all()


def test_chole_classes_follow_events(chole):
    t = load_truth(chole)
    fl = t["frame_labels"]
    pres = [set(c) for c in fl["classes_present"]]
    ev = {e["kind"]: e for e in reversed(t["events"])}
    for kind, cls in (("bleeding_onset", "blood"), ("large_vessel", "large_vessel"),
                      ("clip_applied", "clip")):
        f0 = ev[kind]["frame"]
        cid = CLASS_ID[cls]
        assert not any(cid in p for p in pres[:f0]), kind
        after = pres[f0:f0 + int(t["fps"])]
        assert sum(cid in p for p in after) >= 0.5 * len(after), kind
    # instruments in the masks agree with the tool flags
    tools = np.array(fl["tools"])
    g = np.array([CLASS_ID["grasper"] in p for p in pres])
    assert (tools[:, TOOLS.index("Grasper")] == g).all()
    h = np.array([CLASS_ID["l_hook"] in p for p in pres])
    assert (tools[:, TOOLS.index("Hook")] == h).all()
    assert h.any() and g.any()


def test_bowel_segments_and_events(bowel):
    t = load_truth(bowel)
    names = [s["name"] for s in t["segments"]]
    assert names == ["duodenum_d1", "duodenum_d2", "duodenum_d3", "jejunum", "ileum"]
    assert names == sorted(names, key=SEGMENTS.index)
    fl = t["frame_labels"]
    assert set(fl["phase"]) == {-1}
    for s in t["segments"]:
        assert set(fl["region"][s["start_frame"]:s["end_frame"]]) == {1 + SEGMENTS.index(
            s["name"])}
    missed = [e for e in t["events"] if e["kind"] == "segment_missed"]
    assert [e["segment"] for e in missed] == ["duodenum_d4"]
    brief = [s for s in t["segments"] if s["name"] == "jejunum"][0]
    assert brief["end_s"] - brief["start_s"] < 1.0
    lv = [e for e in t["events"] if e["kind"] == "large_vessel"][0]
    assert lv["location"] == "duodenum_d3" and lv["pulsatile"] is True
    pres = [set(c) for c in fl["classes_present"]]
    assert CLASS_ID["large_vessel"] in pres[lv["frame"]]
    assert all(CLASS_ID["lumen"] in p and CLASS_ID["gi_tract"] in p for p in pres)


def test_utterances_truth(chole, bowel):
    seen = set()
    for feed in (chole, bowel):
        t = load_truth(feed)
        audio, sr = sf.read(str(feed / "audio.wav"), dtype="float32")
        floor = t["noise"]["floor_rms"]
        assert any(not u["addressed"] for u in t["utterances"])
        for u in t["utterances"]:
            if u["addressed"]:
                assert u["text"].lower().startswith("copilot")
                assert u["intent"] in INTENTS
                seen.add(u["intent"])
            else:
                assert u["intent"] is None and "copilot" not in u["text"].lower()
            seg = audio[int(u["start_s"] * sr):int(u["end_s"] * sr)]
            assert np.sqrt(np.mean(seg ** 2)) > 3 * floor  # speech is really there
        # continuous noise floor: no 20 ms window of digital silence anywhere
        w = audio[: len(audio) // 320 * 320].reshape(-1, 320)
        assert (np.sqrt((w ** 2).mean(1)) > 1e-3).all()
    assert {"relation_query", "identify_structure", "cvs_status", "outline_structure"} <= seen
    # "what is this large vessel?" is asked while the vessel is in view
    for feed in (chole, bowel):
        t = load_truth(feed)
        pres = t["frame_labels"]["classes_present"]
        for u in t["utterances"]:
            if u["intent"] == "identify_structure":
                f0 = int(u["start_s"] * t["fps"])
                assert CLASS_ID["large_vessel"] in pres[f0], feed.name
    lines = {u["intent"]: u for u in load_truth(bowel)["utterances"] if u["addressed"]}
    # expected from the scene's own truth (where the vessel is, that it pulses), not from the
    # reasoner's tables
    vessel = next(e for e in load_truth(bowel)["events"] if e["kind"] == "large_vessel")
    assert lines["identify_structure"]["expected_facts"] == [vessel["location"], "pulsatile"]
    assert lines["relation_query"]["slots"] == {"relation": "posterior",
                                                "structure": "duodenum_d3"}


def test_demo_recipe_script(tmp_path):
    """The shipped demo recipe, rendered tiny: questions, chatter, clip before CVS, bleed."""
    recipe = {**DEMO_RECIPE, "size": (128, 96), "fps": 4.0}
    t = load_truth(make_feed(tmp_path / "demo", **recipe))
    intents = {u["intent"] for u in t["utterances"] if u["addressed"]}
    assert {"outline_structure", "cvs_status", "bookmark", "skipped_step",
            "mute_alerts"} <= intents
    assert sum(not u["addressed"] for u in t["utterances"]) >= 1
    clips = [e for e in t["events"] if e["kind"] == "clip_applied"]
    assert clips and clips[0]["cvs_reached"] is False
    assert any(e["kind"] == "bleeding_onset" for e in t["events"])
    cvs_q = [u for u in t["utterances"] if u["intent"] == "cvs_status"][0]
    assert "not reached" in cvs_q["expected_facts"]
    assert 60 <= t["duration_s"] <= 90


def test_determinism(tmp_path):
    kw = dict(scenario="cholecystectomy", seconds=2.0, seed=11, size=(160, 128), fps=10,
              events=["bleeding@1"])
    a = make_feed(tmp_path / "a", **kw)
    b = make_feed(tmp_path / "b", **kw)
    c = make_feed(tmp_path / "c", **{**kw, "seed": 12})
    assert (a / "truth.json").read_bytes() == (b / "truth.json").read_bytes()
    fa, fb, fc = (_decode(x / "video.mp4")[0] for x in (a, b, c))
    assert len(fa) == len(fb) == 20
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(fa, fc, strict=True))
    assert (a / "audio.wav").read_bytes() == (b / "audio.wav").read_bytes()
    for i in (0, 19):
        name = f"masks/{i:06d}.png"
        assert np.array_equal(cv2.imread(str(a / name), -1), cv2.imread(str(b / name), -1))


def test_ntsc_rate_and_single_string_arguments(tmp_path):
    feed = make_feed(tmp_path / "n", "bowel-survey", 6, seed=1, size=(128, 96), fps=29.97,
                     skip_segments="ileum", events="large_vessel@3", route="upper", audio=False)
    t = load_truth(feed)
    frames, info = _decode(feed / "video.mp4")
    assert len(frames) == t["n_frames"] == 180 and info["rate"] == pytest.approx(29.97)
    assert [e["kind"] for e in t["events"]] == ["large_vessel", "segment_missed"]


def test_bad_arguments(tmp_path):
    with pytest.raises(CopilotError, match="bad event"):
        parse_event("bleeding")
    with pytest.raises(CopilotError, match="bad event"):
        parse_event("explode@3")
    assert parse_event("skip_phase:CleaningCoagulation").arg == "CleaningCoagulation"
    assert parse_event("bleeding@20").time_s == 20.0
    with pytest.raises(CopilotError, match="even"):
        parse_size("321x240")
    with pytest.raises(CopilotError, match="WIDTHxHEIGHT"):
        parse_size("big")
    with pytest.raises(CopilotError, match="scenario"):
        make_feed(tmp_path / "x", "appendectomy", 2, size=(128, 96))
    with pytest.raises(VisionError, match="outside the feed"):
        make_feed(tmp_path / "x", "cholecystectomy", 2, size=(128, 96), events=["bleeding@5"])
    with pytest.raises(VisionError, match="unknown phase"):
        make_feed(tmp_path / "x", "cholecystectomy", 2, size=(128, 96),
                  events=["skip_phase:Nope"])
    with pytest.raises(CopilotError, match="bowel-survey"):
        make_feed(tmp_path / "x", "cholecystectomy", 2, size=(128, 96),
                  skip_segments=["ileum"])
    with pytest.raises(VisionError, match="unknown segment"):
        make_feed(tmp_path / "x", "bowel-survey", 8, size=(128, 96), skip_segments=["colon"])


def test_show_feed(chole, bowel, tmp_path):
    for feed in (chole, bowel):
        out = show_feed(feed, tmp_path / f"{feed.name}.png", n=6)
        img = cv2.imread(str(out))
        assert img is not None and img.shape[1] >= 2 * 240
        assert out.stat().st_size < 500_000


def test_fact_in_answer():
    assert fact_in_answer("duodenum_d3", "You did not view the third part of the duodenum.")
    assert fact_in_answer("CalotTriangleDissection", "We are in Calot triangle dissection.")
    assert fact_in_answer("not reached", "The critical view has not been reached yet.")
    assert not fact_in_answer("abdominal_aorta", "The inferior vena cava lies behind it.")


def test_cli_feed(tmp_path):
    exe = [sys.executable, "-m", "copilot.cli", "feed"]
    r = subprocess.run(exe + ["make", str(tmp_path / "f"), "--seconds", "1.5", "--size",
                              "128x96", "--fps", "8", "--event", "bleeding@0.5", "--no-speech"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    t = json.loads((tmp_path / "f" / "truth.json").read_text())
    assert t["n_frames"] == 12 and t["utterances"] == []
    r = subprocess.run(exe + ["show", str(tmp_path / "f"), "--out", str(tmp_path / "s.png")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and (tmp_path / "s.png").is_file()
    r = subprocess.run(exe + ["make", str(tmp_path / "g"), "--event", "bleeding"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.startswith("error: bad event") and r.stderr.count("\n") == 1


def test_make_demo_feed_generates_once(tmp_path, monkeypatch):
    import copilot.feeds as feeds

    small = {**feeds.DEMO_RECIPE, "seconds": 3.0, "size": (128, 96), "fps": 4.0}
    monkeypatch.setattr(feeds, "DEMO_RECIPE", small)
    monkeypatch.setattr(feeds, "make_feed", lambda out, **kw: calls.append(kw) or
                        make_feed(out, **{**kw, "events": ["bleeding@2"]}))
    calls: list[dict] = []
    out = feeds.make_demo_feed(tmp_path / "demo")
    assert (out / "video.mp4").is_file() and len(calls) == 1
    assert calls[0]["scenario"] == "cholecystectomy"
    # the recipe's events differ from what is on disk -> regenerated; same recipe -> reused
    feeds.make_demo_feed(tmp_path / "demo")
    assert len(calls) == 2
    monkeypatch.setattr(feeds, "DEMO_RECIPE", {**small, "events": ("bleeding@2",)})
    feeds.make_demo_feed(tmp_path / "demo")
    assert len(calls) == 2


@pytest.mark.parametrize("scenario,seconds,fps", [("cholecystectomy", 0.5, 4.0),
                                                  ("bowel-survey", 8.0, 2.0)])
def test_tiny_feeds(tmp_path, scenario, seconds, fps):
    """Very short or sparse feeds still give consistent truth (no speech fits in 0.5 s)."""
    feed = make_feed(tmp_path / "f", scenario, seconds, seed=2, size=(96, 64), fps=fps)
    t = load_truth(feed)
    validate_truth(t)
    assert t["n_frames"] == round(seconds * fps)
    frames, _ = _decode(feed / "video.mp4")
    assert len(frames) == t["n_frames"]
    audio, sr = sf.read(str(feed / "audio.wav"))
    assert abs(len(audio) / sr - t["duration_s"]) <= 1 / fps
    covered = t["phases"] or t["segments"]
    assert covered[0]["start_frame"] == 0 and covered[-1]["end_frame"] == t["n_frames"]
