"""copilot.real_view: on real video only what real labels taught is drawn and reported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from copilot.messages import Finding
from copilot.real_view import ENDOSCAPES_TAUGHT, INSTRUMENT, RealView, for_model
from copilot.validity import OffLabelMonitor, off_label_answer
from kg_reasoning.answers import Answer
from vision.labels import CLASS_ID

ENDO = RealView(ENDOSCAPES_TAUGHT)


def _f(kind: str, name: str, score: float, **attrs) -> Finding:
    return Finding(t_ns=0, trace_id="t", media_t_s=1.0, frame_id=3, source="vision", kind=kind,
                   name=name, score=score, attrs=attrs)


FINDINGS = [_f("structure", "gallbladder", 0.9), _f("structure", "lumen", 0.5),
            _f("structure", "liver", 0.8), _f("instrument", "grasper", 0.6),
            _f("instrument", "l_hook", 0.7), _f("instrument", "Clipper", 0.9, head="tools"),
            _f("region", "abdominal_cavity", 1.0), _f("phase", "Preparation", 0.9)]


def test_the_shipped_card_lists_endoscapes_five_anatomy_classes_and_tool() -> None:
    view = for_model(None)
    assert view.anatomy == {"cystic_plate", "hepatocystic_triangle", "cystic_artery",
                            "cystic_duct", "gallbladder"}
    assert view.tool and view.card() == ENDO.card()


def test_findings_keep_taught_structures_and_one_instrument() -> None:
    got = ENDO.findings(FINDINGS)
    assert [(f.kind, f.name) for f in got] == [
        ("structure", "gallbladder"), ("region", "abdominal_cavity"), ("phase", "Preparation"),
        ("instrument", INSTRUMENT)]
    assert got[-1].score == 0.7  # the best instrument class's confidence


def test_label_map_draws_only_taught_classes_and_instruments_as_one() -> None:
    ids = CLASS_ID
    m = np.array([[ids["liver"], ids["gallbladder"], ids["l_hook"], ids["grasper"]],
                  [ids["lumen"], ids["cystic_duct"], ids["clip_applier"], 0]], np.uint8)
    out, scores = ENDO.label_map(m, {ids["liver"]: 0.9, ids["gallbladder"]: 0.8,
                                     ids["l_hook"]: 0.7, ids["grasper"]: 0.4,
                                     ids["cystic_duct"]: 0.5})
    inst = ids["grasper"]
    assert out.tolist() == [[0, ids["gallbladder"], inst, inst],
                            [0, ids["cystic_duct"], inst, 0]]
    assert scores == {ids["gallbladder"]: 0.8, ids["cystic_duct"]: 0.5, inst: 0.7}
    assert ENDO.names[inst] == INSTRUMENT and ENDO.names[ids["gallbladder"]] == "gallbladder"


def test_a_card_of_your_own_decides(tmp_path: Path) -> None:
    """A model taught liver, fat and instrument types by real labels keeps them; a card that
    lists nothing has nothing shown on real video."""
    (tmp_path / "config.json").write_text(json.dumps(
        {"extra": {"real_taught": ["liver", "fat", "grasper", "l_hook", "gallbladder"]}}))
    own = for_model(tmp_path)
    assert not own.tool
    assert [f.name for f in own.findings(FINDINGS)] == [
        "gallbladder", "liver", "grasper", "l_hook", "abdominal_cavity", "Preparation"]
    assert own.untaught_note("liver") is None and "never shown a real lumen" in \
        own.untaught_note("lumen")
    (tmp_path / "config.json").write_text(json.dumps({"extra": {}}))
    none = for_model(tmp_path)
    assert [f.kind for f in none.findings(FINDINGS)] == ["region", "phase"]
    m = np.full((2, 2), CLASS_ID["gallbladder"], np.uint8)
    drawn, scores = none.label_map(m, {CLASS_ID["gallbladder"]: 0.9})
    assert not drawn.any() and scores == {}
    assert "no real label taught this model anything" in none.untaught_note("gallbladder")


def test_answers_about_untaught_structures_say_so_on_real_video() -> None:
    assert ENDO.untaught_note("gallbladder") is None and ENDO.untaught_note("caudate_lobe") is None
    assert "never shown a real liver" in ENDO.untaught_note("liver")

    def ans() -> Answer:
        return Answer("The liver is at the top left.", confidence=0.9)

    mon = OffLabelMonitor("cholecystectomy")
    real = off_label_answer(ans(), "locate_structure", mon, "cholecystectomy", True, "liver",
                            ENDO)
    assert "never shown a real liver" in real.answer and real.confidence == 0.3
    synthetic = off_label_answer(ans(), "locate_structure", mon, "cholecystectomy", False,
                                 "liver", None)
    assert synthetic.answer == "The liver is at the top left." and synthetic.confidence == 0.9
