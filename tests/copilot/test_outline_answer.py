"""An outline command answers with what the vision stage found now (its detection confidence,
apart from the command's parse confidence), or says it does not see the structure."""

from __future__ import annotations

import numpy as np

from copilot.brain import Brain, BrainAnswer
from copilot.messages import Finding, Transcript


def _finding(name: str, score: float, fid: int) -> Finding:
    poly = np.array([[100, 100], [200, 100], [200, 180], [100, 180]], np.int32)
    return Finding(t_ns=0, trace_id=f"f{fid}", media_t_s=fid / 25, frame_id=fid,
                   source="vision", kind="structure", name=name, score=score,
                   attrs={"area": 0.05, "centroid": [0.3, 0.3], "bbox": [100, 100, 200, 180],
                          "polygons": [poly]})


def _ask(brain: Brain, text: str, t: float) -> BrainAnswer:
    out = brain.on_transcript(Transcript(t_ns=0, trace_id=f"q{t}", media_t_s=t, text=text,
                                         confidence=0.9, start_s=t - 1.0, end_s=t), True)
    return next(m for m in out if isinstance(m, BrainAnswer))


def test_outline_reports_the_detection_or_that_it_is_not_seen() -> None:
    brain = Brain(scenario="cholecystectomy")
    for fid in range(5):
        brain.on_findings(fid, fid / 25, [_finding("gallbladder", 0.62, fid)])
    ans = _ask(brain, "copilot, outline the gallbladder in green", 0.3)
    assert ans.text == "Outlined the gallbladder in green, detection 0.62."
    assert ans.detection == 0.62
    scores = next(s["evidence"]["scores"] for s in ans.steps
                  if "detection" in s["evidence"].get("scores", {}))
    assert scores == {"detection": 0.62, "parse": 1.0}  # parse and detection apart
    ann = brain.overlay(4)
    outline = next(i for i in ann.items if getattr(i, "label", "") == "gallbladder")
    assert outline.track and outline.score == 0.62  # drawn after agreement, by confidence
    ans = _ask(brain, "copilot, outline the cystic duct in red", 0.4)
    assert ans.text == "I do not see the cystic duct now; I will outline it when I do."
    assert ans.detection is None and not ans.abstained
