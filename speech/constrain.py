"""Catalogue sentences as a word automaton that steers a neural decoder's tokens.

The command bodies of a ``GrammarSpec`` become a minimal word automaton (a trie whose equal
sub-trees are shared); a wake prefix ("copilot", also heard as "co pilot" / "co-pilot") leads
into it. ``SentenceAutomaton.step(state, piece)`` advances over a token's text piece
(lower-cased; punctuation ignored; ``" "`` ends a word), so a beam search can keep only the
tokens that continue some catalogue sentence, whatever sub-word split the decoder prefers.
Numbers may be written as digits ("30 minutes" -> "thirty minutes").

``wake_similarity(text)``: how much the first word(s) of a free transcript look like the wake
word (0-1, letters only), the neural wake path.
"""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from speech.grammar import normalise

_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
          "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
#: characters of a token piece that the automaton skips (case is folded before)
IGNORED = frozenset(".,?!;:\"()")


def digit_variants(words: Sequence[str]) -> list[tuple[str, ...]]:
    """Each maximal number-word phrase of ``words`` replaced by its digits (one variant per
    phrase; "forty five" -> "45")."""
    out: list[tuple[str, ...]] = []
    i = 0
    while i < len(words):
        w = words[i]
        val, n = None, 0
        if w in _TENS:
            val, n = _TENS[w], 1
            if i + 1 < len(words) and words[i + 1] in _UNITS[1:10]:
                val, n = val + _UNITS.index(words[i + 1]), 2
        elif w in _UNITS:
            val, n = _UNITS.index(w), 1
        if val is not None:
            out.append((*words[:i], str(val), *words[i + n:]))
            i += n
        else:
            i += 1
    return out


@dataclass(frozen=True)
class State:
    """Where a partial decode stands: automaton node, letters of the word being spelt, and
    the canonical words so far (a tuple)."""

    node: int
    partial: str
    words: tuple[str, ...]


class SentenceAutomaton:
    """Minimal word automaton of ``bodies`` behind the wake surface forms ``wake``.

    Edges: node -> {surface word: (child, canonical text)}; a digit or split-wake surface
    word carries the canonical words ("45" -> "forty five"), the words after it "".
    """

    def __init__(self, bodies: Iterable[Sequence[str]], wake: Sequence[str] = ("copilot",),
                 wake_optional: bool = False) -> None:
        trie: list[dict[str, list]] = [{}]
        final_t: set[int] = set()

        def insert(surface: Sequence[str], canon: Sequence[str]) -> None:
            node = 0
            for s, c in zip(surface, canon, strict=True):
                edge = trie[node].get(s)
                if edge is None:
                    trie.append({})
                    edge = trie[node][s] = [len(trie) - 1, c]
                node = edge[0]
            final_t.add(node)

        for words in bodies:
            words = tuple(words)
            insert(words, words)
            for var in digit_variants(words):
                canon, k = [], 0  # align: digits take the canonical phrase, rest one-to-one
                for s in var:
                    if s.isdigit():
                        n = 2 if (k + 1 < len(words) and words[k] in _TENS
                                  and words[k + 1] in _UNITS[1:10]) else 1
                        canon.append(" ".join(words[k:k + n]))
                        k += n
                    else:
                        canon.append(words[k])
                        k += 1
                insert(var, canon)
        # minimise: equal sub-trees (finality, edges) share one node, bottom-up
        self.edges: list[dict[str, tuple[int, str]]] = []
        self.final: set[int] = set()
        memo: dict[tuple, int] = {}
        order: list[int] = []
        stack = [(0, False)]
        while stack:  # iterative post-order
            n, done = stack.pop()
            if done:
                order.append(n)
                continue
            stack.append((n, True))
            stack.extend((e[0], False) for e in trie[n].values())
        new_id: dict[int, int] = {}
        for n in order:
            edges = tuple(sorted((s, new_id[c], canon) for s, (c, canon) in trie[n].items()))
            key = (n in final_t, edges)
            if key not in memo:
                memo[key] = len(self.edges)
                self.edges.append({s: (c, canon) for s, c, canon in edges})
                if n in final_t:
                    self.final.add(memo[key])
            new_id[n] = memo[key]
        body_root = new_id[0]
        # the wake prefix: its surface forms lead into the bodies' root
        self.wake_words = tuple(normalise(w) for w in wake)
        start: dict[str, tuple[int, str]] = {}
        for w in self.wake_words:
            start[w] = (body_root, w)
            parts = _split_forms(w)
            if parts:
                mid = len(self.edges)
                self.edges.append({parts[1]: (body_root, "")})
                start[parts[0]] = (mid, w)
        if wake_optional:
            start = {**self.edges[body_root], **start}
        self.start_node = len(self.edges)
        self.edges.append(start)
        self._sorted = [sorted(e) for e in self.edges]  # for prefix look-ups
        self._cache: dict[tuple[int, str, str], State | None] = {}

    def initial(self) -> State:
        """The state before any token."""
        return State(self.start_node, "", ())

    def _prefix_ok(self, node: int, partial: str) -> bool:
        words = self._sorted[node]
        i = bisect.bisect_left(words, partial)
        return i < len(words) and words[i].startswith(partial)

    def step(self, st: State, piece: str) -> State | None:
        """The state after the token text ``piece`` (already lower-cased), None if no
        catalogue sentence continues that way."""
        key = (st.node, st.partial, piece)
        hit = self._cache.get(key, False)
        if hit is not False:
            return None if hit is None else State(hit.node, hit.partial, st.words + hit.words)
        node, partial, words = st.node, st.partial, ()
        ok = True
        for ch in piece:
            if ch in IGNORED:
                continue
            if ch in " -":
                if partial:
                    edge = self.edges[node].get(partial)
                    if edge is None:
                        ok = False
                        break
                    node, partial = edge[0], ""
                    words += (edge[1],) if edge[1] else ()
                continue
            partial += ch
            if not self._prefix_ok(node, partial):
                ok = False
                break
        res = State(node, partial, words) if ok else None
        if len(self._cache) < 500_000:
            self._cache[key] = res
        return None if res is None else State(res.node, res.partial, st.words + res.words)

    def finish(self, st: State) -> tuple[str, ...] | None:
        """The canonical words if the decode may end in ``st``, else None."""
        if not st.partial:
            return st.words if st.node in self.final else None
        edge = self.edges[st.node].get(st.partial)
        if edge is None or edge[0] not in self.final:
            return None
        return st.words + ((edge[1],) if edge[1] else ())


def _split_forms(word: str) -> tuple[str, str] | None:
    """A compound wake word heard as two words ("copilot" -> "co", "pilot")."""
    if word.startswith("co") and len(word) > 4:
        return word[:2], word[2:]
    return None


def wake_similarity(text: str, wake: str = "copilot") -> float:
    """Similarity (0-1) of the letters of the first one or two words of ``text`` to ``wake``
    (the best of the two; "co pilot" -> 1.0, "pilot" -> 0.83, "cobalt" -> 0.62)."""
    words = normalise(text).split()
    if not words:
        return 0.0
    target = wake.replace(" ", "")
    cands = [words[0], "".join(words[:2])]
    return max(difflib.SequenceMatcher(None, c, target).ratio() for c in cands)


def strip_wake(text: str, wake: str = "copilot", min_sim: float = 0.75) -> str | None:
    """``text`` without a leading wake word heard as one or two words (similarity to ``wake``
    at least ``min_sim``), or None when it does not start with one."""
    words = normalise(text).split()
    target = wake.replace(" ", "")
    for n in (1, 2):
        if len(words) > n and difflib.SequenceMatcher(
                None, "".join(words[:n]), target).ratio() >= min_sim:
            return " ".join(words[n:])
    return None
