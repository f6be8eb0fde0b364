"""What the copilot shows and reports on real video: only what real labels taught the model.

The real-frame model learnt from Endoscapes frames, which label five anatomy classes
(cystic plate, hepatocystic triangle, cystic artery, cystic duct, gallbladder) and "tool" (any
instrument, not its type). Every other class (liver, fat, gi tract, lumen, blood, ...), the
instrument's type and the tool-presence head were taught by synthetic scenes only. On real
video (``copilot.validity``: not one of the project's synthetic feeds) the overlay draws only
the taught classes, with every instrument class drawn and named as one "instrument"; findings
of untaught classes and of the tool-presence head are dropped, and seg instrument findings are
named "instrument". Seen on the 9 real clips before this: "lumen" and "gi tract" outlines on
fat and omentum, and a hook named "grasper" (docs/real_video.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

from copilot.messages import Finding
from vision.datasets.endoscapes import ENDOSCAPES_GROUPS
from vision.labels import CLASS_ID, CLASSES, INSTRUMENT_CLASSES

#: The anatomy classes real labels taught (Endoscapes' groups of one class each).
REAL_TAUGHT_ANATOMY: frozenset[str] = frozenset(g[0] for g in ENDOSCAPES_GROUPS[1:]
                                                if len(g) == 1)
#: The one name of every instrument class on real video (real frames label only "tool").
INSTRUMENT = "instrument"
_KEEP_ID = CLASS_ID[INSTRUMENT_CLASSES[0]]  # the id every instrument class is drawn as


def _lut() -> np.ndarray:
    """Class id -> id drawn on real video: untaught classes -> 0 (not drawn), instruments ->
    one id."""
    lut = np.zeros(256, np.uint8)
    for i, name in enumerate(CLASSES):
        if name in REAL_TAUGHT_ANATOMY:
            lut[i] = i
        elif name in INSTRUMENT_CLASSES:
            lut[i] = _KEEP_ID
    return lut


LUT = _lut()
#: Class names for the overlay's labels on real video.
NAMES: tuple[str, ...] = tuple(INSTRUMENT if i == _KEEP_ID else n for i, n in enumerate(CLASSES))


def taught_label_map(classes: np.ndarray, scores: dict[int, float]
                     ) -> tuple[np.ndarray, dict[int, float]]:
    """(class-id map with only taught classes, their detection scores) for the overlay; the
    instrument's score is the best of the instrument classes'."""
    out = LUT[np.asarray(classes, np.uint8)]
    kept = {i: s for i, s in scores.items() if i < len(CLASSES) and LUT[i] == i and i}
    inst = [s for i, s in scores.items() if i < len(CLASSES)
            and CLASSES[i] in INSTRUMENT_CLASSES]
    if inst:
        kept[_KEEP_ID] = max(inst)
    return out, kept


def taught_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Findings without untaught structures and the tool-presence head; segmented instruments
    renamed "instrument" (the best one kept when several types were segmented)."""
    out: list[Finding] = []
    best: Finding | None = None
    for f in findings:
        if f.kind == "structure" and f.name not in REAL_TAUGHT_ANATOMY:
            continue
        if f.kind == "instrument":
            if f.attrs.get("head") == "tools" or f.name not in INSTRUMENT_CLASSES:
                continue
            if best is None or f.score > best.score:
                best = f
            continue
        out.append(f)
    if best is not None:
        out.append(dataclasses.replace(best, name=INSTRUMENT))
    return out


def untaught_note(structure: str | None) -> str | None:
    """Why an answer about ``structure`` (a vision class the real labels never taught) is not
    to be trusted on real video; None when it was taught or is no vision class."""
    if not structure or structure not in CLASS_ID or structure in REAL_TAUGHT_ANATOMY \
            or structure in INSTRUMENT_CLASSES or structure == "background":
        return None
    taught = ", ".join(sorted(n.replace("_", " ") for n in REAL_TAUGHT_ANATOMY))
    return (f"I was never shown a real {structure.replace('_', ' ')}: on real video I find only "
            f"the {taught} and instruments.")
