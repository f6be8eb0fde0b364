"""copilot.real_view: on real video only what real labels taught is drawn and reported."""

from __future__ import annotations

import numpy as np

from copilot.messages import Finding
from copilot.real_view import (
    INSTRUMENT,
    NAMES,
    REAL_TAUGHT_ANATOMY,
    taught_findings,
    taught_label_map,
    untaught_note,
)
from copilot.validity import OffLabelMonitor, off_label_answer
from kg_reasoning.answers import Answer
from vision.labels import CLASS_ID


def _f(kind: str, name: str, score: float, **attrs) -> Finding:
    return Finding(t_ns=0, trace_id="t", media_t_s=1.0, frame_id=3, source="vision", kind=kind,
                   name=name, score=score, attrs=attrs)


def test_the_taught_classes_are_endoscapes_five_anatomy_classes() -> None:
    assert REAL_TAUGHT_ANATOMY == {"cystic_plate", "hepatocystic_triangle", "cystic_artery",
                                   "cystic_duct", "gallbladder"}


def test_findings_keep_taught_structures_and_one_instrument() -> None:
    got = taught_findings([
        _f("structure", "gallbladder", 0.9), _f("structure", "lumen", 0.5),
        _f("structure", "liver", 0.8), _f("instrument", "grasper", 0.6),
        _f("instrument", "l_hook", 0.7), _f("instrument", "Clipper", 0.9, head="tools"),
        _f("region", "abdominal_cavity", 1.0), _f("phase", "Preparation", 0.9)])
    assert [(f.kind, f.name) for f in got] == [
        ("structure", "gallbladder"), ("region", "abdominal_cavity"), ("phase", "Preparation"),
        ("instrument", INSTRUMENT)]
    assert got[-1].score == 0.7  # the best instrument class's confidence


def test_label_map_draws_only_taught_classes_and_instruments_as_one() -> None:
    ids = CLASS_ID
    m = np.array([[ids["liver"], ids["gallbladder"], ids["l_hook"], ids["grasper"]],
                  [ids["lumen"], ids["cystic_duct"], ids["clip_applier"], 0]], np.uint8)
    out, scores = taught_label_map(m, {ids["liver"]: 0.9, ids["gallbladder"]: 0.8,
                                       ids["l_hook"]: 0.7, ids["grasper"]: 0.4,
                                       ids["cystic_duct"]: 0.5})
    inst = ids["grasper"]
    assert out.tolist() == [[0, ids["gallbladder"], inst, inst],
                            [0, ids["cystic_duct"], inst, 0]]
    assert scores == {ids["gallbladder"]: 0.8, ids["cystic_duct"]: 0.5, inst: 0.7}
    assert NAMES[inst] == INSTRUMENT and NAMES[ids["gallbladder"]] == "gallbladder"


def test_answers_about_untaught_structures_say_so_on_real_video() -> None:
    assert untaught_note("gallbladder") is None and untaught_note("caudate_lobe") is None
    assert "never shown a real liver" in untaught_note("liver")

    def ans() -> Answer:
        return Answer("The liver is at the top left.", confidence=0.9)

    mon = OffLabelMonitor("cholecystectomy")
    real = off_label_answer(ans(), "locate_structure", mon, "cholecystectomy", True, "liver")
    assert "never shown a real liver" in real.answer and real.confidence == 0.3
    synthetic = off_label_answer(ans(), "locate_structure", mon, "cholecystectomy", False,
                                 "liver")
    assert synthetic.answer == "The liver is at the top left." and synthetic.confidence == 0.9
