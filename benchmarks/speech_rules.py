"""Decision rules over recorded recogniser outputs (benchmarks/speech_natural.py), scored and
chosen offline: thresholds and rules are chosen on dev records, then applied to test.

A Moonshine record holds the best catalogue sentence ``cmd`` (with the wake word), its
``margin`` (constrained minus free log-probability, nats), the free transcript ``free`` and
its ``wake_sim``; the pocketsphinx record the default decision (grammar wake slot AND
spotter / strong slot) and the spotter's own ``spot``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass

from speech.constrain import strip_wake

WAKE_RULES = ("constraint", "neural", "spotter", "neural_or_spotter")
HYBRIDS = ("moonshine", "ps_first", "ms_first", "pocketsphinx")


@dataclass(frozen=True)
class Rule:
    """One decision: ``backend`` (pocketsphinx / tiny / base), ``hybrid`` (how pocketsphinx
    and Moonshine combine), margin / wake thresholds, wake rule, free-form on / off."""

    backend: str = "tiny"
    hybrid: str = "moonshine"
    min_margin: float = -6.0
    min_wake: float = 0.75
    wake_rule: str = "constraint"
    free_form: bool = False

    def as_dict(self) -> dict:
        """JSON form."""
        return asdict(self)


def moonshine_decide(m: dict, spot: bool, rule: Rule) -> tuple[bool, str]:
    """(accepted, text) of one Moonshine record under ``rule``."""
    neural = m["wake_sim"] >= rule.min_wake
    wake_ok = {"constraint": True, "neural": neural, "spotter": spot,
               "neural_or_spotter": neural or spot}[rule.wake_rule]
    if m["cmd"] and m["margin"] >= rule.min_margin and wake_ok:
        return True, m["cmd"]
    if rule.free_form and rule.wake_rule != "spotter":
        rest = strip_wake(m["free"], "copilot", rule.min_wake)
        if rest:
            return True, "copilot " + rest
    return False, ""


def decide(r: dict, rule: Rule) -> tuple[bool, str]:
    """(accepted, text) of a record under ``rule``."""
    ps = (bool(r["ps"]["accepted"]), r["ps"]["text"])
    if rule.hybrid == "pocketsphinx" or rule.backend == "pocketsphinx":
        return ps
    m = r.get(rule.backend)
    if m is None:
        raise KeyError(rule.backend)
    ms = moonshine_decide(m, r["spot"], rule)
    if rule.hybrid == "ps_first":
        return ps if ps[0] else ms
    if rule.hybrid == "ms_first":
        return ms if ms[0] else ps
    return ms


def truth_ok(parse: Callable, text: str, truth: list | None) -> bool:
    """The parse of ``text`` has the true intent and slots."""
    if truth is None or not text:
        return False
    p = parse(text)
    return p is not None and [p.intent, p.slots] == [truth[0], truth[1]]


def score(records: list[dict], rule: Rule, parse: Callable) -> dict:
    """Accuracy per family and SNR (commands), false accepts (negatives)."""
    acc: dict[str, dict[str, list[int]]] = {}
    fa, neg = 0, 0
    for r in records:
        if rule.backend not in ("pocketsphinx",) and rule.backend not in r:
            continue
        ok, text = decide(r, rule)
        if r["family"] in ("chatter", "real"):
            neg += 1
            fa += int(ok)
            continue
        cell = acc.setdefault(r["family"], {}).setdefault(f"{int(r['snr'])}dB", [0, 0])
        cell[0] += int(ok and truth_ok(parse, text, r["truth"]))
        cell[1] += 1
    out = {fam: {snr: round(c / n, 4) for snr, (c, n) in cells.items()} | {
        "n": sum(n for _, n in cells.values()) // max(1, len(cells))}
        for fam, cells in acc.items()}
    cells = [v for fam in acc.values() for v in fam.values()]
    mean = sum(c / n for c, n in cells) / len(cells) if cells else 0.0
    return {"accuracy": out, "mean": round(mean, 4), "false_accepts": fa, "negatives": neg}


def grid(backend: str) -> list[Rule]:
    """Candidate rules for ``backend`` (pocketsphinx: the one default decision)."""
    if backend == "pocketsphinx":
        return [Rule("pocketsphinx", "pocketsphinx")]
    return [Rule(backend, h, tm, tw, wr, ff) for h, tm, tw, wr, ff in itertools.product(
        ("moonshine", "ps_first", "ms_first"),
        (-2.0, -4.0, -6.0, -8.0, -10.0, -12.0, -15.0, -20.0, -25.0, -30.0, -35.0, -40.0),
        (0.6, 0.7, 0.75, 0.8, 0.9), WAKE_RULES, (False, True))
        if not (wr in ("constraint", "spotter") and tw != 0.75)]


def choose(records: list[dict], backend: str, parse: Callable, hybrid: str | None = None,
           max_fa: int = 0) -> tuple[Rule, dict]:
    """The rule of ``backend`` (and ``hybrid`` if given) with the best mean dev accuracy and
    at most ``max_fa`` false accepts on the dev negatives; ties: fewer false accepts, then
    the stricter margin."""
    best = None
    for rule in grid(backend):
        if hybrid is not None and rule.hybrid != hybrid:
            continue
        s = score(records, rule, parse)
        if s["false_accepts"] > max_fa:
            continue
        key = (s["mean"], -s["false_accepts"], rule.min_margin)
        if best is None or key > best[0]:
            best = (key, rule, s)
    if best is None:  # nothing meets max_fa: the fewest false accepts
        rule = min(grid(backend), key=lambda r: score(records, r, parse)["false_accepts"])
        return rule, score(records, rule, parse)
    return best[1], best[2]
