"""The command / question catalogue shared by speech (grammar), the feed generator and the reasoner.

The catalogue lives in ``kg_reasoning/data/catalogue.yaml``: intents, each with spoken templates
holding ``{slot}`` placeholders, and for each slot its canonical values with their spoken forms.

Public API (stable: entries are added, never renamed)::

    cat = load_catalogue()
    cat.intents["outline_structure"].templates      # ["outline the {structure} in {colour}", ...]
    cat.slot_values["structure"]["duodenum_d3"]     # ["third part of the duodenum", ...]
    cat.expand(max_per_intent=50)                    # [(text, intent, slots), ...]
    cat.vocabulary()                                 # {"outline", "cystic", "duct", ...}
    cat.parse("Copilot, outline the cystic duct in red.")
    # Parse(intent="outline_structure", slots={"structure": "cystic_duct", "colour": "red"}, ...)

``parse`` is rule based: an exact template match scores 1.0; a near-exact transcript (a word
added, dropped or misheard) is matched on its template "skeleton" by word edit distance and
scores below 1.0, unless a word that differs from the template is a content word the
catalogue does not know ("what is the current dose" is not "what is the current phase").
Free-form questions go to :mod:`kg_reasoning.semantic` instead.
"""

from __future__ import annotations

import functools
import itertools
import re
from pathlib import Path
from typing import Any

import yaml

from kg_reasoning.catalogue_types import SLOT_RE, Intent, Parse, Template
from kg_reasoning.errors import KGError
from kg_reasoning.spoken import normalise, number_words
from kg_reasoning.textmatch import (  # noqa: F401 - FUNCTION_WORDS re-exported
    FUNCTION_WORDS,
    _align,
    _edit_distance,
    _spans,
    _spread,
)

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "catalogue.yaml"
#: moved to catalogue_types / spoken / textmatch, still importable from here
__all__ = ["DEFAULT_PATH", "FUNCTION_WORDS", "Catalogue", "Intent", "Parse", "Template",
           "load_catalogue", "normalise", "number_words"]


class Catalogue:
    """Intents and slot values loaded from the catalogue YAML."""

    def __init__(self, data: dict[str, Any], source: str = "<dict>") -> None:
        try:
            self.wake_word: str = str(data["wake_word"])
            self.wake_word_forms: list[str] = [
                str(w) for w in data.get("wake_word_forms", [self.wake_word])
            ]
            self.fillers: list[str] = [str(w) for w in data.get("fillers", [])]
            raw_values = data["slot_values"]
            raw_intents = data["intents"]
        except (KeyError, TypeError) as exc:
            raise KGError(f"catalogue {source}: missing key {exc}") from exc
        self.source = source
        self.slot_values: dict[str, dict[Any, list[str]]] = {
            slot: {value: [str(f) for f in forms] for value, forms in values.items()}
            for slot, values in raw_values.items()
        }
        self.intents: dict[str, Intent] = {}
        for name, spec in raw_intents.items():
            templates = []
            for t in spec.get("templates", []):
                if isinstance(t, str):
                    templates.append(Template(t))
                else:
                    templates.append(Template(str(t["text"]), dict(t.get("slots", {})),
                                              bool(t.get("grammar", True))))
            intent = Intent(
                name=name,
                slots=tuple(spec.get("slots", [])),
                optional_slots=tuple(spec.get("optional_slots", [])),
                state_changing=bool(spec.get("state_changing", False)),
                template_specs=tuple(t for t in templates if t.grammar),
                parse_specs=tuple(t for t in templates if not t.grammar),
            )
            for tpl in templates:
                for slot in (*tpl.slot_names, *tpl.fixed_slots):
                    if slot not in self.slot_values:
                        raise KGError(f"catalogue {source}: unknown slot {slot!r} in {name}")
                    if slot not in intent.slots:
                        raise KGError(f"catalogue {source}: slot {slot!r} not declared in {name}")
            self.intents[name] = intent
        # spoken form -> canonical value, per slot
        self._form_to_value: dict[str, dict[str, Any]] = {
            slot: {f: v for v, forms in values.items() for f in forms}
            for slot, values in self.slot_values.items()
        }
        self._slot_regex: dict[str, str] = {
            slot: "|".join(re.escape(f) for f in sorted(m, key=len, reverse=True))
            for slot, m in self._form_to_value.items()
        }
        self._span_cache: dict[tuple[str, str], tuple[tuple[int, int, Any], ...]] = {}
        self._compiled: list[tuple[re.Pattern[str], str, Template]] = []
        self._wild: list[tuple[re.Pattern[str], str, Template]] = []
        for name, intent in self.intents.items():
            for tpl in intent.all_specs:
                self._compiled.append((self._template_regex(tpl), name, tpl))
                if tpl.slot_names:
                    self._wild.append((self._template_regex(tpl, wild=True), name, tpl))
        self.known_words = self.vocabulary() | {w for f in self.fillers for w in f.split()}
        self._wake_re = re.compile(
            r"^(?:"
            + "|".join(re.escape(w) for w in sorted(self.wake_word_forms, key=len, reverse=True))
            + r")\b\s*"
        )

    # ------------------------------------------------------------------ building blocks
    def _template_regex(self, tpl: Template, wild: bool = False) -> re.Pattern[str]:
        parts = []
        for tok in tpl.text.split():
            m = SLOT_RE.fullmatch(tok)
            if m and wild:
                parts.append(f"(?P<{m.group(1)}>[a-z]+(?: [a-z]+){{0,4}})")
            elif m:
                parts.append(f"(?P<{m.group(1)}>{self._slot_regex[m.group(1)]})")
            else:
                parts.append(re.escape(tok))
        return re.compile(r"\s+".join(parts))

    def spoken(self, slot: str, value: Any) -> str:
        """The first spoken form of a canonical slot value (what the copilot says back)."""
        forms = self.slot_values.get(slot, {}).get(value)
        if not forms:
            return str(value).replace("_", " ")
        return forms[0]

    def value_of(self, slot: str, spoken_form: str) -> Any | None:
        """Canonical value for a spoken form (normalised), or None."""
        return self._form_to_value.get(slot, {}).get(normalise(spoken_form))

    def strip_wake_word(self, text: str) -> tuple[str, bool]:
        """Normalise ``text`` and remove a leading wake word; returns (rest, had_wake_word)."""
        t = normalise(text)
        m = self._wake_re.match(t)
        if m:
            return t[m.end() :].strip(), True
        return t, False

    # ------------------------------------------------------------------ expansion
    def _slot_choices(self, tpl: Template) -> list[list[tuple[str, Any]]]:
        """Per slot of ``tpl``, its (spoken form, canonical value) pairs in catalogue order."""
        return [
            [(form, value) for value, forms in self.slot_values[s].items() for form in forms]
            for s in tpl.slot_names
        ]

    def template_sentences(self, tpl: Template) -> list[tuple[str, dict[str, Any]]]:
        """Every concrete sentence of one template with its canonical slots."""
        names = tpl.slot_names
        choices = self._slot_choices(tpl)
        out = []
        for combo in itertools.product(*choices):
            text = tpl.text
            slots = dict(tpl.fixed_slots)
            for s, (form, value) in zip(names, combo, strict=True):
                text = text.replace("{" + s + "}", form, 1)
                slots[s] = value
            out.append((text, slots))
        return out

    def expand(
        self, max_per_intent: int | None = None, wake_word: bool = False,
        stratify: bool = False,
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """Every concrete sentence as (text, intent, slots); deterministic order.

        ``max_per_intent`` caps the sentences per intent, spread evenly over the intent's
        templates and, within a template, evenly over its slot combinations (a template
        with one pick takes its first combination: the first structure, colour, number).
        ``stratify``: instead, the picks of all the intent's templates share one grid per
        slot and each pick takes one value of its own stratum of every slot's values
        (rotated from slot to slot; each intent at another place in its strata), so a
        small cap still covers many slot values (three structure commands name three
        structures in three colours, not "liver in red" three times). ``wake_word``
        prefixes each text with the wake word ("copilot ...").
        """
        out: list[tuple[str, str, dict[str, Any]]] = []
        prefix = self.wake_word + " " if wake_word else ""
        for n, (name, intent) in enumerate(self.intents.items()):
            per_tpl = [self.template_sentences(t) for t in intent.template_specs]
            if max_per_intent is not None:
                dims = ([[len(c) for c in self._slot_choices(t)] for t in intent.template_specs]
                        if stratify else None)
                # each intent at its own place in the strata (golden-ratio steps)
                per_tpl = _spread(per_tpl, max_per_intent, dims, ((n + 1) * 0.6180339887) % 1)
            for sentences in per_tpl:
                out.extend((prefix + text, name, slots) for text, slots in sentences)
        return out

    def vocabulary(self) -> set[str]:
        """Every word the catalogue's sentences can contain, wake word forms included."""
        words: set[str] = set()
        for intent in self.intents.values():
            for tpl in intent.all_specs:
                words.update(w for w in tpl.text.split() if not SLOT_RE.fullmatch(w))
        for values in self.slot_values.values():
            for forms in values.values():
                for f in forms:
                    words.update(f.split())
        for w in self.wake_word_forms:
            words.update(w.split())
        return words

    # ------------------------------------------------------------------ parsing
    def find_slot_values(self, slot: str, text: str) -> list[tuple[int, int, Any]]:
        """Non-overlapping (start_word, end_word, value) spans of ``slot`` forms in ``text``.

        Exact forms first (longest first); if none, near-miss spellings of multi-letter forms
        (character similarity >= 0.85, e.g. "cystic duck").
        """
        key = (slot, text)
        hit = self._span_cache.get(key)
        if hit is None:
            if len(self._span_cache) > 4096:
                self._span_cache.clear()
            hit = _spans(self._form_to_value[slot], text)
            self._span_cache[key] = hit
        return list(hit)

    def parse(self, text: str, min_score: float = 0.7) -> Parse | None:
        """Rule-based parse of a transcript; None when nothing scores at least ``min_score``.

        Methods: "exact" (a template matches word for word, score 1.0); "partial" (a
        template's words match but a slot's words are unknown, e.g. "where is the spleen":
        ``unresolved`` = {"structure": "spleen"}, score 0.9); "fuzzy" (word edit distance).
        """
        body, had_wake = self.strip_wake_word(text)
        if not body:
            return None
        for regex, name, tpl in self._compiled:
            m = regex.fullmatch(body)
            if m:
                slots = dict(tpl.fixed_slots)
                for s, form in m.groupdict().items():
                    slots[s] = self._form_to_value[s][form]
                return Parse(name, slots, 1.0, "exact", tpl.text, body, had_wake)
        best: Parse | None = None
        words = self._drop_fillers(body).split()
        for regex, name, tpl in self._wild:
            m = regex.fullmatch(" ".join(words))
            if m:
                slots = dict(tpl.fixed_slots)
                unresolved = {}
                for s, said in m.groupdict().items():
                    if said in self._form_to_value[s]:
                        slots[s] = self._form_to_value[s][said]
                    else:
                        unresolved[s] = said
                if unresolved and all(
                    not self.find_slot_values(s, said) for s, said in unresolved.items()
                ):
                    return Parse(name, slots, 0.9, "partial", tpl.text, body, had_wake, unresolved)
        for _regex, name, tpl in self._compiled:
            skeleton, slots = self._skeleton(words, tpl)
            if skeleton is None:
                continue
            tpl_words = [f"<{w[1:-1]}>" if SLOT_RE.fullmatch(w) else w for w in tpl.text.split()]
            dist, diff = _align(skeleton, tpl_words)
            score = 1.0 - dist / max(len(skeleton), len(tpl_words))
            said = [w for w, _ in diff if w is not None and not w.startswith("<")]
            if said and self.unknown_content_words(said):
                continue  # "what is the current dose": a word it does not know, not a slip
            if score >= min_score and (best is None or score > best.score):
                changed = sum(1 for w in said if w not in FUNCTION_WORDS)
                best = Parse(
                    name, {**tpl.fixed_slots, **slots}, score, "fuzzy", tpl.text, body, had_wake,
                    changed=changed,
                )
        return best

    def unknown_content_words(self, words: list[str]) -> list[str]:
        """The words that are neither function words nor in the catalogue's vocabulary."""
        return [w for w in words if w not in FUNCTION_WORDS and w not in self.known_words]

    def _drop_fillers(self, text: str) -> str:
        """Remove politeness / hesitation phrases ("could you", "please", "um")."""
        padded = f" {text} "
        for f in sorted(self.fillers, key=len, reverse=True):
            padded = padded.replace(f" {f} ", " ")
        return " ".join(padded.split())

    def _skeleton(self, words: list[str], tpl: Template) -> tuple[list[str] | None, dict]:
        """Replace the template's slot values found in ``words`` by ``<slot>`` tokens."""
        names = tpl.slot_names
        if not names:
            return words, {}
        text = " ".join(words)
        spans = []
        slots: dict[str, Any] = {}
        for s in names:
            found = self.find_slot_values(s, text)
            if not found:
                return None, {}
            start, end, value = found[0]
            spans.append((start, end, s))
            slots[s] = value
        spans.sort()
        for (_, e1, _), (s2, _, _) in itertools.pairwise(spans):
            if s2 < e1:
                return None, {}
        out: list[str] = []
        pos = 0
        for start, end, s in spans:
            out.extend(words[pos:start])
            out.append(f"<{s}>")
            pos = end
        out.extend(words[pos:])
        return out, slots


@functools.lru_cache(maxsize=8)
def _load_cached(path: str) -> Catalogue:
    p = Path(path)
    if not p.is_file():
        raise KGError(f"catalogue file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KGError(f"catalogue {p}: invalid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict):
        raise KGError(f"catalogue {p}: expected a mapping at the top level")
    return Catalogue(data, source=str(p))


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Load (and cache) the catalogue; the shipped one when ``path`` is None."""
    return _load_cached(str(Path(path) if path is not None else DEFAULT_PATH))
