"""What the copilot shows and reports on real video: only what real labels taught the model.

A model card (``config.json`` ``extra.real_taught``) lists the classes that real labels taught
it; ``"tool"`` means "any instrument" was labelled but not its type. The shipped real-frame
model learnt from Endoscapes frames: five anatomy classes (cystic plate, hepatocystic triangle,
cystic artery, cystic duct, gallbladder) and "tool". Every other class (liver, fat, gi tract,
lumen, blood, ...), the instrument's type and the tool-presence head were taught by synthetic
scenes only. On real video (``copilot.validity``: not one of the project's synthetic feeds) the
overlay draws only the taught classes (instruments of an untaught type as one "instrument");
findings of untaught classes and of the tool-presence head are dropped. A card that lists
nothing (a synthetic-only model) has nothing drawn on real video. Seen on the 9 real clips
before this: "lumen" and "gi tract" outlines on fat and omentum, and a hook named "grasper"
(docs/real_video.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from copilot.messages import Finding
from vision.datasets.endoscapes import ENDOSCAPES_TAUGHT
from vision.labels import CLASS_ID, CLASSES, INSTRUMENT_CLASSES

__all__ = ["ENDOSCAPES_TAUGHT", "INSTRUMENT", "TOOL", "RealView", "for_model", "from_card"]

#: The card's name for "any instrument, type not labelled".
TOOL = "tool"
#: The one name of every instrument class when only "tool" was taught.
INSTRUMENT = "instrument"
_TOOL_ID = CLASS_ID[INSTRUMENT_CLASSES[0]]  # the id every instrument class is drawn as


class RealView:
    """The classes a model's card says real labels taught; filters its findings and overlay."""

    def __init__(self, taught: Iterable[str]) -> None:
        names = set(taught)
        self.taught = frozenset(n for n in names if n in CLASS_ID and n != "background")
        self.anatomy = self.taught - set(INSTRUMENT_CLASSES)
        self.tool = TOOL in names  # instruments taught as one group, not by type
        lut = np.zeros(256, np.uint8)
        for i, name in enumerate(CLASSES):
            if name in self.taught:
                lut[i] = i
            elif self.tool and name in INSTRUMENT_CLASSES:
                lut[i] = _TOOL_ID
        self.lut = lut
        #: class names for the overlay's labels
        self.names: tuple[str, ...] = tuple(
            INSTRUMENT if self.tool and i == _TOOL_ID and n not in self.taught else n
            for i, n in enumerate(CLASSES))

    def card(self) -> list[str]:
        """The taught list as a card writes it."""
        return sorted(self.taught) + ([TOOL] if self.tool else [])

    def _merged(self, name: str) -> bool:
        """An instrument class drawn and reported as one "instrument"."""
        return self.tool and name in INSTRUMENT_CLASSES and name not in self.taught

    def label_map(self, classes: np.ndarray, scores: dict[int, float]
                  ) -> tuple[np.ndarray, dict[int, float]]:
        """(class-id map with only taught classes, their detection scores) for the overlay;
        a merged instrument's score is the best of the instrument classes'."""
        out = self.lut[np.asarray(classes, np.uint8)]
        kept = {i: s for i, s in scores.items()
                if 0 < i < len(CLASSES) and CLASSES[i] in self.taught}
        inst = [s for i, s in scores.items() if i < len(CLASSES) and self._merged(CLASSES[i])]
        if inst:
            kept[_TOOL_ID] = max([*inst, kept.get(_TOOL_ID, 0.0)])
        return out, kept

    def findings(self, findings: Iterable[Finding]) -> list[Finding]:
        """Findings without untaught classes and the tool-presence head; merged instruments
        named "instrument" (the best one kept when several types were segmented)."""
        out: list[Finding] = []
        best: Finding | None = None
        for f in findings:
            if f.kind in ("structure", "instrument"):
                if f.attrs.get("head") == "tools":
                    continue
                if self._merged(f.name):
                    if best is None or f.score > best.score:
                        best = f
                    continue
                if f.name not in self.taught:
                    continue
            out.append(f)
        if best is not None:
            out.append(dataclasses.replace(best, name=INSTRUMENT))
        return out

    def untaught_note(self, structure: str | None) -> str | None:
        """Why an answer about ``structure`` (a vision class no real label taught) is not to
        be trusted on real video; None when it was taught or is no vision class."""
        if not structure or structure not in CLASS_ID or structure in self.taught \
                or structure in INSTRUMENT_CLASSES or structure == "background":
            return None
        head = f"I was never shown a real {structure.replace('_', ' ')}: "
        if not self.taught and not self.tool:
            return head + "no real label taught this model anything."
        taught = ", ".join(sorted(n.replace("_", " ") for n in self.anatomy))
        inst = self.tool or bool(self.taught & set(INSTRUMENT_CLASSES))
        return head + "on real video I find only " + (
            f"the {taught} and instruments." if taught and inst
            else f"the {taught}." if taught else "instruments.")


def from_card(extra: dict) -> RealView:
    """The view for a model card's ``extra`` (``ModelConfig.extra``); a card without
    ``real_taught`` lists nothing taught by real labels."""
    taught = extra.get("real_taught") or []
    return RealView(t for t in taught if isinstance(t, str))


def for_model(model_dir: Path | str | None) -> RealView:
    """The view of the model in ``model_dir`` (None: the shipped default), from its card."""
    from vision.errors import VisionError
    from vision.modelio import DEFAULT_MODEL_DIR, load_config

    try:
        return from_card(load_config(Path(model_dir or DEFAULT_MODEL_DIR)).extra)
    except VisionError:
        return RealView(())
