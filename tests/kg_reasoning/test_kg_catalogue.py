"""The command / question catalogue: contract with speech and the feed generator."""

from __future__ import annotations

import pytest

from kg_reasoning.catalogue import load_catalogue, normalise
from kg_reasoning.errors import KGError

SHARED_INTENTS = {
    "outline_structure": {"structure", "colour"},
    "hide_overlay": {"structure"},
    "show_overlay": set(),
    "identify_structure": {"cue"},
    "missed_segments": {"minutes"},
    "cvs_status": set(),
    "confirm_cvs": set(),
    "deny_cvs": set(),
    "skipped_step": set(),
    "relation_query": {"relation", "structure"},
    "locate_structure": {"structure"},
    "current_phase": set(),
    "show_coverage": set(),
    "explain": set(),
    "repeat": set(),
    "stop": set(),
    "acknowledge": set(),
    "mute_alerts": {"minutes"},
    "bookmark": set(),
}


@pytest.fixture(scope="module")
def cat():
    return load_catalogue()


def test_intents_and_slots_match_the_shared_contract(cat):
    assert set(cat.intents) == set(SHARED_INTENTS)
    for name, slots in SHARED_INTENTS.items():
        assert set(cat.intents[name].slots) == slots, name
        assert cat.intents[name].templates, name
    assert cat.intents["mute_alerts"].state_changing
    assert cat.intents["outline_structure"].state_changing
    assert not cat.intents["cvs_status"].state_changing


def test_slot_values(cat):
    s = cat.slot_values["structure"]
    assert "cystic duct" in s["cystic_duct"]
    assert "third part of the duodenum" in s["duodenum_d3"]
    for name in ("common_bile_duct", "gallbladder", "cystic_artery", "liver", "large_vessel"):
        assert name in s
    assert set(cat.slot_values["colour"]) == {
        "red",
        "green",
        "blue",
        "yellow",
        "white",
        "orange",
        "purple",
        "cyan",
    }
    minutes = cat.slot_values["minutes"]
    assert minutes[5] == ["five"] and minutes[15] == ["fifteen"] and minutes[60] == ["sixty"]
    assert cat.spoken("structure", "duodenum_d3") == "third part of the duodenum"


def test_expand_is_complete_deterministic_and_capped(cat):
    full = cat.expand()
    assert len(full) > 5000
    assert (
        "outline the cystic duct in red",
        "outline_structure",
        {"structure": "cystic_duct", "colour": "red"},
    ) in full
    capped = cat.expand(max_per_intent=10)
    assert capped == cat.expand(max_per_intent=10)
    per_intent: dict[str, int] = {}
    for _, intent, _ in capped:
        per_intent[intent] = per_intent.get(intent, 0) + 1
    assert set(per_intent) == set(SHARED_INTENTS)
    assert max(per_intent.values()) <= 10
    woke = cat.expand(max_per_intent=2, wake_word=True)
    assert all(t.startswith("copilot ") for t, _, _ in woke)


def test_stratified_expansion_covers_many_slot_values(cat):
    first = cat.expand(max_per_intent=3)
    strat = cat.expand(max_per_intent=3, stratify=True)
    assert strat == cat.expand(max_per_intent=3, stratify=True)  # deterministic
    assert [i for _, i, _ in strat] == [i for _, i, _ in first]  # same intents and counts

    def values(sents, slot):
        return [s[slot] for _, _, s in sents if slot in s]

    # each template's first combination: one structure, one number, one colour
    assert set(values(first, "structure")) == {"liver"}
    assert set(values(first, "minutes")) == {1}
    # stratified: the picks of each intent differ, and intents sit at other places
    assert len(set(values(strat, "structure"))) >= 8
    # (4 since confirm_cvs / deny_cvs moved every later intent to another place)
    assert len(set(values(strat, "minutes"))) >= 4
    assert len(set(values(strat, "colour"))) == 3
    for text, intent, slots in strat:
        p = cat.parse("copilot " + text)
        assert p is not None and (p.intent, p.slots) == (intent, slots), text


def test_every_expanded_sentence_parses_back_exactly(cat):
    for text, intent, slots in cat.expand(max_per_intent=120):
        p = cat.parse("copilot " + text)
        assert p is not None and p.method == "exact", text
        assert (p.intent, p.slots) == (intent, slots), text
        assert p.wake_word


def test_vocabulary_covers_expansions(cat):
    vocab = cat.vocabulary()
    for text, _, _ in cat.expand(max_per_intent=50):
        assert set(text.split()) <= vocab, text
    assert "copilot" in vocab and "duodenum" in vocab


@pytest.mark.parametrize(
    ("text", "intent", "slots"),
    [
        (
            "Copilot, outline the cystic duct in red.",
            "outline_structure",
            {"structure": "cystic_duct", "colour": "red"},
        ),
        ("copilot, hide the outline", "hide_overlay", {}),
        ("copilot, what is this large vessel?", "identify_structure", {"cue": "large_vessel"}),
        (
            "Copilot, did we miss a view of any bowel segment in the last fifteen minutes?",
            "missed_segments",
            {"minutes": 15},
        ),
        ("is the critical view of safety reached?", "cvs_status", {}),
        (
            "copilot, what lies behind the third part of the duodenum?",
            "relation_query",
            {"relation": "posterior", "structure": "duodenum_d3"},
        ),
        ("where is the CBD?", "locate_structure", {"structure": "common_bile_duct"}),
        ("copilot, mute alerts for 5 minutes", "mute_alerts", {"minutes": 5}),
        (
            "copilot what supplies the gallbladder",
            "relation_query",
            {"relation": "supplied_by", "structure": "gallbladder"},
        ),
    ],
)
def test_parse_exact(cat, text, intent, slots):
    p = cat.parse(text)
    assert p is not None
    assert (p.intent, p.slots, p.score, p.method) == (intent, slots, 1.0, "exact")


def test_parse_near_exact(cat):
    p = cat.parse("copilot could you outline cystic duct in red")
    assert p is not None and p.method == "fuzzy" and 0.7 <= p.score < 1.0
    assert (p.intent, p.slots) == (
        "outline_structure",
        {"structure": "cystic_duct", "colour": "red"},
    )
    p = cat.parse("outline the cystic duck in blue")  # misheard structure word
    assert p is not None and p.slots == {"structure": "cystic_duct", "colour": "blue"}
    p = cat.parse("copilot what lies behind D3")
    assert p is not None and p.slots == {"relation": "posterior", "structure": "duodenum_d3"}


@pytest.mark.parametrize(
    "text",
    [
        "who won the match?",
        "what is the patient's blood type?",
        "copilot",
        "",
        "order a pizza for the team",
    ],
)
def test_parse_rejects_off_catalogue(cat, text):
    assert cat.parse(text) is None


def test_normalise():
    assert normalise("Calot's triangle, D3 -- 15 min!") == "calots triangle d three fifteen min"


def test_missing_or_bad_file_raises_kgerror(tmp_path):
    with pytest.raises(KGError):
        load_catalogue(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "wake_word: copilot\nintents: {x: {slots: [foo], templates: ['{foo}']}}\nslot_values: {}\n"
    )
    with pytest.raises(KGError, match="unknown slot"):
        load_catalogue(bad)
