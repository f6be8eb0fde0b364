"""Phrasing: how the reasoner says numbers, times, lists and image positions."""

from __future__ import annotations

from typing import Any

#: labels said without an article ("I see fat in ...")
MASS_NOUNS = frozenset({"fat", "connective tissue", "blood", "bile", "smoke"})


def count_words(n: int, noun: str) -> str:
    """ "one fact", "three facts" (numbers up to twelve in words)."""
    words = "no one two three four five six seven eight nine ten eleven twelve".split()
    return f"{words[n] if 0 <= n < len(words) else n} {noun}{'' if n == 1 else 's'}"


def fmt_time(t_s: float) -> str:
    """Media time as m:ss."""
    m, s = divmod(max(0, int(round(t_s))), 60)
    return f"{m}:{s:02d}"


def join_words(items: list[str], conj: str = "and") -> str:
    """Join as "a", "a and b", "a, b and c" (or with ``conj`` = "or")."""
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + f" {conj} " + items[-1]


def position_words(centroid: Any) -> str:
    """Normalised (x, y) centroid -> "upper left of the image" style words."""
    try:
        x, y = float(centroid[0]), float(centroid[1])
    except (TypeError, ValueError, IndexError):
        return "in view"
    v = "upper" if y < 1 / 3 else "lower" if y > 2 / 3 else "middle"
    h = "left" if x < 1 / 3 else "right" if x > 2 / 3 else "centre"
    if v == "middle" and h == "centre":
        return "in the centre of the image"
    if v == "middle":
        return f"on the {h} of the image"
    if h == "centre":
        return f"in the {v} centre of the image"
    return f"in the {v} {h} of the image"


def describe(cues: dict[str, Any], label: str) -> str:
    """A detection in words: "bleeding", "a large pulsatile vessel", "fat", "a gallbladder"."""
    words = []
    if cues.get("pulsatile"):
        words.append("pulsatile")
    if label == "blood":
        return "bleeding"
    if label in ("large vessel",):
        return "a " + " ".join(["large", *words, "vessel"])
    article = "" if label in MASS_NOUNS else "a "  # "I see fat", not "a fat"
    return article + " ".join([*words, label])
