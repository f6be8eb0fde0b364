"""Pronunciations (ARPAbet) for the recogniser's dictionary: a curated surgical lexicon,
espeak-ng's phonemes mapped to ARPAbet, CMUdict look-ups and British (non-rhotic) forms."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess

#: Curated pronunciations (ARPAbet) for surgical words absent from CMUdict.
SURGICAL_LEXICON: dict[str, str] = {
    "ampulla": "AE M P UH L AH",
    "caecum": "S IY K AH M",
    "cecum": "S IY K AH M",
    "calot": "K AE L OW",
    "calots": "K AE L OW Z",
    "caudate": "K AO D EY T",
    "celiac": "S IY L IY AE K",
    "coeliac": "S IY L IY AE K",
    "falciform": "F AE L S IH F AO R M",
    "fundus": "F AH N D AH S",
    "gastroduodenal": "G AE S T R OW D UW AH D IY N AH L",
    "hartmanns": "HH AA R T M AH N Z",
    "hartmann": "HH AA R T M AH N",
    "hepatocystic": "HH EH P AH T OW S IH S T IH K",
    "ileum": "IH L IY AH M",
    "jejunum": "JH AH JH UW N AH M",
    "ligamentum": "L IH G AH M EH N T AH M",
    "omentum": "OW M EH N T AH M",
    "papilla": "P AH P IH L AH",
    "pulsatile": "P AH L S AH T AY L",
    "pylorus": "P AY L AO R AH S",
    "quadrate": "K W AA D R EY T",
    "teres": "T EH R IY Z",
    "laparoscopic": "L AE P ER AH S K AA P IH K",
    "cholecystectomy": "K OW L AH S IH S T EH K T AH M IY",
}

# espeak-ng (en-us, ``-x``) phoneme mnemonics -> ARPAbet.
_ESPEAK_TO_ARPA: dict[str, str] = {
    "a": "AE", "a#": "AH", "@": "AH", "@L": "AH L", "@3": "ER", "3": "ER", "3:": "ER",
    "A:": "AA", "A@": "AA R", "A": "AA", "aa": "AA", "aI": "AY", "aU": "AW", "E": "EH",
    "e@": "EH R", "eI": "EY", "I": "IH", "I2": "IH", "I#": "IH", "i": "IY", "i:": "IY",
    "i@": "IH R", "i@3": "IH R", "O": "AO", "O:": "AO", "O@": "AO R", "OI": "OY",
    "oU": "OW", "o@": "AO R", "U": "UH", "u:": "UW", "U@": "UH R", "V": "AH", "0": "AA",
    "e": "EH", "aI@": "AY ER", "aU@": "AW ER", "IR": "IH R", "VR": "ER",
    "b": "B", "d": "D", "f": "F", "g": "G", "h": "HH", "k": "K", "l": "L", "m": "M",
    "n": "N", "p": "P", "r": "R", "s": "S", "t": "T", "v": "V", "w": "W", "z": "Z",
    "dZ": "JH", "tS": "CH", "S": "SH", "Z": "ZH", "T": "TH", "D": "DH", "N": "NG",
    "j": "Y", "t#": "T", "d#": "D", "n-": "N", "l-": "L", "r-": "R", "?": "T", "*": "T",
    "L": "L", "x": "K", "m-": "M",
}


@functools.lru_cache(maxsize=4096)
def espeak_pronunciation(word: str) -> str | None:
    """ARPAbet pronunciation of ``word`` from espeak-ng's phonemes, or None if unavailable."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    out = subprocess.run(
        [exe, "-q", "-x", "--sep=_", "-v", "en-us", "--", word],
        capture_output=True, text=True, timeout=10,
    ).stdout
    return _espeak_to_arpa(out)


def _espeak_to_arpa(out: str) -> str | None:
    """ARPAbet for espeak-ng ``-x --sep=_`` output of one word."""
    phones: list[str] = []
    for tok in out.replace("\n", " ").replace(" ", "_").split("_"):
        tok = tok.strip("',%=")
        if not tok:
            continue
        arpa = _ESPEAK_TO_ARPA.get(tok)
        if arpa is None and len(tok) > 1:  # variants: "t2", "O2", "@2", "I#"
            arpa = _ESPEAK_TO_ARPA.get(tok.rstrip("#:123456789"))
        if arpa:
            phones.extend(arpa.split())
    return " ".join(phones) or None


@functools.lru_cache(maxsize=16)
def espeak_pronunciations(words: tuple[str, ...], voice: str = "en-us") -> dict[str, str]:
    """ARPAbet from espeak-ng's phonemes for many words in one call ({} without espeak-ng)."""
    exe = shutil.which("espeak-ng")
    if exe is None or not words:
        return {}
    out = subprocess.run([exe, "-q", "-x", "--sep=_", "-v", voice],
                         input="".join(f"{w}.\n" for w in words), capture_output=True,
                         text=True, timeout=60).stdout.splitlines()
    lines = [ln for ln in out if ln.strip()]
    if len(lines) != len(words):  # espeak-ng split or merged a line: word by word
        return {w: p for w in words if (p := espeak_pronunciation(w))}
    return {w: p for w, ln in zip(words, lines, strict=True) if (p := _espeak_to_arpa(ln))}


@functools.lru_cache(maxsize=4)
def _cmudict(path: str) -> frozenset[str]:
    return frozenset(_cmudict_prons(path))


@functools.lru_cache(maxsize=4)
def _cmudict_prons(path: str) -> dict[str, tuple[str, ...]]:
    """Word -> its pronunciations (ARPAbet strings) in the dictionary at ``path``."""
    prons: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if parts:
                word = re.sub(r"\(\d+\)$", "", parts[0])
                prons.setdefault(word, []).append(" ".join(parts[1:]))
    return {w: tuple(p) for w, p in prons.items()}


_ARPA_VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())


def non_rhotic(pron: str) -> str:
    """British (non-rhotic) form of an ARPAbet pronunciation: an R not followed by a vowel
    is dropped and ER becomes AH there ("liver" L IH V ER -> L IH V AH, "mark" M AA R K ->
    M AA K); before a vowel the R is kept ("coverage" -> K AH V AH R IH JH)."""
    ph = pron.split()
    out: list[str] = []
    for i, p in enumerate(ph):
        before_vowel = i + 1 < len(ph) and ph[i + 1] in _ARPA_VOWELS
        if p == "ER":
            out.extend(["AH", "R"] if before_vowel else ["AH"])
        elif p == "R" and out[-2:] == ["AH", "R"]:  # "ER R" + vowel: one linking R
            continue
        elif p == "R" and i > 0 and ph[i - 1] in _ARPA_VOWELS and not before_vowel:
            continue
        else:
            out.append(p)
    return " ".join(out)
