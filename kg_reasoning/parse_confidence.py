"""The probability (0-1) that a parse names the intent that was meant, from the fitted
calibration record (``data/confidence_calibration.json``; fitted by
:mod:`kg_reasoning.calibration`, which describes the model and its features)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
CALIBRATION_PATH = DATA_DIR / "confidence_calibration.json"
#: below this probability the copilot does not answer: it says what it is unsure of / asks
ANSWER_MIN = 0.5
#: used until a calibration is fitted (deliberately cautious)
DEFAULT = {"partial": 0.9, "w": [-6.0, 2.0, 8.0, -2.0, 0.0, -1.0, -1.0]}


def features(method: str, score: float, unknown_share: float, margin: float,
             changed: int = 0) -> list[float]:
    """Feature vector [1, is_fuzzy, score, share of content words unknown, margin, any
    unknown content word, fuzzy: content words said that differ from the template]."""
    return [1.0, 1.0 if method == "fuzzy" else 0.0, float(score), float(unknown_share),
            float(margin) if method == "semantic" else 0.0, 1.0 if unknown_share > 0 else 0.0,
            float(changed)]


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def load_calibration(path: Path = CALIBRATION_PATH) -> dict[str, Any]:
    """The fitted weights (``DEFAULT`` when none was fitted)."""
    try:
        d = json.loads(path.read_text())
        return {"partial": float(d["partial"]), "w": [float(x) for x in d["w"]]}
    except (OSError, KeyError, ValueError, TypeError):
        return dict(DEFAULT)


def parse_probability(method: str, score: float, unknown_share: float = 0.0,
                      margin: float = 0.0, cal: dict[str, Any] | None = None,
                      changed: int = 0) -> float:
    """Probability (0-1) that a parse of this kind names the intent that was meant."""
    cal = cal or load_calibration()
    if method == "exact":
        return 1.0
    if method == "partial":
        return float(cal["partial"])
    if method not in ("fuzzy", "semantic"):
        return 0.0
    x = features(method, score, unknown_share, margin, changed)
    w = list(cal["w"]) + [0.0] * (len(x) - len(cal["w"]))  # older records: fewer features
    return _sigmoid(sum(a * v for a, v in zip(w, x, strict=True)))
