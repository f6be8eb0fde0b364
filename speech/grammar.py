"""The recogniser's grammar: JSGF built from command templates and slot spoken forms.

Inputs are plain data handed in by the caller (the copilot takes them from the command
catalogue and the knowledge graph), so this module knows no intents:

- ``templates``: sentences with ``{slot}`` placeholders, e.g.
  ``"outline the {structure} in {colour}"``;
- ``slot_forms``: slot name -> spoken forms, e.g. ``{"colour": ["red", "green"]}``;
- ``wake_words``: spoken forms of the wake word (``["copilot"]``).

Words missing from the pocketsphinx dictionary get a pronunciation from a small curated
surgical lexicon, or else from espeak-ng's phonemes mapped to ARPAbet
(``speech.pronunciation``; its names are re-exported here).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from speech.errors import SpeechError
from speech.pronunciation import _ARPA_VOWELS as _ARPA_VOWELS
from speech.pronunciation import _ESPEAK_TO_ARPA as _ESPEAK_TO_ARPA
from speech.pronunciation import (
    SURGICAL_LEXICON,
    _cmudict,
    _cmudict_prons,
    espeak_pronunciation,
    espeak_pronunciations,
    non_rhotic,
)
from speech.pronunciation import _espeak_to_arpa as _espeak_to_arpa

__all__ = ["DEFAULT_WAKE_COMPETITORS", "SURGICAL_LEXICON", "GrammarSpec", "espeak_pronunciation",
           "espeak_pronunciations", "non_rhotic", "normalise"]

_SLOT = re.compile(r"\{(\w+)\}")
_WORD = re.compile(r"^[a-z][a-z']*$")

#: First words of ordinary theatre talk, competing with the wake word (see ``GrammarSpec``).
#: Words that sound like "copilot" (cop, copy, pilot) and words that start command bodies
#: (what, where, did, show, stop ...) are deliberately absent.
DEFAULT_WAKE_COMPETITORS: tuple[str, ...] = tuple(
    "the a i we could you lets it that this okay so and pass give hold turn check "
    "count keep please he she how hi oh no yes now they there then"
    .split()
)


def normalise(text: str) -> str:
    """Lower case, letters/apostrophes only, single spaces."""
    text = text.lower().replace("-", " ")
    return " ".join(re.sub(r"[^a-z' ]", " ", text).split())


@dataclass
class GrammarSpec:
    """What the recogniser accepts: wake words + templates with slots filled by spoken forms."""

    templates: Sequence[str]
    slot_forms: dict[str, Sequence[str]]
    wake_words: Sequence[str] = ("copilot",)
    wake_optional: bool = False
    extra_words: dict[str, str] = field(default_factory=dict)
    #: Words that compete with the wake word at the start of an utterance (chatter's first
    #: words): if one of them wins, the utterance was not addressed to the copilot.
    wake_competitors: Sequence[str] = ()
    competitor_weight: float = 0.1
    #: Words that may end a command without changing it ("... in red please"): a command
    #: whose only continuations are one of these counts as final (``is_final``).
    trailing_fillers: Sequence[str] = ("please",)
    #: Pronunciation variants added to the dictionary's (``alternative_pronunciations``);
    #: () for the dictionary alone.
    alt_prons: Sequence[str] = ("non-rhotic", "espeak")

    def __post_init__(self) -> None:
        if not self.templates:
            raise SpeechError("grammar needs at least one command template")
        for t in self.templates:
            for slot in _SLOT.findall(t):
                if not self.slot_forms.get(slot):
                    raise SpeechError(f"template {t!r} uses slot {{{slot}}} with no spoken forms")

    def words(self) -> set[str]:
        """Every word the grammar can produce."""
        ws: set[str] = set()
        for t in self.templates:
            ws.update(normalise(_SLOT.sub(" ", t)).split())
        for slot in self._used_slots():
            for form in self.slot_forms[slot]:
                ws.update(normalise(form).split())
        for w in [*self.wake_words, *self.wake_competitors]:
            ws.update(normalise(w).split())
        return ws

    def _used_slots(self) -> list[str]:
        used: list[str] = []
        for t in self.templates:
            for s in _SLOT.findall(t):
                if s not in used:
                    used.append(s)
        return used

    def pronunciations(self, dict_path: str | Path) -> dict[str, str]:
        """ARPAbet for words absent from the dictionary at ``dict_path``; SpeechError if none."""
        known = _cmudict(str(dict_path))
        extra: dict[str, str] = {}
        for w in sorted(self.words()):
            if w in known:
                continue
            pron = self.extra_words.get(w) or SURGICAL_LEXICON.get(w) or espeak_pronunciation(w)
            if not pron:
                raise SpeechError(f"no pronunciation for grammar word {w!r}")
            extra[w] = pron
        return extra

    def alternative_pronunciations(self, dict_path: str | Path) -> dict[str, str]:
        """Extra pronunciations ``"word(n)" -> ARPAbet`` for grammar words (``alt_prons``).

        "espeak": espeak-ng's own phonemes (en-us) mapped to ARPAbet, where they differ from
        the dictionary's ("acknowledge" AH K N AA L IH JH, "minutes" M IH N IH T S).
        "non-rhotic": the British form (``non_rhotic``) of every pronunciation, dictionary's
        and espeak-ng's: the dictionary is American, and espeak-ng's (and many surgeons')
        British voices say "liver" without the R colouring that the acoustic model's ER
        expects.

        Caveat: the speech benchmark's voices are espeak-ng's too, so the "espeak" variants
        help it more than they would help human speakers (dev set, benchmark procedure:
        dictionary only 94.1 / 66.7 %, with variants 98.0 / 70.6 % at 15 / 5 dB; compare
        with ``bench_speech --alt-prons none``). Real recordings are the judge.
        """
        if not self.alt_prons:
            return {}
        known = _cmudict_prons(str(dict_path))
        extra = self.pronunciations(dict_path)
        # the wake slot's competitor words keep the dictionary's (the wake decision is
        # calibrated on them; "turn" without its R let chatter through on the dev set)
        comp = {normalise(w) for w in self.wake_competitors}
        words = tuple(sorted(self.words() - comp))
        esp = espeak_pronunciations(words) if "espeak" in self.alt_prons else {}
        out: dict[str, str] = {}
        for w in words:
            prons = list(known.get(w, ())) or ([extra[w]] if w in extra else [])
            cand = [esp[w]] if w in esp else []
            if "non-rhotic" in self.alt_prons:
                cand += [non_rhotic(p) for p in [*prons, *cand]]
            new = [q for q in dict.fromkeys(cand) if q not in prons]
            for k, q in enumerate(new):
                out[f"{w}({len(prons) + k + 1})"] = q
        return out

    def to_jsgf(self, name: str = "copilot", wake: bool = True) -> str:
        """The JSGF text: ``<command> = <wake> <body>`` (wake optional / absent as configured)."""
        slot_rules = []
        for slot in self._used_slots():
            forms = sorted({normalise(f) for f in self.slot_forms[slot] if normalise(f)})
            slot_rules.append(f"<{slot}> = ({' | '.join(forms)});")
        bodies = []
        for t in self.templates:
            parts = []
            pos = 0
            for m in _SLOT.finditer(t):
                lit = normalise(t[pos : m.start()])
                if lit:
                    parts.append(lit)
                parts.append(f"<{m.group(1)}>")
                pos = m.end()
            lit = normalise(t[pos:])
            if lit:
                parts.append(lit)
            bodies.append(" ".join(parts))
        bodies = sorted(set(bodies))
        wake_forms = sorted({normalise(w) for w in self.wake_words if normalise(w)})
        lines = ["#JSGF V1.0;", f"grammar {name};"]
        if wake:
            wake_ref = "[<wake>]" if self.wake_optional else "<wake>"
            lines.append(f"public <command> = {wake_ref} <body>;")
            if self.wake_competitors:
                comp = sorted({normalise(w) for w in self.wake_competitors} - set(wake_forms))
                lines.append(f"<wake> = (/1.0/ ({' | '.join(wake_forms)}) | "
                             f"/{self.competitor_weight:g}/ ({' | '.join(comp)}));")
            else:
                lines.append(f"<wake> = ({' | '.join(wake_forms)});")
        else:
            lines.append("public <command> = <body>;")
        lines.append(f"<body> = ({' | '.join(bodies)});")
        lines.extend(slot_rules)
        return "\n".join(lines) + "\n"

    def sentences(self) -> set[tuple[str, ...]]:
        """Every command body of the grammar as a word tuple (wake word not included)."""
        out: set[tuple[str, ...]] = set()
        for t in self.templates:
            parts: list[list[tuple[str, ...]]] = []
            pos = 0
            for m in _SLOT.finditer(t):
                lit = normalise(t[pos : m.start()]).split()
                parts.extend([[(w,)] for w in lit])
                forms = {tuple(normalise(f).split()) for f in self.slot_forms[m.group(1)]}
                parts.append(sorted(f for f in forms if f))
                pos = m.end()
            parts.extend([[(w,)] for w in normalise(t[pos:]).split()])
            for combo in itertools.product(*parts):
                words = tuple(w for piece in combo for w in piece)
                if words:
                    out.add(words)
        return out

    def to_fsg(self) -> tuple[int, int, list[tuple]]:
        """The grammar as a minimal word automaton: (start, final, transitions).

        Transitions are pocketsphinx ``create_fsg`` tuples ``(from, to, prob[, word])``
        (no word: an epsilon arc). The command bodies form a minimal deterministic automaton
        (shared prefixes *and* suffixes), so the search keeps one copy of each word where the
        JSGF compiler inlines a slot's word list once per template: same language, a fraction
        of the active HMMs. Each state's arcs share its probability mass equally; the wake
        slot and its competitor words are weighted as in ``to_jsgf``.
        """
        # trie of the bodies
        children: list[dict[str, int]] = [{}]
        final = [False]
        for words in sorted(self.sentences()):
            node = 0
            for w in words:
                nxt = children[node].get(w)
                if nxt is None:
                    nxt = len(children)
                    children.append({})
                    final.append(False)
                    children[node][w] = nxt
                node = nxt
            final[node] = True
        # minimise bottom-up (equivalent states share a signature); iterative post-order
        canon: dict[int, int] = {}
        register: dict[tuple, int] = {}
        arcs: dict[int, list[tuple[str, int]]] = {}
        accept: dict[int, bool] = {}
        stack = [(0, False)]
        while stack:
            node, done = stack.pop()
            if not done:
                stack.append((node, True))
                stack.extend((c, False) for c in children[node].values())
                continue
            sig = (final[node], tuple(sorted((w, canon[c]) for w, c in children[node].items())))
            state = register.get(sig)
            if state is None:
                state = len(register) + 2  # 0: start, 1: final
                register[sig] = state
                arcs[state] = list(sig[1])
                accept[state] = sig[0]
            canon[node] = state
        root = canon[0]
        trans: list[tuple] = []
        for st, out in arcs.items():
            n = len(out) + (1 if accept[st] and out else 0)
            for w, dst in out:
                to = 1 if (not arcs[dst] and accept[dst]) else dst
                trans.append((st, to, 1.0 / n, w))
            if accept[st] and out:
                trans.append((st, 1, 1.0 / n))
        wake_forms = sorted({normalise(w) for w in self.wake_words if normalise(w)})
        comp = sorted({normalise(w) for w in self.wake_competitors} - set(wake_forms))
        p_wake = 1.0 / (1.0 + self.competitor_weight) if comp else 1.0
        if self.wake_optional:
            p_wake *= 0.5
            trans.append((0, root, 0.5))
        for i, form in enumerate(wake_forms):
            words = form.split()
            src = 0
            for k, w in enumerate(words):
                dst = root if k == len(words) - 1 else 10**7 + 100 * i + k
                trans.append((src, dst, (p_wake / len(wake_forms)) if k == 0 else 1.0, w))
                src = dst
        for w in comp:
            p = (1.0 - p_wake / (0.5 if self.wake_optional else 1.0)) / len(comp)
            trans.append((0, root, p * (0.5 if self.wake_optional else 1.0), w))
        # compact state numbers
        ids = {0: 0, 1: 1}
        for a, b, *_ in trans:
            for x in (a, b):
                if x not in ids:
                    ids[x] = len(ids)
        return 0, 1, [(ids[a], ids[b], *rest) for a, b, *rest in trans]

    def prepare(self) -> None:
        """Build the lookups ``completion`` and ``matches`` use (they are built on first use,
        which cost a listener's first utterance ~0.4 s before its transcript)."""
        self._trie()
        self._regex()

    def _regex(self) -> re.Pattern[str]:
        if getattr(self, "_compiled", None) is None:
            alts = []
            for t in self.templates:
                out, pos = [], 0
                for m in _SLOT.finditer(t):
                    out.append(re.escape(normalise(t[pos : m.start()])))
                    forms = sorted({normalise(f) for f in self.slot_forms[m.group(1)]}, key=len,
                                   reverse=True)
                    out.append("(?:" + "|".join(re.escape(f) for f in forms if f) + ")")
                    pos = m.end()
                out.append(re.escape(normalise(t[pos:])))
                alts.append(r"\s*".join(x for x in out if x).replace(r"\ ", r"\s+"))
            wake = "|".join(re.escape(normalise(w)) for w in self.wake_words)
            self._compiled = re.compile(rf"^(?:(?:{wake})\s+)?(?:{'|'.join(alts)})$")
        return self._compiled

    def _trie(self) -> dict:
        """Command bodies as a nested dict of words; the key ``""`` marks a sentence end."""
        if getattr(self, "_trie_cache", None) is None:
            root: dict = {}
            for words in self.sentences():
                node = root
                for w in words:
                    node = node.setdefault(w, {})
                node[""] = {}
            self._trie_cache = root
        return self._trie_cache

    def completion(self, text: str) -> str:
        """How far ``text`` (after an optional wake or competitor word) got in the grammar:
        "final" (a complete command that nothing but one of ``trailing_fillers`` extends),
        "complete" (a command that a longer one extends), "prefix" or "none".

        The listener ends an utterance early on a final or complete hypothesis
        (``speech.listener``).
        """
        words = normalise(text).split()
        firsts = {normalise(w) for w in [*self.wake_words, *self.wake_competitors]}
        fillers = {normalise(w) for w in self.trailing_fillers}
        best = "none"
        rank = {"none": 0, "prefix": 1, "complete": 2, "final": 3}
        for skip in ((0, 1) if words and words[0] in firsts else (0,)):
            node = self._trie()
            for w in words[skip:]:
                node = node.get(w)
                if node is None:
                    break
            else:
                if "" not in node:
                    got = "prefix"
                elif all(k == "" or (k in fillers and set(v) == {""}) for k, v in node.items()):
                    got = "final"
                else:
                    got = "complete"
                best = max(best, got, key=rank.__getitem__)
        return best

    def is_final(self, text: str) -> bool:
        """True when ``text`` is a final command (``completion``)."""
        return self.completion(text) == "final"

    def matches(self, text: str) -> bool:
        """True when ``text`` is a complete sentence of the grammar (wake word optional)."""
        return bool(self._regex().match(normalise(text)))

    @classmethod
    def from_sentences(cls, sentences: Iterable[str], wake_words: Sequence[str] = ("copilot",)
                       ) -> GrammarSpec:
        """A grammar of literal sentences (no slots), e.g. for tests."""
        return cls(templates=list(dict.fromkeys(normalise(s) for s in sentences)), slot_forms={},
                   wake_words=wake_words)
