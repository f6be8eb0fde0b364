"""Issue 20: no confident answer to a question it did not understand; every step cites ids;
no count without as many citations; no alphabetical tie-break; every relation askable;
grammatical sentences; the held-out questions are kept apart from the dev ones."""

from __future__ import annotations

import re

import pytest
import yaml

from kg_reasoning.calibration import DATA_DIR, DEV_FILES, HELDOUT_FILE, load_questions
from kg_reasoning.catalogue import normalise
from kg_reasoning.graph import VERBS
from kg_reasoning.nlu import ask, understand
from kg_reasoning.reasoner import Question, Reasoner
from kg_reasoning.timeline import Observation, Timeline
from tests.kg_reasoning.cite_ids import cited_ids

FPS = 5


def run(kind: str, name: str, t0: float, t1: float, score: float = 0.9, **attrs):
    """Observations of one class every 0.2 s over [t0, t1)."""
    return [Observation(round(t0 + i / FPS, 3), int(round((t0 + i / FPS) * FPS)), kind, name,
                        score, dict(attrs)) for i in range(int(round((t1 - t0) * FPS)))]


@pytest.fixture(scope="module")
def r() -> Reasoner:
    return Reasoner()


@pytest.fixture(scope="module")
def session() -> Timeline:
    """Phases in order, CVS reached, a bowel survey and two visible structures."""
    obs = run("phase", "Preparation", 0, 20) + run("phase", "CalotTriangleDissection", 20, 60)
    obs += run("phase", "ClippingCutting", 60, 80)
    for c in ("two_structures", "hepatocystic_triangle_cleared", "cystic_plate_exposed"):
        obs += run("cvs", c, 40, 80, 0.85)
    obs += run("region", "abdominal_cavity", 0, 80, 0.9)
    obs += run("structure", "cystic_duct", 50, 80, 0.8, area=0.02, centroid=[0.4, 0.5])
    obs += run("structure", "liver", 0, 80, 0.7, area=0.3, centroid=[0.5, 0.2])
    return Timeline(obs)


@pytest.mark.parametrize("text,wrong", [
    ("what is the current dose", "current_phase"),
    ("what is the current lactate", "current_phase"),
    ("did we skip any meal", "skipped_step"),
    ("what is the pulse", "explain"),
])
def test_fuzzy_match_with_an_unknown_content_word_is_not_a_match(r, text, wrong):
    p = r.cat.parse(text)
    assert p is None or p.intent != wrong, p
    a = ask(text, r, Timeline(run("phase", "Preparation", 0, 20)))
    assert a.abstained and a.confidence < 0.5 and a.intent != wrong, (a.answer, a.intent)


def test_a_slip_of_the_tongue_still_parses_and_costs_confidence(r, session):
    exact = ask("what phase are we in", r, session)
    slip = ask("what phase are we now in", r, session)  # one word added: fuzzy
    assert slip.intent == exact.intent == "current_phase" and not slip.abstained
    assert slip.data["understanding"]["method"] == "fuzzy"
    assert slip.confidence < exact.confidence  # the parse score is part of the confidence
    assert slip.data["confidence_parts"]["parse"] < 1.0


def test_is_it_safe_to_clip_now_is_the_cvs_question(r, session):
    u = understand("copilot, is it safe to clip now?", r.cat, r.kg)
    assert u.question.intent == "cvs_status" and u.method == "exact"
    a = ask("is it safe to clip now", r, session)
    assert "critical view of safety" in a.answer


@pytest.mark.parametrize("rel,structure,expected", [
    ("branch_of", "cystic_artery", {"right_hepatic_artery"}),
    ("has_branch", "proper_hepatic_artery", {"right_hepatic_artery", "left_hepatic_artery"}),
    ("bounded_by", "hepatocystic_triangle", {"cystic_duct", "common_hepatic_duct", "liver"}),
    ("bounds", "cystic_duct", {"hepatocystic_triangle"}),
    ("contains", "hepatocystic_triangle", {"cystic_artery", "right_hepatic_artery"}),
    ("contained_in", "portal_vein", {"lesser_omentum"}),
])
def test_every_graph_relation_can_be_asked(r, rel, structure, expected):
    a = r.answer(Question("relation_query", {"relation": rel, "structure": structure}))
    assert not a.abstained, a.answer
    assert {e["key"] for e in a.data["entities"]} == expected
    triples = a.steps[-1].evidence["triples"]
    assert len(triples) >= len(expected)  # no count without as many citations


def test_typed_relation_questions_parse(r):
    for text, rel in [("what is the cystic artery a branch of", "branch_of"),
                      ("what bounds the hepatocystic triangle", "bounded_by"),
                      ("what does the hepatocystic triangle contain", "contains")]:
        u = understand(text, r.cat, r.kg)
        assert u.question.slots["relation"] == rel, text
    # typed-only templates stay out of the spoken grammar and the expansions
    assert all("branch of" not in t for t, _, _ in r.cat.expand())


def test_incomplete_list_says_so_and_complete_list_does_not(r):
    part = r.answer(Question("relation_query", {"relation": "drained_by",
                                                "structure": "portal_vein"}))
    assert "may not list them all" in part.answer and part.confidence < 0.95
    full = r.answer(Question("relation_query", {"relation": "bounded_by",
                                                "structure": "hepatocystic_triangle"}))
    assert "may not" not in full.answer and full.data["complete"]


COUNT = re.compile(r"\b(one|two|three|four|five|six|seven|eight|nine|ten) (fact|answer)s?\b")
NUMS = "one two three four five six seven eight nine ten".split()


def _questions(r: Reasoner) -> list[str]:
    return [t for t, _, _ in r.cat.expand(max_per_intent=20)] + [
        "what is the cystic artery a branch of", "what bounds the hepatocystic triangle",
        "what does the hepatocystic triangle contain", "is it safe to clip now"]


def test_every_step_of_every_answer_cites_ids(r, session):
    prev = None
    n = 0
    for timeline in (session, Timeline([]), None):
        for text in _questions(r):
            a = ask(text, r, timeline, previous=prev)
            prev = a
            for st in a.steps:
                n += 1
                assert cited_ids(st.evidence), (text, st.claim, st.evidence)
                m = COUNT.search(st.claim)
                if m and m.group(2) == "fact":  # "from three facts" cites three facts
                    assert len(st.evidence.get("triples", [])) == NUMS.index(m.group(1)) + 1, \
                        st.claim
    assert n > 500


def test_no_alphabetical_tie_break_asks_which_one(r):
    # two findings equally strong, same size, same place: ask, do not pick by name
    obs = run("structure", "cystic_duct", 0, 5, 0.8, area=0.02, centroid=[0.5, 0.5])
    obs += run("structure", "cystic_artery", 0, 5, 0.8, area=0.02, centroid=[0.5, 0.5])
    obs += run("region", "abdominal_cavity", 0, 5, 0.9)
    a = r.answer(Question("identify_structure"), Timeline(obs))
    assert a.abstained and "Which structure do you mean?" in a.answer
    # the larger one decides, and the answer says so
    obs2 = run("structure", "cystic_duct", 0, 5, 0.8, area=0.02, centroid=[0.5, 0.5])
    obs2 += run("structure", "cystic_artery", 0, 5, 0.8, area=0.06, centroid=[0.5, 0.5])
    obs2 += run("region", "abdominal_cavity", 0, 5, 0.9)
    b = r.answer(Question("identify_structure"), Timeline(obs2))
    assert "cystic artery" in b.steps[0].claim and "covers more of the image" in b.steps[0].claim


def test_fact_sentences_are_grammatical(r):
    verbs = sorted(set(VERBS.values()) | {"lies"}, key=len, reverse=True)
    for f in r.kg.facts:
        text = r.fact_text(f)
        s, o = f"the {r.say(f.s)} ", f" the {r.say(f.o)}"
        assert text.startswith(s) and text.endswith(o), text
        middle = text[len(s):len(text) - len(o)]
        assert any(middle == v or middle.startswith(v + " ") for v in verbs), text


def test_relation_sentences_are_grammatical(r):
    # doubled articles, the old "has the parts", a participle without its verb
    bad = re.compile(r"\b(the the|a a|has the parts)\b|(?<!\bis )\b(supplied|bounded|drained) by")
    for rel in ("supplied_by", "supplies", "drains_to", "drained_by", "part_of", "has_part",
                "branch_of", "has_branch", "bounded_by", "bounds", "contains",
                "contained_in", "continuous_with", "next", "previous", "adjacent",
                "posterior", "anterior"):
        for key in r.kg.entities:
            a = r.answer(Question("relation_query", {"relation": rel, "structure": key}))
            assert not bad.search(a.answer), a.answer
            assert a.answer[0].isupper() and a.answer.endswith((".", "?")), a.answer


def test_last_seen_confidence_comes_from_the_sightings(r):
    obs = run("structure", "cystic_duct", 0, 5, 0.9) + run("phase", "Preparation", 0, 200)
    a = r.answer(Question("locate_structure", {"structure": "cystic_duct"}), Timeline(obs))
    obs2 = run("structure", "cystic_duct", 0, 5, 0.6) + run("phase", "Preparation", 0, 200)
    b = r.answer(Question("locate_structure", {"structure": "cystic_duct"}), Timeline(obs2))
    assert "last seen" in a.answer and 0 < b.confidence < a.confidence < 0.9


def test_heldout_and_dev_questions_are_disjoint():
    held = load_questions(HELDOUT_FILE)
    assert len(held[0]) >= 80 and len(held[1]) >= 60
    seen: set[str] = set()
    for f in DEV_FILES:
        pos, neg = load_questions(f)
        seen |= {normalise(t) for t, _ in pos + neg}
    extra = yaml.safe_load((DATA_DIR / "semantic_extra.yaml").read_text())
    examples = {normalise(t) for k, v in extra.items() if k != "_known_words" for t in v}
    for text, _ in held[0] + held[1]:
        assert normalise(text) not in seen, text
        assert normalise(text) not in examples, text
    assert not examples & seen  # the matcher's examples are not dev sentences either


def test_a_large_vessel_is_not_justified_by_small_calibre(r):
    """The hepatocystic triangle in view, a large vessel among its landmarks: whatever the
    hypothesis, "small calibre" is never a reason for "a large vessel"."""
    obs = run("region", "abdominal_cavity", 0, 5, 0.9)
    obs += run("structure", "large_vessel", 0, 5, 0.85, area=0.04, centroid=[0.5, 0.5])
    for name, c in (("cystic_duct", [0.3, 0.6]), ("common_bile_duct", [0.2, 0.8]),
                    ("cystic_artery", [0.4, 0.4]), ("gallbladder", [0.6, 0.3]),
                    ("liver", [0.5, 0.1])):
        obs += run("structure", name, 0, 5, 0.7, area=0.02, centroid=c)
    a = r.answer(Question("identify_structure", {"cue": "large_vessel"}), Timeline(obs))
    assert "small calibre" not in a.answer, a.answer
    assert "hepatocystic triangle" in a.answer  # where: the space the landmarks outline


def test_mass_nouns_are_said_without_an_article() -> None:
    from kg_reasoning.reasoner import Reasoner

    assert Reasoner._describe({}, "fat") == "fat"
    assert Reasoner._describe({"pulsatile": True}, "connective tissue") == \
        "pulsatile connective tissue"
    assert Reasoner._describe({}, "gallbladder") == "a gallbladder"
    assert Reasoner._describe({"pulsatile": True}, "large vessel") == "a large pulsatile vessel"
