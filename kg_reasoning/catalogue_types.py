"""The catalogue's records: a spoken template, an intent, and the result of a parse."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: a ``{slot}`` placeholder in a template
SLOT_RE = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Template:
    """One spoken template: words with ``{slot}`` placeholders, plus slots the words fix."""

    text: str
    fixed_slots: dict[str, Any] = field(default_factory=dict)
    grammar: bool = True  # False: parsed (typed / open-vocabulary ASR), not in the grammar

    @property
    def slot_names(self) -> tuple[str, ...]:
        """Slots filled from the spoken words, in order of appearance."""
        return tuple(SLOT_RE.findall(self.text))


@dataclass(frozen=True)
class Intent:
    """An intent: name, templates, slot names, and whether it changes copilot state.

    ``state_changing`` intents (mute alerts, change what is shown) are accepted only from the
    enrolled surgeon's voice when enrolment is on.
    """

    name: str
    slots: tuple[str, ...]
    optional_slots: tuple[str, ...]
    state_changing: bool
    template_specs: tuple[Template, ...]
    #: templates the parser and the semantic matcher know but the spoken grammar and
    #: ``expand`` leave out (``grammar: false`` in the YAML)
    parse_specs: tuple[Template, ...] = ()

    @property
    def templates(self) -> list[str]:
        """The spoken templates (text with ``{slot}`` placeholders)."""
        return [t.text for t in self.template_specs]

    @property
    def all_specs(self) -> tuple[Template, ...]:
        """Grammar templates, then parse-only ones."""
        return self.template_specs + self.parse_specs


@dataclass(frozen=True)
class Parse:
    """Result of parsing a transcript.

    ``score`` is 1.0 for an exact template match, lower for near-exact (word edit distance)
    or semantic matches; ``method`` is "exact", "fuzzy" or "semantic".
    """

    intent: str
    slots: dict[str, Any]
    score: float
    method: str
    template: str
    text: str
    wake_word: bool
    unresolved: dict[str, str] = field(default_factory=dict)
    changed: int = 0  # fuzzy: content words said that differ from the template's

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "intent": self.intent,
            "slots": dict(self.slots),
            "score": round(self.score, 4),
            "method": self.method,
            "template": self.template,
            "text": self.text,
            "wake_word": self.wake_word,
            "unresolved": dict(self.unresolved),
        }
