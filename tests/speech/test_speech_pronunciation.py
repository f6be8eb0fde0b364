"""Pronunciation variants of the grammar: British (non-rhotic) forms next to CMUdict's."""

from __future__ import annotations

import pytest

from speech.asr import PocketsphinxASR
from speech.grammar import GrammarSpec, non_rhotic


def test_speech_non_rhotic_forms():
    assert non_rhotic("L IH V ER") == "L IH V AH"  # liver
    assert non_rhotic("M AA R K") == "M AA K"  # mark
    assert non_rhotic("K AH V ER IH JH") == "K AH V AH R IH JH"  # coverage: linking R kept
    assert non_rhotic("R EH D") == "R EH D"  # a leading R stays
    assert non_rhotic("M Y UW T") == "M Y UW T"


def test_speech_alternative_pronunciations_reach_the_decoder():
    from speech.asr import _model_path

    g = GrammarSpec(["outline the {s}"], {"s": ["liver", "lumen", "fundus"]},
                    alt_prons=("non-rhotic",))
    alts = g.alternative_pronunciations(_model_path("en-us/cmudict-en-us.dict"))
    assert alts["liver(2)"] == "L IH V AH"
    assert not any(k.startswith(("lumen(", "fundus(")) for k in alts)  # no R: no variant
    g.alt_prons = ()
    assert g.alternative_pronunciations(_model_path("en-us/cmudict-en-us.dict")) == {}
    # the wake slot's competitor words keep the dictionary's pronunciations only
    g = GrammarSpec(["turn the {s} on"], {"s": ["liver"]}, wake_competitors=("turn", "there"))
    alts = g.alternative_pronunciations(_model_path("en-us/cmudict-en-us.dict"))
    assert "liver(2)" in alts and not any(k.startswith(("turn(", "there(")) for k in alts)
    asr = PocketsphinxASR(GrammarSpec(["outline the {s}"], {"s": ["liver", "lumen"]}))
    assert asr._dec.lookup_word("liver(2)") == "L IH V AH"
    assert asr._dec.lookup_word("lumen(2)") == "L UW M EH N"  # espeak-ng's vowel


@pytest.mark.parametrize("seed", [5300, 5301, 5302])
def test_speech_british_liver_recognised(asr, catalogue, seed):
    """A British espeak-ng voice saying "liver" (no R colouring) in 15 dB OR noise: the
    non-rhotic variant lets the recogniser hear "liver" (without it: "lumen" on these seeds)."""
    from speech.testset import Voice, make_sample

    s = make_sample("copilot draw the liver in red", Voice("en-gb+edward", 150, 45), 15.0,
                    seed=seed)
    tr = asr.transcribe(s.audio)
    p = catalogue.parse(tr.text)
    assert tr.accepted and p is not None, tr.text
    assert p.slots.get("structure") == "liver", tr.text


def test_speech_espeak_variants_batch_matches_single_calls():
    from speech.grammar import espeak_pronunciation, espeak_pronunciations

    words = ("acknowledge", "minutes", "stop", "liver")
    batch = espeak_pronunciations(words)
    assert batch == {w: espeak_pronunciation(w) for w in words}
    assert batch["acknowledge"] == "AH K N AA L IH JH"
    assert batch["stop"] == "S T AA P"  # espeak-ng's "t2" variant mapped to T
