"""How sure the copilot is that it understood: a calibrated probability per parse (issue 20).

The understanding's probability ``p_parse`` is what every answer's confidence starts from
(``Reasoner.answer`` multiplies it with the evidence's completeness and the perception's
own probabilities). Exact template matches get 1.0; a partial match (template words exact,
a slot's words unknown) gets ``partial``; near-exact (fuzzy) and semantic matches get a
logistic model of their features:

- the match score (1 - word edit distance / length for fuzzy, cosine for semantic),
- the share of the content words that the copilot does not know (not in the catalogue, the
  knowledge graph or the matcher's example sentences; "what is the current lactate": 1/2),
- the margin of the best intent over the runner-up intent (semantic only).

The weights are fitted on the DEV question sets (``data/questions_dev.yaml``,
``data/semantic_eval.yaml`` and ``data/questions_dev_v1.yaml``, the first held-out set after
its one run) by ``python -m kg_reasoning.calibration --fit``, which writes
``data/confidence_calibration.json`` with the dev reliability table and expected calibration
error (ECE). The held-out set (``data/questions_heldout_v2.yaml``) is never read here; the
benchmark (``benchmarks.bench_reasoner``) reports on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from kg_reasoning.parse_confidence import (  # noqa: F401 - re-exported
    ANSWER_MIN,
    CALIBRATION_PATH,
    DATA_DIR,
    DEFAULT,
    features,
    load_calibration,
    parse_probability,
)

#: dev sets: tuned on (questions_dev_v1.yaml was the first held-out set until its one run)
DEV_FILES = (DATA_DIR / "questions_dev.yaml", DATA_DIR / "semantic_eval.yaml",
             DATA_DIR / "questions_dev_v1.yaml")
#: the held-out set: written before the tuning it judges, never tuned on
HELDOUT_FILE = DATA_DIR / "questions_heldout_v2.yaml"


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 0.01, steps: int = 4000,
                 lr: float = 0.5) -> np.ndarray:
    """L2-regularised logistic regression by gradient descent (features standardised)."""
    mu = x[:, 1:].mean(axis=0)
    sd = x[:, 1:].std(axis=0) + 1e-6
    z = np.hstack([x[:, :1], (x[:, 1:] - mu) / sd])
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30, 30)))
        g = z.T @ (p - y) / len(y) + l2 * np.r_[0.0, w[1:]]
        w -= lr * g
    # back to raw features
    raw = np.empty_like(w)
    raw[1:] = w[1:] / sd
    raw[0] = w[0] - float(np.sum(w[1:] * mu / sd))
    return raw


def reliability(conf: list[float], correct: list[bool], bins: int = 10
                ) -> tuple[float, list[dict[str, Any]]]:
    """Expected calibration error and the reliability table (equal-width bins over 0-1)."""
    c = np.asarray(conf, dtype=float)
    y = np.asarray(correct, dtype=float)
    rows, ece = [], 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        m = (c >= lo) & ((c < hi) if b < bins - 1 else (c <= hi))
        if not m.any():
            continue
        acc, mean = float(y[m].mean()), float(c[m].mean())
        ece += m.sum() / len(c) * abs(acc - mean)
        rows.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": int(m.sum()),
                     "mean_confidence": round(mean, 3), "accuracy": round(acc, 3)})
    return round(float(ece), 4), rows


def load_questions(path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(paraphrases [(text, intent)], off-topic [(text, category)]) of a question file;
    reads both the issue-20 format and semantic_eval.yaml's (positives / negatives)."""
    import yaml

    d = yaml.safe_load(path.read_text())
    pos = d.get("paraphrases") or d.get("positives") or []
    neg = d.get("off_topic") or d.get("negatives") or []
    return ([(str(t), str(i)) for t, i in pos],
            [(str(x[0]), str(x[1]) if len(x) > 1 else "off-topic") for x in neg])


def score_set(files: tuple[Path, ...], cal: dict[str, Any] | None = None,
              matcher: Any = None) -> list[dict[str, Any]]:
    """Understand every question of ``files``: one row per question with its features,
    the probability and whether the intent was right (off-topic: right = not understood)."""
    from kg_reasoning.catalogue import load_catalogue
    from kg_reasoning.loaders import load_default
    from kg_reasoning.nlu import understand

    cat, kg = load_catalogue(), load_default()
    if matcher is None:
        from kg_reasoning.semantic import SemanticMatcher

        matcher = SemanticMatcher(cat)
    rows = []
    for f in files:
        pos, neg = load_questions(f)
        for text, want, off in [(t, i, False) for t, i in pos] + [(t, c, True) for t, c in neg]:
            u = understand(text, cat, kg, matcher, cal=cal)
            guess = u.detail.get("guess_intent")
            rows.append({
                "file": f.name, "text": text, "expected": None if off else want,
                "category": want if off else None, "method": u.method,
                "score": round(u.score, 4), "n_unknown": u.detail.get("n_unknown", 0),
                "unknown_share": u.detail.get("unknown_share", 0.0),
                "changed": u.detail.get("changed", 0),
                "margin": u.detail.get("margin", 0.0), "guess": guess,
                "p": round(u.confidence, 4), "answered": u.question is not None,
                "answered_unknown": bool(u.detail.get("unresolved_unknown")),
                "right_intent": (guess == want) if not off else False,
            })
    return rows


def fit(write: bool = True) -> dict[str, Any]:
    """Fit the weights on the dev sets; returns (and writes) the record."""
    from kg_reasoning.semantic import SemanticMatcher

    matcher = SemanticMatcher()
    matcher.catalogue_embeddings(write_cache=write)  # the shipped cache stays current
    rows = score_set(DEV_FILES, cal={"partial": 1.0, "w": [0.0] * 7}, matcher=matcher)
    model = [r for r in rows if r["method"] in ("fuzzy", "semantic")]
    x = np.array([features(r["method"], r["score"], r["unknown_share"], r["margin"],
                           r["changed"]) for r in model])
    y = np.array([1.0 if r["right_intent"] else 0.0 for r in model])
    # signs the features must have (a clearer lead cannot make it less likely, unknown or
    # changed words cannot make it more likely): a feature fitted the wrong way is dropped
    sign = {4: 1.0, 3: -1.0, 5: -1.0, 6: -1.0}
    w = fit_logistic(x, y)
    while bad := [k for k, sg in sign.items() if w[k] * sg < 0]:
        x[:, bad] = 0.0
        w = fit_logistic(x, y)
        w[bad] = 0.0
    part = [r for r in rows if r["method"] == "partial" and not r["answered_unknown"]]
    # a partial parse whose slot words the graph does not know is abstained by the reasoner
    # ("I do not know the canteen"); the others (a term of a merged ontology): the share of
    # right intents among them on dev (Laplace-smoothed)
    partial = (sum(r["right_intent"] for r in part) + 1) / (len(part) + 2)
    cal = {"partial": round(partial, 4), "w": [round(float(v), 5) for v in w]}
    rows = score_set(DEV_FILES, cal=cal, matcher=matcher)
    ece, table = reliability([r["p"] for r in rows if r["guess"]],
                             [r["right_intent"] for r in rows if r["guess"]])
    record = {
        **cal,
        "features": ["1", "is_fuzzy", "score", "share of content words unknown",
                     "semantic margin", "any unknown content word",
                     "fuzzy: content words that differ from the template"],
        "fitted_on": [f.name for f in DEV_FILES],
        "n_dev": len(rows), "n_model_rows": len(model),
        "dev_ece": ece, "dev_reliability": table,
        "answer_min": ANSWER_MIN,
        "command": "python -m kg_reasoning.calibration --fit",
        "note": "dev only; the held-out set is reported by python -m benchmarks.bench_reasoner",
    }
    if write:
        CALIBRATION_PATH.write_text(json.dumps(record, indent=1) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    """CLI: ``--fit`` writes data/confidence_calibration.json from the dev sets."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="fit on the dev sets and write")
    ap.add_argument("--show", action="store_true", help="print the dev rows")
    args = ap.parse_args(argv)
    if args.fit:
        r = fit()
        print(json.dumps({k: v for k, v in r.items() if k != "dev_reliability"}, indent=1))
    if args.show:
        for r in score_set(DEV_FILES):
            print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
