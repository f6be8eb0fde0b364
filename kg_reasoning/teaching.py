"""Spoken teaching commands (issue 23): "copilot, this is the accessory duct" and friends.

The sentences live in ``data/teaching.yaml`` (not among the catalogue's intents, so the
semantic matcher is unchanged); this module parses a transcript into a
:class:`TeachCommand` and gives the recogniser's grammar its templates and names.

Vocabulary: a spoken name must be in some vocabulary to be heard. The teachable names are
``names`` in the YAML (things no model here has a class for: accessory duct, aberrant artery,
duct of Luschka, landmark one..three, ...) plus every spoken structure form of the catalogue.
Teach / not / forget accept any of those; "where is / outline / hide the <name>" are taught
commands only when the name has been taught (otherwise the catalogue's intents answer).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from kg_reasoning.catalogue import Catalogue, load_catalogue, normalise
from kg_reasoning.errors import KGError

TEACHING_PATH = Path(__file__).parent / "data" / "teaching.yaml"
#: Commands that change what the copilot knows (confirmed like other state changes).
STATE_CHANGING = frozenset({"teach_concept", "teach_negative", "forget_concept",
                            "outline_taught", "hide_taught"})
#: Commands about an already taught name.
ABOUT_TAUGHT = frozenset({"locate_taught", "outline_taught", "hide_taught"})


@dataclass
class TeachCommand:
    """A parsed teaching command: ``intent`` (a key of ``commands``), the concept's name
    (lower case, as the copilot says it back) and the colour for outlines."""

    intent: str
    name: str | None = None
    colour: str | None = None
    text: str = ""


class TeachingCommands:
    """Templates and teachable names; :meth:`parse` a transcript."""

    def __init__(self, data: dict[str, Any], catalogue: Catalogue) -> None:
        try:
            self.base_names = [normalise(n) for n in data["names"]]
            commands = data["commands"]
        except (KeyError, TypeError) as exc:
            raise KGError(f"teaching commands: missing key {exc}") from exc
        self.cat = catalogue
        self.templates: dict[str, list[str]] = {k: [normalise_tpl(t) for t in v]
                                                for k, v in commands.items()}
        self.structure_forms = {f: self.cat.spoken("structure", key) for key, forms in
                                self.cat.slot_values.get("structure", {}).items()
                                for f in forms}
        self.colours = {f: c for c, forms in self.cat.slot_values.get("colour", {}).items()
                        for f in forms}
        colour_re = "|".join(re.escape(c) for c in sorted(self.colours, key=len, reverse=True))
        self._rx: list[tuple[str, re.Pattern[str]]] = []
        for intent, tpls in self.templates.items():
            for t in tpls:
                pat = re.escape(t).replace(r"\{concept\}", r"(?P<concept>[a-z]+(?: [a-z]+){0,5})")
                pat = pat.replace(r"\{colour\}", f"(?P<colour>{colour_re})")
                self._rx.append((intent, re.compile(f"^{pat}$")))

    def names(self) -> list[str]:
        """Every teachable spoken name (the YAML's names, then the structure forms)."""
        return list(dict.fromkeys(self.base_names + list(self.structure_forms)))

    def canonical(self, spoken: str) -> str | None:
        """The name a spoken concept is kept under, or None when it is not teachable."""
        s = normalise(spoken)
        for prefix in ("the ", "a ", "an "):
            if s.startswith(prefix):
                s = s[len(prefix):]
        if s in self.base_names:
            return s
        return self.structure_forms.get(s)

    def parse(self, text: str, taught: Iterable[str] = ()) -> TeachCommand | None:
        """A teaching command, or None (then the catalogue's parser takes the transcript)."""
        body, _ = self.cat.strip_wake_word(text)
        words = [w for w in body.split() if w not in ("please", "um", "uh", "okay", "now")]
        body = " ".join(words)
        taught = {normalise(n) for n in taught}
        for intent, rx in self._rx:
            m = rx.match(body)
            if m is None:
                continue
            gd = m.groupdict()
            name = None
            if "concept" in gd:
                spoken = normalise(gd["concept"])
                name = spoken if spoken in taught else self.canonical(spoken)
                if name is None:
                    continue
                if intent in ABOUT_TAUGHT and name not in taught:
                    continue
            colour = self.colours.get(gd["colour"]) if gd.get("colour") else None
            return TeachCommand(intent, name, colour, body)
        return None

    def grammar(self) -> tuple[list[str], dict[str, list[str]]]:
        """(templates, slot forms) for the recogniser: {concept} = every teachable name,
        {colour} = the catalogue's colour forms."""
        tpls = [t for ts in self.templates.values() for t in ts]
        return tpls, {"concept": self.names(), "colour": list(self.colours)}


def normalise_tpl(t: str) -> str:
    """Normalise a template's words, keeping its {slot} placeholders."""
    parts = re.split(r"(\{[a-z_]+\})", t)
    return " ".join(" ".join(p.split()) if p.startswith("{") else normalise(p)
                    for p in parts if p.strip())


@lru_cache(maxsize=4)
def load_teaching(path: str | None = None) -> TeachingCommands:
    """The shipped teaching commands (cached), on the shipped catalogue."""
    p = Path(path) if path else TEACHING_PATH
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KGError(f"teaching commands {p}: {exc.__class__.__name__}") from exc
    return TeachingCommands(data, load_catalogue())
