"""vision.synth: plans (phases, segments, events), rendering, determinism, leaf imports."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from vision.errors import VisionError
from vision.labels import CLASS_ID, PHASES, SEGMENTS
from vision.synth.bowel import LOOKS, BowelScene, plan_bowel
from vision.synth.cholec import PHASE_WEIGHTS, CholecScene, plan_cholecystectomy
from vision.synth.events import SceneEvent
from vision.synth.scene import check_size, render_size


def test_cholec_plan_proportions_and_cvs():
    plan = plan_cholecystectomy(120.0, 0, [])
    assert [p.name for p in plan.phases] == list(PHASES)
    tot = sum(PHASE_WEIGHTS.values())
    for p in plan.phases:
        assert p.end_s - p.start_s == pytest.approx(120 * PHASE_WEIGHTS[p.name] / tot, rel=1e-6)
    calot = plan.phase("CalotTriangleDissection")
    assert all(calot.start_s < c < calot.end_s for c in plan.cvs_times)
    assert all(ev["cvs_reached"] for ev in plan.events if ev["kind"] == "clip_applied")
    assert plan.cvs_at(0.0) == [0, 0, 0] and plan.cvs_at(119.0) == [1, 1, 1]


def test_cholec_plan_events():
    plan = plan_cholecystectomy(60.0, 0, [SceneEvent("clip_before_cvs", 30.0),
                                          SceneEvent("skip_phase", arg="CleaningCoagulation")])
    clips = [e for e in plan.events if e["kind"] == "clip_applied"]
    assert clips[0]["time_s"] == pytest.approx(30.0)
    assert not any(e["cvs_reached"] for e in clips)
    assert "CleaningCoagulation" not in [p.name for p in plan.phases]
    sk = [e for e in plan.events if e["kind"] == "phase_skipped"][0]
    assert sk["phase"] == "CleaningCoagulation"
    assert sk["time_s"] == pytest.approx(plan.phase("GallbladderRetraction").start_s)
    with pytest.raises(VisionError, match="too early"):
        plan_cholecystectomy(60.0, 0, [SceneEvent("clip_before_cvs", 0.5)])
    with pytest.raises(VisionError, match="bowel|does not apply"):
        plan_cholecystectomy(60.0, 0, [SceneEvent("skip_segment", arg="ileum")])


def test_bowel_plan():
    plan = plan_bowel(60.0, 0, [SceneEvent("skip_segment", arg="duodenum_d3"),
                                SceneEvent("brief_segment", arg="caecum")])
    names = [s.name for s in plan.segments]
    assert names == [s for s in SEGMENTS if s != "duodenum_d3"]
    cae = next(s for s in plan.segments if s.name == "caecum")
    assert cae.end_s - cae.start_s < 1.0
    assert plan.missed[0][0] == "duodenum_d3"
    assert plan_bowel(20.0, 0, [], "upper").route == tuple(SEGMENTS[:6])
    with pytest.raises(VisionError, match="too short"):
        plan_bowel(3.0, 0, [])
    with pytest.raises(VisionError, match="route"):
        plan_bowel(30.0, 0, [], "sideways")


def test_sizes():
    assert render_size((1280, 720)) == (640, 360)
    assert render_size((320, 240)) == (320, 240)
    with pytest.raises(VisionError):
        check_size((321, 240))


def _frames(scene, idx):
    return [scene.render(i) for i in idx]


def test_cholec_render_deterministic_and_labelled():
    plan = plan_cholecystectomy(10.0, 5, [SceneEvent("bleeding", 6.0)])
    a = CholecScene(plan, (256, 192), 10, 5, 100)
    b = CholecScene(plan, (256, 192), 10, 5, 100)
    c = CholecScene(plan, (256, 192), 10, 6, 100)
    fa, fb, fc = (_frames(s, [5, 40, 80]) for s in (a, b, c))
    for x, y in zip(fa, fb, strict=True):
        assert np.array_equal(x.rgb, y.rgb) and np.array_equal(x.mask, y.mask)
    assert not np.array_equal(fa[1].rgb, fc[1].rgb)
    f = fa[1]
    assert f.rgb.shape == (192, 256, 3) and f.mask.shape == (192, 256)
    present = set(np.unique(f.mask).tolist())
    assert {CLASS_ID["liver"], CLASS_ID["gallbladder"], CLASS_ID["background"]} <= present
    # distinct looks: liver darker and redder than gallbladder, fat yellow
    rgb = f.rgb.astype(float)
    liver = rgb[f.mask == CLASS_ID["liver"]].mean(0)
    gb = rgb[f.mask == CLASS_ID["gallbladder"]].mean(0)
    assert liver.sum() < gb.sum() and liver[0] > liver[1] * 1.5
    assert gb[1] > liver[1]
    # bleeding: blood after the onset, not before
    assert CLASS_ID["blood"] not in np.unique(fa[1].mask)
    assert CLASS_ID["blood"] in np.unique(fa[2].mask)


def test_bowel_segments_look_different():
    plan = plan_bowel(24.0, 1, [])
    scene = BowelScene(plan, (192, 128), 10, 1, 240)
    means = {}
    for s in plan.segments:
        f = scene.render(int((s.start_s + s.end_s) / 2 * 10))
        wall = f.mask == CLASS_ID["gi_tract"]
        means[s.name] = f.rgb[wall].astype(float).mean(0)
        assert (f.mask == CLASS_ID["lumen"]).any()
        assert f.rgb[f.mask == CLASS_ID["lumen"]].mean() < f.rgb[wall].mean()
    assert len(LOOKS) == len(SEGMENTS)
    # neighbouring segments look different; jejunum is redder than the pale colon
    names = [s.name for s in plan.segments]
    for a, b in zip(names, names[1:], strict=False):
        assert np.abs(means[a] - means[b]).max() > 3, (a, b)
    red = {k: v[0] - v[2] for k, v in means.items()}
    assert red["jejunum"] > red["transverse_colon"]


def test_synth_is_a_leaf():
    root = Path(__import__("vision.synth").synth.__file__).parent
    for py in root.glob("*.py"):
        for node in ast.walk(ast.parse(py.read_text())):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [
                    a.name for a in node.names]
                for n in names:
                    assert n.split(".")[0] not in ("speech", "kg_reasoning", "copilot"), py
