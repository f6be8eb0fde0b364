"""Language understanding: transcript -> structured :class:`Question` (or an abstention).

Order: the catalogue's rule-based parse (exact / partial / near-exact); the semantic
matcher (packaged MiniLM, loaded lazily) when one is given and the rules found no exact or
partial match. Every candidate gets a calibrated probability that its intent is the one
meant (:mod:`kg_reasoning.calibration`: parse score, content words the copilot does not
know, margin over the runner-up intent); below ``ANSWER_MIN`` the copilot does not answer:
it says what it is unsure of and asks back ("did you mean: what phase are we in?"). The
probability becomes the question's ``parse_score``, which every answer's confidence is
multiplied by. Slots are filled from the transcript with the catalogue's spoken forms and,
for structures, the knowledge graph's synonyms (which include any merged ontology).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kg_reasoning.catalogue import FUNCTION_WORDS, Catalogue, Parse
from kg_reasoning.graph import KnowledgeGraph
from kg_reasoning.parse_confidence import ANSWER_MIN, parse_probability
from kg_reasoning.reasoner import UNSURE, Answer, Question, Reasoner, Step
from kg_reasoning.timeline import TimelineLike

#: overlay words that decide between hiding and showing (the matcher confuses them)
OFF_WORDS = frozenset({"off", "hide", "remove", "clear", "rid", "away", "without", "no"})
ON_WORDS = frozenset({"on", "back", "again", "show", "bring", "restore"})
#: a free-form (semantic) match that names a thing the copilot does not know (an unknown
#: word right after a determiner: "this page", "the phone") is at most this likely: below
#: ANSWER_MIN, so it asks back instead of answering (chosen on the dev sets)
UNKNOWN_WORD_CAP = 0.45
DETERMINERS = frozenset("the this that these those a an my your our his her their any some "
                        "every no".split())


def unknown_things(words: list[str], unknown: list[str]) -> list[str]:
    """Unknown words used as things (right after a determiner), e.g. "page" in "bookmark
    this page"; unknown verbs ("trace the liver") are not things."""
    bad = set(unknown)
    return [w for i, w in enumerate(words) if w in bad and i > 0 and words[i - 1] in DETERMINERS]


@dataclass
class Understanding:
    """What was understood: the question (None when abstaining), how, and how sure.

    ``confidence`` is the calibrated probability that the intent is the one meant;
    ``detail`` carries ``guess_intent`` (the best guess, also when not answering),
    ``n_unknown`` / ``unknown_share`` (content words not known; the words themselves are
    not kept: they may be private talk) and ``margin``."""

    question: Question | None
    method: str  # "exact" | "partial" | "fuzzy" | "semantic" | "none"
    score: float
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    confidence: float = 0.0
    ask_back: str = ""  # what to ask when unsure ("Did you mean: ...?")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        q = self.question
        return {
            "intent": q.intent if q else None,
            "slots": dict(q.slots) if q else {},
            "unresolved": dict(q.unresolved) if q else {},
            "method": self.method,
            "score": round(self.score, 4),
            "confidence": round(self.confidence, 4),
            "reason": self.reason,
            "ask_back": self.ask_back,
            **self.detail,
        }


_KNOWN: dict[tuple[int, int], frozenset[str]] = {}


def known_words(catalogue: Catalogue, kg: KnowledgeGraph | None) -> frozenset[str]:
    """Words the copilot knows: the catalogue's, the graph's names and synonyms, the
    matcher's example sentences."""
    key = (id(catalogue), id(kg))
    if key not in _KNOWN:
        from kg_reasoning.catalogue import normalise
        from kg_reasoning.semantic import NONE_INTENT, domain_words, extra_sentences

        words = set(catalogue.known_words) | domain_words()
        for e in (kg.entities.values() if kg is not None else ()):
            for name in (e.label, *e.synonyms):
                words.update(normalise(name).split())
        for intent, sentence in extra_sentences():  # not the words of talk not for me
            if intent != NONE_INTENT:
                words.update(sentence.split())
        _KNOWN[key] = frozenset(words)
    return _KNOWN[key]


def unknown_content(words: list[str], known: frozenset[str]) -> tuple[list[str], float]:
    """Content words (not function words) the copilot does not know, and their share of
    the content words."""
    content = [w for w in words if w not in FUNCTION_WORDS]
    unknown = [w for w in content if w not in known]
    return unknown, len(unknown) / max(1, len(content))


def _from_parse(p: Parse, t_s: float | None, prob: float) -> Question:
    return Question(p.intent, dict(p.slots), p.text, t_s, dict(p.unresolved), prob)


def _example(catalogue: Catalogue, intent: str) -> str:
    """A short example sentence of ``intent`` (its first template, slots in words)."""
    it = catalogue.intents.get(intent)
    if it is None or not it.template_specs:
        return intent.replace("_", " ")
    text = it.template_specs[0].text
    for s in it.template_specs[0].slot_names:
        text = text.replace("{" + s + "}", {"structure": "the structure", "colour": "a colour",
                                            "minutes": "ten", "relation": "behind",
                                            "cue": "vessel"}.get(s, s))
    return text.replace("the the", "the")


def _polarity(intent: str, words: set[str]) -> str:
    """hide_overlay / show_overlay by the on / off words said (when only one kind is)."""
    if intent not in ("hide_overlay", "show_overlay"):
        return intent
    off, on = bool(words & OFF_WORDS), bool(words & ON_WORDS - {"show"})
    if off and not on:
        return "hide_overlay"
    if on and not off:
        return "show_overlay"
    return intent


def understand(
    text: str,
    catalogue: Catalogue,
    kg: KnowledgeGraph | None = None,
    matcher: Any | None = None,
    t_s: float | None = None,
    cal: dict[str, Any] | None = None,
) -> Understanding:
    """Turn a transcript into a question; ``matcher`` (a SemanticMatcher) is optional;
    ``cal``: calibration weights (default: the fitted ones)."""
    p = catalogue.parse(text)
    body, _ = catalogue.strip_wake_word(text)
    words = body.split()
    unknown, share = unknown_content(words, known_words(catalogue, kg))
    if p is not None and p.method in ("exact", "partial"):
        # a partial parse whose slot words the graph does not know is answered "I do not
        # know the canteen" by the reasoner (confidence 0), whatever its probability
        strange = p.method == "partial" and (kg is None or any(
            kg.resolve(w) is None for w in p.unresolved.values()))
        prob = parse_probability(p.method, p.score, cal=cal)
        return Understanding(_from_parse(p, t_s, prob), p.method, p.score, confidence=prob,
                             detail={"guess_intent": p.intent, "n_unknown": len(unknown),
                                     "unknown_share": share, "margin": 0.0,
                                     "unresolved_unknown": strange})
    cands: list[Understanding] = []
    if p is not None:  # fuzzy: no unknown content word differs from the template
        prob = parse_probability("fuzzy", p.score, share, cal=cal, changed=p.changed)
        cands.append(Understanding(_from_parse(p, t_s, prob), "fuzzy", p.score,
                                   confidence=prob,
                                   detail={"guess_intent": p.intent, "n_unknown": len(unknown),
                                           "unknown_share": share, "changed": p.changed,
                                           "margin": 0.0}))
    m = matcher.match(text) if matcher is not None else None
    if m is not None:
        cands.append(_semantic(m, body, catalogue, kg, t_s, unknown, share, cal))
    if not cands:
        why = "empty transcript" if not body else "the question matches no known command"
        return Understanding(None, "none", 0.0, why,
                             {"guess_intent": None, "n_unknown": len(unknown),
                              "unknown_share": share, "margin": 0.0})
    best = max(cands, key=lambda u: u.confidence)
    if best.confidence < ANSWER_MIN and best.question is not None:
        guess = best.question.intent
        best.question = None
        # (the transcript's own words are not repeated: they may be private talk)
        what = (f"{len(unknown)} of its words are not ones I know" if unknown else
                f"it is only {best.confidence:.0%} likely to be a question for me")
        best.reason = f"not sure what was asked: {what}"
        best.ask_back = f"Did you mean: {_example(catalogue, guess)}?"
    return best


def _semantic(m: Any, body: str, catalogue: Catalogue, kg: KnowledgeGraph | None,
              t_s: float | None, unknown: list[str], share: float,
              cal: dict[str, Any] | None) -> Understanding:
    """The semantic matcher's candidate with its probability and slots."""
    from kg_reasoning.semantic import NONE_INTENT

    detail: dict[str, Any] = {"nearest": m.sentence, "nearest_intent": m.intent,
                              "n_unknown": len(unknown),
                              "unknown_share": share, "margin": round(m.score - m.second, 4)}
    if m.intent == NONE_INTENT:
        detail["guess_intent"] = None
        return Understanding(None, "semantic", m.score, "it sounds like talk that is not for "
                             f"me (nearest: {m.sentence!r})", detail, 0.0)
    intent_name = _polarity(m.intent, set(body.split()))
    detail["guess_intent"] = intent_name
    prob = parse_probability("semantic", m.score, share, m.score - m.second, cal)
    if unknown_things(body.split(), unknown):  # "bookmark this page": ask back, not answer
        prob = min(prob, UNKNOWN_WORD_CAP)
    intent = catalogue.intents[intent_name]
    slots: dict[str, Any] = {}
    for slot in intent.slots:
        found = catalogue.find_slot_values(slot, body)
        if found:
            slots[slot] = found[0][2]
        elif slot == "structure" and kg is not None:
            mentions = [e for e in kg.find_mentions(body) if e.kind != "finding"]
            if mentions:
                slots[slot] = mentions[0].key
    for slot, value in m.slots.items():  # slots the words of the nearest template fix
        if slot not in slots and slot not in ("structure", "colour", "minutes"):
            slots[slot] = value
    return Understanding(Question(intent_name, slots, body, t_s, {}, prob), "semantic",
                         m.score, "", detail, prob)


def unsure_answer(u: Understanding) -> Answer:
    """The reply when nothing was understood well enough: what is unsure, and an ask-back."""
    if u.ask_back:
        text = f"{UNSURE} what you asked: {u.reason.split(': ', 1)[-1]}. {u.ask_back}"
    else:
        text = (f"{UNSURE}: I can only answer questions about the anatomy, the procedure "
                "and what the camera has shown.")
    step = Step(f"Understanding: {u.method} match, probability {u.confidence:.2f} that it is "
                f"a question for me (below {ANSWER_MIN}).", False,
                {"parse": {"id": f"parse:{u.method}", "score": round(u.score, 4),
                           "guess": u.detail.get("guess_intent"),
                           "unknown_words": u.detail.get("n_unknown", 0)}})
    return Answer(text, [step], round(u.confidence, 4), True, u.reason, "", [], {})


def ask(
    text: str,
    reasoner: Reasoner,
    timeline: TimelineLike | None = None,
    matcher: Any | None = None,
    previous: Answer | None = None,
    t_s: float | None = None,
) -> Answer:
    """Understand a transcript and answer it; abstains when it is not understood."""
    u = understand(text, reasoner.cat, reasoner.kg, matcher, t_s)
    ans = unsure_answer(u) if u.question is None else reasoner.answer(u.question, timeline,
                                                                      previous)
    ans.data["understanding"] = u.to_dict()
    return ans
