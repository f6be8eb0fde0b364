"""The reasoner's rooms on their own: answer types, phrasing, the dispatcher, the CVS rule,
survey gaps, relation look-ups and hypothesis matching (kg_reasoning/questions/)."""

from __future__ import annotations

import dataclasses

import pytest

from kg_reasoning import reasoner as reasoner_module
from kg_reasoning.answers import Answer, Step, abstain
from kg_reasoning.catalogue import load_catalogue
from kg_reasoning.phrasing import count_words, describe, fmt_time, join_words, position_words
from kg_reasoning.questions import commands, cvs, procedure, ranking, relations, survey
from kg_reasoning.reasoner import HANDLERS, PERCEPTION_INTENTS, Question, Reasoner
from kg_reasoning.timeline import Observation, Timeline

FPS = 5.0


@pytest.fixture(scope="module")
def r() -> Reasoner:
    return Reasoner()


def run(kind: str, name: str, t0: float, t1: float, score: float = 0.9) -> list[Observation]:
    """Observations of one class every 0.2 s over [t0, t1)."""
    out, t = [], t0
    while t < t1 - 1e-9:
        out.append(Observation(round(t, 3), int(round(t * FPS)), kind, name, score))
        t += 1 / FPS
    return out


# ---------------------------------------------------------------- answers and phrasing
def test_abstain_records_the_text_as_reason_unless_given():
    a = abstain("cvs_status", "I am not sure.")
    assert a.abstained and a.reason == "I am not sure." and a.intent == "cvs_status"
    assert a.confidence == 0.0 and a.overlay_actions == [] and a.data == {}
    b = abstain("cvs_status", "I am not sure.", reason="no CVS", confidence=0.3, data={"x": 1})
    assert b.reason == "no CVS" and b.confidence == 0.3 and b.data == {"x": 1}


def test_explanation_numbers_steps_and_marks_failed_ones():
    a = Answer("x", [Step("The graph says so.", True), Step("I see nothing.", False)])
    assert a.explanation() == "First, the graph says so. Second, I see nothing, and this " \
        "step failed."
    assert Answer("x", reason="no steps").explanation() == "no steps"


def test_phrasing_numbers_times_lists_and_positions():
    assert count_words(1, "fact") == "one fact"
    assert count_words(3, "answer") == "three answers"
    assert count_words(13, "fact") == "13 facts"
    assert fmt_time(125.4) == "2:05" and fmt_time(-3) == "0:00"
    assert join_words([]) == "" and join_words(["a"]) == "a"
    assert join_words(["a", "b", "c"], "or") == "a, b or c"
    assert position_words([0.1, 0.1]) == "in the upper left of the image"
    assert position_words([0.5, 0.5]) == "in the centre of the image"
    assert position_words([0.9, 0.5]) == "on the right of the image"
    assert position_words(None) == "in view"


def test_describe_is_the_reasoners_describe():
    assert Reasoner._describe is describe
    assert describe({"pulsatile": True}, "blood") == "bleeding"
    assert describe({}, "cystic duct") == "a cystic duct"


# ---------------------------------------------------------------- dispatcher
def test_every_handled_intent_is_in_the_catalogue_and_perception_ones_are_handled():
    cat = load_catalogue()
    assert set(HANDLERS) <= set(cat.intents)
    assert PERCEPTION_INTENTS <= set(HANDLERS)


def test_old_import_paths_name_the_moved_objects():
    assert reasoner_module.COLOUR_RGB is commands.COLOUR_RGB
    assert reasoner_module.fmt_time is fmt_time
    assert reasoner_module.Answer is Answer


def test_a_swapped_config_is_read_at_answer_time(r):
    """The brain swaps ``reasoner.cfg`` for one question: rooms must read it then."""
    tl = Timeline(run("region", "duodenum_d1", 0, 1) + run("region", "duodenum_d2", 1, 10))
    q = Question("missed_segments", {"minutes": 1})
    assert r.answer(q, tl).data["seen"] == ["duodenum_d1", "duodenum_d2"]
    saved = r.cfg
    try:
        r.cfg = dataclasses.replace(saved, seen_min_frames=10)
        assert r.answer(q, tl).data["seen"] == ["duodenum_d2"]
    finally:
        r.cfg = saved


def test_an_unresolved_slot_that_is_not_a_structure_abstains(r):
    a = r.answer(Question("relation_query", {"structure": "gallbladder"},
                          unresolved={"relation": "feeds into"}))
    assert a.abstained and a.reason == "unknown relation 'feeds into'"


# ---------------------------------------------------------------- procedure and CVS
RULE = {"name": "no_clipping_before_cvs", "text": "no clipping before CVS",
        "before_phase": "ClippingCutting", "before_events": ["clip_applied", "cut"]}


def cvs_run(t0: float, t1: float, score: float) -> list[Observation]:
    return [o for c in ("two_structures", "hepatocystic_triangle_cleared",
                        "cystic_plate_exposed") for o in run("cvs", c, t0, t1, score)]


def test_clip_rule_not_at_stake_before_clipping(r):
    step, violated, checked = cvs.clip_rule_step(r, Timeline(cvs_run(0, 5, 0.2)), 5.0, RULE, {})
    assert step.ok and not violated and checked and "not yet at stake" in step.claim


def test_clip_rule_violated_when_clipping_precedes_cvs(r):
    obs = cvs_run(0, 30, 0.2) + [Observation(12.0, 60, "event", "clip_applied", 1.0)]
    step, violated, checked = cvs.clip_rule_step(r, Timeline(obs), 30.0, RULE, {})
    assert violated and checked and step.evidence["scores"] == {"clip_t_s": 12.0}


def test_clip_rule_met_when_cvs_reached_first(r):
    obs = cvs_run(0, 10, 0.2) + cvs_run(10, 20, 0.9)
    entered = {"ClippingCutting": run("phase", "ClippingCutting", 15, 20)}
    step, violated, checked = cvs.clip_rule_step(r, Timeline(obs), 20.0, RULE, entered)
    assert not violated and checked
    assert step.evidence["scores"] == {"cvs_t_s": 10.0, "clip_t_s": 15.0}


def test_clip_rule_uncheckable_without_cvs_assessment(r):
    obs = [Observation(3.0, 15, "event", "cut", 0.9)]
    step, violated, checked = cvs.clip_rule_step(r, Timeline(obs), 10.0, RULE, {})
    assert not step.ok and not violated and not checked


def test_skipped_text_says_what_was_skipped_or_that_nothing_was():
    p = [{"spoken": "calot triangle dissection"}]
    assert procedure._skipped_text(p, False, True) == \
        "Yes: the calot triangle dissection phase was skipped."
    assert procedure._skipped_text([], True, True) == \
        "Clipping started before the critical view of safety was reached."
    assert procedure._skipped_text([], False, False).startswith(
        "No expected step was skipped so far. I am not sure")


# ---------------------------------------------------------------- survey and relations
def test_gap_evidence_names_the_jump_around_missed_segments(r):
    order = ["duodenum_d1", "duodenum_d2", "duodenum_d3"]
    good = {"duodenum_d1": run("region", "duodenum_d1", 0, 5),
            "duodenum_d3": run("region", "duodenum_d3", 65, 70)}
    text = survey._gap_evidence(r, order, ["duodenum_d1", "duodenum_d3"], ["duodenum_d2"], good)
    assert text.startswith("The camera went from the ")
    assert "(last seen at 0:05)" in text and "(from 1:05)" in text and text.endswith(".")
    assert survey._gap_evidence(r, order, order, [], good) == ""


def test_relation_lookup_knows_its_relations(r):
    assert relations._found(r, "gallbladder", "no_such_relation") is None
    facts, keys, phrase, sentence = relations._found(r, "gallbladder", "supplied_by")
    assert "cystic_artery" in keys and all(f.p == "supplied_by" for f in facts)
    assert phrase == "what the gallbladder is supplied by"
    assert sentence.startswith("The gallbladder is supplied by the ")


# ---------------------------------------------------------------- ranking
def test_match_scores_agreeing_cues_higher_with_reasons():
    same, why = ranking.match({"pulsatile": True, "calibre": "large"},
                              {"pulsatile": True, "calibre": "large"})
    assert same == pytest.approx(1.0) and why == ["pulsatile", "large calibre"]
    off, why_off = ranking.match({"pulsatile": True}, {"pulsatile": False})
    assert off == pytest.approx(0.2) and why_off == []
    assert ranking.match({}, {}) == (0.5, [])


def test_match_reads_a_relative_calibre_against_the_expected_one():
    finding = {"calibre": "large", "calibre_relative": True}
    assert ranking.match(finding, {"calibre": "large"}, "medium")[0] == pytest.approx(1.0)
    assert ranking.match(finding, {"calibre": "medium"}, "medium")[0] == pytest.approx(0.8)
    assert ranking.match(finding, {"calibre": "small"}, "medium")[0] == pytest.approx(0.2)


def test_side_phrase_uses_the_first_sided_adjacency(r):
    facts = [f for f in r.kg.facts if f.p == "adjacent_to" and f.side == "posterior"][:1]
    assert facts and ranking.side_phrase(facts) == "behind"
    assert ranking.side_phrase([]) == "next to"
