"""Transcript text to the catalogue's spoken words: lower case, digits and known
abbreviations expanded ("cbd" -> "c b d", "d3" -> "d three"), punctuation dropped."""

from __future__ import annotations

import re

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
#: Abbreviations an ASR may write as one token, expanded to the catalogue's spoken letters.
_ABBREVIATIONS = {
    "ivc": "i v c",
    "cbd": "c b d",
    "sma": "s m a",
    "smv": "s m v",
    "cvs": "critical view of safety",
    "calot's": "calots",
    "hartmann's": "hartmanns",
    "gall-bladder": "gall bladder",
}


def number_words(n: int) -> str:
    """Spoken English for 0 <= n < 100, e.g. 25 -> "twenty five"."""
    if n < 0 or n >= 100:
        return str(n)
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] if ones == 0 else f"{_TENS[tens]} {_ONES[ones]}"


def normalise(text: str) -> str:
    """Lower-case, expand digits and known abbreviations, drop punctuation, squeeze spaces."""
    t = text.lower().strip()
    for abbr, full in _ABBREVIATIONS.items():
        t = re.sub(rf"(?<![a-z]){re.escape(abbr)}(?![a-z])", full, t)
    t = re.sub(r"\bd\s?([1-4])\b", lambda m: "d " + _ONES[int(m.group(1))], t)
    t = re.sub(r"\d+", lambda m: " " + number_words(int(m.group(0))) + " ", t)
    t = t.replace("'", "").replace("-", " ")
    t = re.sub(r"[^a-z ]+", " ", t)
    return " ".join(t.split())
