"""The recogniser's grammar from the catalogue: forms it leaves out still parse as text."""

from copilot.cli_speech import GRAMMAR_LEFT_OUT, catalogue_grammar
from kg_reasoning.catalogue import load_catalogue


def test_grammar_leaves_out_confusable_numbers_but_the_catalogue_keeps_them():
    g = catalogue_grammar()
    cat = load_catalogue()
    assert "fifty" in GRAMMAR_LEFT_OUT["minutes"]
    assert "fifty" not in g.slot_forms["minutes"]
    assert {"fifteen", "sixty", "forty five"} <= set(g.slot_forms["minutes"])
    assert g.matches("copilot mute alerts for fifteen minutes")
    assert not g.matches("copilot mute alerts for fifty minutes")
    # typed queries and open-vocabulary transcripts still carry the value
    p = cat.parse("copilot, mute alerts for fifty minutes")
    assert p is not None and (p.intent, p.slots) == ("mute_alerts", {"minutes": 50})
