"""Teaching by example in the brain (copilot.teaching): the instrument tip, voice commands,
dashed "taught" outlines, provenance in answers, no alerts, the report section, the UI click."""

from __future__ import annotations

import numpy as np
import pytest

from copilot.brain import Brain
from copilot.messages import Finding, Transcript
from copilot.overlay import Outline
from copilot.report import build_report
from copilot.session import SessionLog
from copilot.teaching import instrument_tip
from kg_reasoning.teaching import load_teaching
from vision.labels import CLASSES

C, GH, GW = 32, 18, 32  # feature grid (1/16 of a 512x288 input)
LH, LW = 144, 256  # label map (model output)
GRASPER = CLASSES.index("grasper")
BASE = np.random.default_rng(7).normal(size=(3, C))


def frame_findings(fid: int, t: float, duct_x: int, seed: int) -> list[Finding]:
    """A frame: a 'duct' patch of distinct features at grid columns duct_x..duct_x+6, rows
    5..10; a grasper entering from the right border whose tip ends just right of the patch."""
    rng = np.random.default_rng(seed)
    regions = np.zeros((GH, GW), int)
    regions[5:11, duct_x:duct_x + 6] = 1
    feats = BASE[regions].transpose(2, 0, 1) + 0.3 * rng.normal(size=(C, GH, GW))
    lm = np.zeros((LH, LW), np.uint8)
    x_tip = (duct_x + 6) * 8 + 4  # label map px (8 per feature cell): just past the patch
    lm[60:70, x_tip:] = GRASPER
    base = {"t_ns": 0, "trace_id": f"f{fid}", "media_t_s": t, "frame_id": fid,
            "source": "vision"}
    return [Finding(**base, kind="region", name="abdominal_cavity", score=0.9,
                    attrs={"frame": "abdominal_cavity", "frame_w": 512, "frame_h": 288}),
            Finding(**base, kind="pixel_features", name="features", score=1.0,
                    attrs={"features": feats.astype(np.float32), "label_map": lm,
                           "fov_box": (0, 0, 512, 288)})]


def say(brain: Brain, text: str, t: float) -> list:
    tr = Transcript(t_ns=0, trace_id=f"s{t}", media_t_s=t, text=text, confidence=0.9,
                    start_s=t - 1, end_s=t)
    return brain.on_transcript(tr, addressed=True)


def test_instrument_tip_is_the_end_away_from_the_entry():
    lm = np.zeros((LH, LW), np.uint8)
    for i in range(100):  # a diagonal tool from the lower-right corner to (150, 40)
        x, y = LW - 1 - i, LH - 1 - i
        lm[max(y - 3, 0):y + 3, max(x - 3, 0):x + 3] = GRASPER
    tip = instrument_tip(lm)
    assert tip is not None
    assert tip["entry"][0] > 240 and tip["entry"][1] > 130
    assert abs(tip["tip"][0] - 156) < 6 and abs(tip["tip"][1] - 44) < 6
    px, py = tip["point"]  # ahead of the tip, up and to the left
    assert px < tip["tip"][0] and py < tip["tip"][1]
    assert instrument_tip(np.zeros((LH, LW), np.uint8)) is None


def test_teaching_commands_parse_only_taught_names_for_questions():
    cmds = load_teaching()
    assert cmds.parse("copilot, this is the accessory duct").intent == "teach_concept"
    assert cmds.parse("copilot learn landmark two").name == "landmark two"
    assert cmds.parse("copilot where is the accessory duct") is None  # not taught yet
    q = cmds.parse("copilot outline the accessory duct in red", ["accessory duct"])
    assert (q.intent, q.name, q.colour) == ("outline_taught", "accessory duct", "red")
    assert cmds.parse("copilot this is the telephone") is None
    assert cmds.parse("copilot what have you learned").intent == "list_taught"


def test_voice_teaching_end_to_end_in_the_brain(tmp_path):
    log = SessionLog(tmp_path / "session.jsonl")
    brain = Brain(scenario="cholecystectomy", session=log)
    brain.on_findings(1, 1.0, frame_findings(1, 1.0, duct_x=10, seed=1))
    stale = say(brain, "copilot, this is the accessory duct", 12.0)  # no frame since 11 s
    assert stale[0].abstained and "instrument tip" in stale[0].text
    brain.on_findings(2, 11.5, frame_findings(2, 11.5, duct_x=10, seed=1))
    out = say(brain, "copilot, this is the accessory duct", 12.0)
    assert "Learned an example of the accessory duct" in out[0].text
    assert "taught by you at 0:12 (1 example), not part of my validated knowledge" in \
        out[0].text
    # a later frame: the duct moved left; it is outlined, dashed, labelled "taught"
    brain.on_findings(3, 14.0, frame_findings(3, 14.0, duct_x=4, seed=2))
    ann = brain.overlay(3)
    taught = [i for i in ann.items if isinstance(i, Outline) and i.label.startswith("taught")]
    assert len(taught) == 1 and taught[0].dashed and taught[0].label == "taught: accessory duct"
    xs = np.concatenate([p[:, 0] for p in taught[0].polygons])
    assert 4 * 16 - 16 <= xs.min() and xs.max() <= 10 * 16 + 16  # where the patch now is
    ans = say(brain, "copilot, where is the accessory duct", 15.0)[0]
    assert ans.intent == "locate_taught" and "left" in ans.text
    assert "taught by you at 0:12 (1 example), not part of my validated knowledge" in ans.text
    say(brain, "copilot, outline the accessory duct in red", 16.0)
    brain.on_findings(4, 16.5, frame_findings(4, 16.5, duct_x=6, seed=3))
    red = [i for i in brain.overlay(4).items if isinstance(i, Outline)
           and i.label == "taught: accessory duct"]
    assert red and red[0].colour[0] > 200 and red[0].colour[1] < 80  # red, not magenta
    listed = say(brain, "copilot, what have you learned", 17.0)[0].text
    assert "accessory duct (taught by you at 0:12, 1 example)" in listed
    assert "None of it is part of my validated knowledge" in listed
    # alerts never see taught concepts: they are not findings in the timeline
    assert all(o.kind != "pixel_features" for o in brain.timeline.window(0, 20))
    say(brain, "copilot, forget the accessory duct", 18.0)
    assert brain.teaching.book.names() == []
    brain.on_findings(5, 19.0, frame_findings(5, 19.0, duct_x=6, seed=4))
    assert not [i for i in (brain.overlay(5).items if brain.overlay(5) else [])
                if isinstance(i, Outline) and i.label.startswith("taught")]
    brain.finish(20.0)
    log.close()
    html = build_report(tmp_path / "session.jsonl", tmp_path / "report.html").read_text()
    assert "Taught by the surgeon" in html and "teach the accessory duct" in html


def test_no_instrument_no_teaching_and_click_teaches():
    brain = Brain(scenario="cholecystectomy")
    fs = frame_findings(1, 1.0, duct_x=10, seed=1)
    fs[1].attrs["label_map"] = np.zeros((LH, LW), np.uint8)
    brain.on_findings(1, 1.0, fs)
    ans = say(brain, "copilot, this is the aberrant artery", 2.0)[0]
    assert ans.abstained and "instrument tip" in ans.text
    assert brain.teaching.book.names() == []
    click = brain.teach_click("aberrant artery", 13 * 16, 8 * 16)  # frame px in the patch
    assert not click.abstained and "aberrant artery" in brain.teaching.book.names()


@pytest.mark.parametrize("bad", ["copilot, that is not the landmark three",
                                 "copilot, forget landmark three"])
def test_commands_about_untaught_names_say_so(bad):
    brain = Brain(scenario="cholecystectomy")
    brain.on_findings(1, 1.0, frame_findings(1, 1.0, duct_x=10, seed=1))
    ans = say(brain, bad, 2.0)[0]
    assert ans.abstained and "not taught" in ans.text


def test_validated_classes_are_not_taught_over():
    brain = Brain(scenario="cholecystectomy")
    brain.on_findings(1, 1.0, frame_findings(1, 1.0, duct_x=10, seed=1))
    ans = say(brain, "copilot, this is the cystic duct", 2.0)[0]
    assert ans.abstained and "validated model" in ans.text
    assert brain.teaching.click("gallbladder", 256, 144, 2.0)[0].abstained
    assert brain.teaching.book.names() == []
    ok = say(brain, "copilot, this is the portal vein", 2.0)[0]  # no vision class for it
    assert not ok.abstained and brain.teaching.book.names() == ["portal vein"]
