"""Does an answer state an expected fact? The benchmarks' and tests' fact matcher for the
feeds' scripted questions (``expected_facts`` of truth.json)."""

from __future__ import annotations

import re

#: Extra spoken forms accepted by :func:`fact_in_answer` for canonical keys.
FACT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "duodenum_d1": ("first part of the duodenum", "duodenal bulb", "d1", "d one"),
    "duodenum_d2": ("second part of the duodenum", "descending duodenum", "d2", "d two"),
    "duodenum_d3": ("third part of the duodenum", "horizontal duodenum", "d3", "d three"),
    "duodenum_d4": ("fourth part of the duodenum", "ascending duodenum", "d4", "d four"),
    "abdominal_aorta": ("aorta",),
    "inferior_vena_cava": ("vena cava", "ivc"),
    "CalotTriangleDissection": ("calot", "hepatocystic triangle"),
    "ClippingCutting": ("clipping",),
    "GallbladderDissection": ("gallbladder dissection",),
    "GallbladderPackaging": ("packaging", "specimen bag"),
    "CleaningCoagulation": ("cleaning", "coagulation"),
    "GallbladderRetraction": ("retraction", "extraction"),
    "caecum": ("cecum",),
    "calot_triangle": ("hepatocystic triangle", "calot triangle", "calots triangle"),
    # the CVS criteria in the wording of the knowledge graph (SAGES)
    "cystic_plate_exposed": ("lower third of the gallbladder", "cystic plate"),
    "two_structures": ("two and only two structures",),
    "hepatocystic_triangle_cleared": ("hepatocystic triangle cleared",),
    "not reached": ("not yet", "not achieved", "not been reached"),
}
_STOP = {"the", "of", "and", "a", "an", "part"}


def _tokens(text: str) -> list[str]:
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    return [w for w in re.split(r"[^a-z0-9]+", text.lower().replace("_", " ")) if w]


def fact_in_answer(fact: str, answer: str) -> bool:
    """Does ``answer`` state ``fact``? Case, ``_`` / CamelCase and filler words are ignored;
    a fact matches when all its content words appear, or one of FACT_SYNONYMS does."""
    ans = set(_tokens(answer))
    ans_text = " ".join(_tokens(answer))
    for form in (fact, *FACT_SYNONYMS.get(fact, ())):
        words = [w for w in _tokens(form) if w not in _STOP] or _tokens(form)
        if all(w in ans for w in words) or " ".join(_tokens(form)) in ans_text:
            return True
    return False

