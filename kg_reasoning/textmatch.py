"""Word-level matching helpers of the catalogue parser: function words, word edit distance
with the differing words, slot-form spans, and even spreading of picks (no state)."""

from __future__ import annotations

import difflib
import functools
from typing import Any

#: Function words: never content words, whether or not the catalogue uses them.
FUNCTION_WORDS = frozenset(
    "a an the this that these those it its is are was were be been am do does did have has "
    "had we i you me my our your us of in on at to for from by with about into over under up "
    "down off out back again now here there then so and or but not no what which who where "
    "when why how any some all every each much many more just only very too also please s d "
    "ll t re ve m can could would will shall should may might must let lets get got whats "
    "wheres thats its im ive youre weve theres dont didnt doesnt isnt arent wasnt havent "
    "hasnt cant wont".split()
)


@functools.lru_cache(maxsize=65536)
def _word_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    if a.startswith("<") or b.startswith("<"):
        return 1.0
    return 0.5 if difflib.SequenceMatcher(None, a, b).ratio() >= 0.75 else 1.0


def _edit_distance(a: list[str], b: list[str]) -> float:
    """Word-level Levenshtein distance; similar-sounding spellings cost 0.5."""
    return _align(a, b)[0]


def _align(a: list[str], b: list[str]) -> tuple[float, list[tuple[str | None, str | None]]]:
    """Word-level Levenshtein distance and the words of ``a`` that differ from ``b``: pairs
    (word of a or None, word of b or None) for every substitution (cost 1; a similar
    spelling, cost 0.5, is not listed), insertion and deletion."""
    n, m = len(a), len(b)
    d = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = float(i)
    for j in range(m + 1):
        d[0][j] = float(j)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + _word_cost(a[i - 1], b[j - 1]))
    diff: list[tuple[str | None, str | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i][j] == d[i - 1][j - 1] + _word_cost(a[i - 1], b[j - 1]):
            if _word_cost(a[i - 1], b[j - 1]) >= 1.0:
                diff.append((a[i - 1], b[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and d[i][j] == d[i - 1][j] + 1:
            diff.append((a[i - 1], None))
            i -= 1
        else:
            diff.append((None, b[j - 1]))
            j -= 1
    return d[n][m], diff[::-1]


def _spans(forms: dict[str, Any], text: str) -> tuple[tuple[int, int, Any], ...]:
    words = text.split()
    taken = [False] * len(words)
    spans: list[tuple[int, int, Any]] = []
    for form in sorted(forms, key=lambda f: (-len(f.split()), -len(f))):
        fw = form.split()
        n = len(fw)
        for i in range(len(words) - n + 1):
            if words[i : i + n] == fw and not any(taken[i : i + n]):
                spans.append((i, i + n, forms[form]))
                for k in range(i, i + n):
                    taken[k] = True
    if not spans:
        for form in sorted(forms, key=lambda f: (-len(f.split()), -len(f))):
            if len(form) < 5:
                continue
            n = len(form.split())
            for i in range(len(words) - n + 1):
                if any(taken[i : i + n]):
                    continue
                cand = " ".join(words[i : i + n])
                sm = difflib.SequenceMatcher(None, cand, form)
                if (
                    sm.real_quick_ratio() >= 0.85
                    and sm.quick_ratio() >= 0.85
                    and (sm.ratio() >= 0.85)
                ):
                    spans.append((i, i + n, forms[form]))
                    for k in range(i, i + n):
                        taken[k] = True
    spans.sort()
    return tuple(spans)


def _spread(per_tpl: list[list[Any]], k: int, dims: list[list[int]] | None = None,
            phase: float = 0.5) -> list[list[Any]]:
    """Pick at most ``k`` items over the lists: equal shares per list, evenly spaced inside.

    ``dims`` (stratified picking): each list is the product of slots of these sizes (first
    slot outermost); the g-th of all G picks takes, in slot d, the value at ``phase``
    (0-1) of stratum (g + d) mod G of that slot's values.
    """
    quotas = [0] * len(per_tpl)
    remaining = k
    open_idx = [i for i, lst in enumerate(per_tpl) if lst]
    while remaining > 0 and open_idx:
        share = max(1, remaining // len(open_idx))
        nxt = []
        for i in open_idx:
            if remaining <= 0:
                break
            add = min(share, len(per_tpl[i]) - quotas[i], remaining)
            quotas[i] += add
            remaining -= add
            if quotas[i] < len(per_tpl[i]):
                nxt.append(i)
        open_idx = nxt
    n_picks = sum(q for lst, q in zip(per_tpl, quotas, strict=True) if q < len(lst))
    g = 0
    out = []
    for i, (lst, q) in enumerate(zip(per_tpl, quotas, strict=True)):
        if q >= len(lst):
            out.append(list(lst))
        elif dims is not None and q:
            picks = []
            for _ in range(q):
                idx = 0
                for d, size in enumerate(dims[i]):
                    stratum = (g + d) % n_picks
                    idx = idx * size + min(size - 1, int((stratum + phase) * size / n_picks))
                picks.append(lst[idx])
                g += 1
            out.append(picks)
        else:
            out.append([lst[(j * len(lst)) // q] for j in range(q)] if q else [])
    return out
