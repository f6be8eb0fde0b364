"""copilot.validity: stated procedure, off-label spans, the surgeon's call on the CVS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copilot.messages import Finding, Transcript
from copilot.validity import (
    PROCEDURE_RULES,
    CvsPolicy,
    OffLabelMonitor,
    cvs_policy,
    cvs_statement,
    model_cvs_accuracy,
    resolve_procedure,
    withheld_rules,
)
from tests.copilot.brain_support import brain_run, frames, truth


def test_procedure_is_stated_then_feed_then_default() -> None:
    assert resolve_procedure("bowel_survey", "cholecystectomy") == "bowel-survey"
    assert resolve_procedure(None, "bowel-survey") == "bowel-survey"
    assert resolve_procedure(None, None) == "cholecystectomy"
    with pytest.raises(ValueError, match="unknown procedure 'appendectomy'"):
        resolve_procedure("appendectomy", None)
    assert "segment_missed" not in PROCEDURE_RULES["cholecystectomy"]
    assert "clip_before_cvs" not in PROCEDURE_RULES["bowel-survey"]


def test_off_label_span_needs_a_majority_and_closes_with_hysteresis() -> None:
    m = OffLabelMonitor("cholecystectomy")
    t = 0.0
    events = []
    # isolated bad frames never open a span
    for k in range(20):
        events.append(m.update(t, 0.9 if k % 3 else 0.1, k % 3 == 0, "abdominal_cavity", 0.9))
        t += 0.1
    assert not m.off_label and events.count("start") == 0
    for _ in range(6):
        events.append(m.update(t, 0.05, True, "abdominal_cavity", 0.9))
        t += 0.1
    assert m.off_label and events.count("start") == 1
    assert "unlike the frames I was validated on" in m.reason
    for _ in range(7):  # still 3+ bad among the last 10: stays open
        m.update(t, 0.9, False, "abdominal_cavity", 0.9)
        t += 0.1
    assert m.off_label
    m.update(t, 0.9, False, "abdominal_cavity", 0.9)
    assert not m.off_label and m.spans[-1].end_s == pytest.approx(t)


def test_a_sustained_foreign_region_is_off_label() -> None:
    m = OffLabelMonitor("cholecystectomy")
    for k in range(100):  # 10 s of "jejunum" from the region head, no in-domain score
        m.update(k * 0.1, None, None, "jejunum", 0.95)
    assert m.off_label and "jejunum" in m.reason
    assert m.spans[0].start_s >= 6.0  # only after mismatch_s


def test_cvs_policy_from_the_model_card(tmp_path: Path) -> None:
    assert cvs_policy("auto", True, tmp_path).source == "vision"
    pol = cvs_policy("auto", False, tmp_path)
    assert pol.surgeon and "records no CVS accuracy" in pol.why
    (tmp_path / "metrics.json").write_text(json.dumps(
        {"real_val": {"cvs": {"balanced_accuracy": {"C1": 0.61, "C2": 0.55, "C3": 0.83}}}}))
    assert model_cvs_accuracy(tmp_path) == {"C1": 0.61, "C2": 0.55, "C3": 0.83}
    pol = cvs_policy("auto", False, tmp_path)
    assert pol.surgeon and "below 0.8" in pol.why
    assert "0.55-0.83" in pol.advisory()
    (tmp_path / "metrics.json").write_text(json.dumps(
        {"cvs_val": {"balanced_accuracy": {"C1": 0.9, "C2": 0.85, "C3": 0.81}}}))
    assert cvs_policy("auto", False, tmp_path).source == "vision"
    assert cvs_policy("surgeon", True, tmp_path).surgeon
    with pytest.raises(ValueError):
        cvs_policy("maybe", True, tmp_path)


def test_a_negation_always_denies() -> None:
    assert cvs_statement("confirm_cvs", {"critical", "view", "confirmed"}) is True
    assert cvs_statement("confirm_cvs", {"critical", "view", "not", "confirmed"}) is False
    assert cvs_statement("deny_cvs", {"cvs", "not", "confirmed"}) is False
    assert cvs_statement("cvs_status", {"critical"}) is None


def _said(text: str, t: float, k: int) -> Transcript:
    return Transcript(t_ns=0, trace_id=f"cvs{k}", media_t_s=t, text=text, confidence=0.9,
                      start_s=t - 1.0, end_s=t, accepted=True)


def test_surgeon_mode_asks_for_confirmation_instead_of_judging_the_cvs() -> None:
    """On the chole feed (clip applied at 16 s before the CVS), with the surgeon deciding:
    a prompt, never the vision's "clip before CVS"; the status answer is the surgeon's."""
    brain, run = brain_run("chole", cvs_policy=CvsPolicy("surgeon", {}, "test"))
    rules = [a.rule for a in run.alerts]
    assert "clip_before_cvs" not in rules
    prompt = [a for a in run.alerts if a.rule == "cvs_confirm_prompt"]
    assert len(prompt) == 1 and 15.5 <= prompt[0].media_t_s <= 18.0
    assert prompt[0].text == "Before clipping: confirm the critical view of safety."
    status = [m for tr, ms in run.replies for m in ms
              if getattr(m, "intent", "") == "cvs_status"]
    assert status and "You have not confirmed" in status[0].text
    assert any("advisory" in s["claim"] for s in status[0].steps)


def test_surgeon_confirmation_drives_the_clip_rule() -> None:
    from benchmarks.bench_brain_accuracy import run_brain, truth_transcripts
    from copilot.brain import Brain

    tr = truth("chole")
    for said, expect in (("copilot, critical view confirmed", set()),
                         ("copilot, critical view not confirmed", {"clip_before_cvs"})):
        brain = Brain(scenario="cholecystectomy", cvs_policy=CvsPolicy("surgeon", {}, "t"))
        trs = truth_transcripts(tr) + [_said(said, 14.0, 0)]
        run = run_brain(brain, frames("chole"), trs, tr["duration_s"])
        rules = {a.rule for a in run.alerts} & {"clip_before_cvs", "cvs_confirm_prompt"}
        assert rules == expect, (said, rules)
        assert brain.cvs_policy.confirmations == [(14.0, "not" not in said)]


def test_off_label_withholds_alerts_and_marks_answers(tmp_path: Path) -> None:
    """Every analysed frame scored off-label: no vision alert, one spoken off-label warning,
    vision answers say so, the span is in the session log."""
    from benchmarks.bench_brain_accuracy import run_brain, truth_transcripts
    from copilot.brain import Brain
    from copilot.session import SessionLog

    tr = truth("chole")
    def low(fid: int, t: float) -> Finding:
        return Finding(t_ns=0, trace_id="d", source="vision", frame_id=fid, media_t_s=t,
                       kind="domain", name="in_domain", score=0.02, attrs={"off_label": True})

    off = [(fid, t, [*(f for f in fs if f.kind != "domain"), low(fid, t)])
           for fid, t, fs in frames("chole")]
    log = SessionLog(tmp_path / "s.jsonl")
    brain = Brain(scenario="cholecystectomy", session=log)
    run = run_brain(brain, off, truth_transcripts(tr), tr["duration_s"])
    log.close()
    assert [a.rule for a in run.alerts] == ["off_label"]
    assert not run.alerts[0].silent
    phase = [m for _, ms in run.replies for m in ms if getattr(m, "intent", "") ==
             "current_phase"]
    assert phase and phase[0].text.startswith("This view is outside what I was validated on")
    assert phase[0].confidence <= 0.3
    recs = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    spans = [r for r in recs if r["type"] == "off_label"]
    assert [r["event"] for r in spans] == ["start", "end"]


def test_the_model_cards_own_verdict_rules(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(
        {"extra": {"cvs_validation": {"claim_allowed": False, "min_balanced_accuracy": 0.8}}}))
    (tmp_path / "metrics.json").write_text(json.dumps(
        {"cvs_val": {"balanced_accuracy": {"C1": 0.9, "C2": 0.85, "C3": 0.81}}}))
    pol = cvs_policy("auto", False, tmp_path)
    assert pol.surgeon and "does not allow CVS claims" in pol.why
    assert cvs_policy("auto", True, tmp_path).source == "vision"  # synthetic: validated there


def test_real_video_withholds_rules_of_heads_never_validated_on_it() -> None:
    from copilot.validity import procedure_rules

    assert procedure_rules("cholecystectomy", real_video=False) == \
        PROCEDURE_RULES["cholecystectomy"]
    # every cholecystectomy rule rests on an output no real label taught (phase, blood, large
    # vessel, instrument type): none runs on real video
    assert procedure_rules("cholecystectomy", real_video=True) == frozenset()
    assert procedure_rules("bowel-survey", real_video=True) == {"segment_missed"}
    assert procedure_rules(None) is None
    assert withheld_rules("cholecystectomy", real_video=False) == {}
    held = withheld_rules("cholecystectomy", real_video=True)
    assert set(held) == set(PROCEDURE_RULES["cholecystectomy"])
    assert "clip applier" in held["cvs_confirm_prompt"] and "blood" in held["bleeding"]
    assert set(withheld_rules("bowel-survey", real_video=True)) == {"bleeding", "large_vessel"}
    _, run = brain_run("chole", real_video=True)
    phase = [m for _, ms in run.replies for m in ms
             if getattr(m, "intent", "") == "current_phase"]
    assert phase and "(Phase recognition validated on synthetic video only.)" in phase[0].text
    assert "phase_skipped" not in [a.rule for a in run.alerts]


@pytest.mark.parametrize("cmd", [["run", "any.mp4", "--procedure", "appendectomy"],
                                 ["ui", "--procedure", "appendectomy"],
                                 ["ui", "--cvs", "maybe"]])
def test_unknown_procedure_or_cvs_is_one_error_line(cmd: list[str]) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "copilot.cli", *cmd], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown ")


REAL_CLIPS = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "cholect50-clips"


def test_a_real_clip_says_which_alerts_it_withholds_and_why(tmp_path: Path) -> None:
    """``copilot run`` on a real clip: the start record and the report name every withheld
    rule with its reason; no alert is raised from them."""
    from copilot.app import run_copilot
    from copilot.run_config import RunConfig

    clips = sorted(REAL_CLIPS.glob("*.mp4")) if REAL_CLIPS.is_dir() else []
    if not clips:
        pytest.skip(f"needs the real clips under {REAL_CLIPS} (../shared data)")
    res = run_copilot(RunConfig(source=str(clips[0]), out=tmp_path, speech="off",
                                max_seconds=4.0))
    assert res.exit_code == 0
    recs = [json.loads(x) for x in (tmp_path / "session.jsonl").read_text().splitlines()]
    start = recs[0]
    assert start["type"] == "start" and start["procedure"] == "cholecystectomy"
    assert start["alerts_withheld"] == withheld_rules("cholecystectomy", real_video=True)
    assert not [r for r in recs if r["type"] == "alert" and r["rule"] in PROCEDURE_RULES[
        "cholecystectomy"]]
    html = (tmp_path / "report.html").read_text()
    assert "<p id='withheld'>" in html and "bleeding (the blood class" in html
    # only what real labels taught is reported: the five anatomy classes and "instrument"
    from copilot.real_view import ENDOSCAPES_TAUGHT, INSTRUMENT, for_model

    assert sorted(start["real_taught"]) == sorted(ENDOSCAPES_TAUGHT)  # the shipped card's
    obs = [r for r in recs if r["type"] == "obs" and r["kind"] in ("structure", "instrument")]
    assert obs and {r["name"] for r in obs if r["kind"] == "structure"} <= \
        for_model(None).anatomy
    assert {r["name"] for r in obs if r["kind"] == "instrument"} <= {INSTRUMENT}
