"""Commands: outline / hide / show overlays, the coverage map, mute alerts, bookmark, stop,
acknowledge, explain and repeat. Each returns an overlay or control action (times in s)."""

from __future__ import annotations

from typing import Any

from kg_reasoning.answers import (
    UNSURE,
    Answer,
    Question,
    Step,
    abstain,
    command_step,
    obs_evidence,
    window_ref,
)
from kg_reasoning.phrasing import fmt_time
from kg_reasoning.questions.base import Context

#: Overlay colours (RGB 0-255) for the catalogue's colour slot.
COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 200, 0),
    "blue": (0, 90, 255),
    "yellow": (255, 230, 0),
    "white": (255, 255, 255),
    "orange": (255, 140, 0),
    "purple": (160, 32, 240),
    "cyan": (0, 255, 255),
}


def outline_structure(r: Context, q: Question, tl: Any, now: float, prev: Answer | None) -> Answer:
    """Outline a vision class in a colour (said even when it is not visible now)."""
    for slot in ("structure", "colour"):
        bad = r.need_slot(q, slot)
        if bad:
            return bad
    key, colour = q.slots["structure"], q.slots["colour"]
    e = r.kg.entities[key]
    steps = [r.entity_step(key)]
    if not e.segmentable:
        steps.append(
            Step(
                f"The vision model does not segment the {r.say(e.key)}.",
                False,
                {"scores": {}, "rule": "only vision classes can be outlined",
                 "entity": {"id": e.id, "key": e.key}},
            )
        )
        return abstain(
            q.intent,
            f"{UNSURE} I can outline the {r.say(e.key)}: "
            "my vision model does not detect it.",
            steps,
            reason=f"{key} is not a vision class",
        )
    steps.append(
        Step(
            f"The vision model segments the {r.say(e.key)}.", True,
            {"rule": "vision class", "entity": {"id": e.id, "key": e.key}}
        )
    )
    action = {
        "action": "outline",
        "structure": key,
        "colour": colour,
        "rgb": list(COLOUR_RGB.get(colour, (0, 200, 0))),
    }
    text = f"Outlining the {r.say(e.key)} in {colour}."
    if tl is not None and tl.latest_t() is not None:
        seen = r.detections(tl.window(now - r.cfg.recent_s, now, "structure"), {key})
        if seen:
            steps.append(
                Step(
                    f"The {r.say(e.key)} is visible now ({len(seen)} detections).",
                    True,
                    {"observations": obs_evidence(seen)},
                )
            )
        else:
            steps.append(
                Step(
                    f"The {r.say(e.key)} is not visible in the last "
                    f"{r.cfg.recent_s:g} s.",
                    True,
                    {"observations": [], "window": window_ref(now - r.cfg.recent_s, now)},
                )
            )
            text += " I do not see it right now; it will be outlined when it appears."
    return Answer(text, steps, 1.0, False, "", q.intent, [action])


def _command(q: Question, text: str, action: dict[str, Any]) -> Answer:
    """A command's answer: sure, one step citing the intent, one action."""
    return Answer(
        text, [command_step(q.intent)], 1.0, False, "", q.intent, [action]
    )


def hide_overlay(r: Context, q: Question, tl: Any, now: float, prev: Answer | None) -> Answer:
    """Hide one structure's outline, or all overlays."""
    key = q.slots.get("structure")
    if key and key in r.kg.entities:
        return _command(
            q, f"Hiding the {r.say(key)} outline.", {"action": "hide", "structure": key}
        )
    return _command(q, "Hiding the overlays.", {"action": "hide", "structure": None})


def show_overlay(r: Context, q: Question, tl: Any, now: float, prev: Answer | None) -> Answer:
    """Show the overlays again."""
    return _command(q, "Showing the overlays.", {"action": "show"})


def show_coverage(r: Context, q: Question, tl: Any, now: float, prev: Answer | None) -> Answer:
    """Show the bowel survey coverage map."""
    return _command(q, "Showing the coverage map.", {"action": "show_coverage"})


def mute_alerts(r: Context, q: Question, tl: Any, now: float, prev: Answer | None) -> Answer:
    """Mute alerts for ``minutes`` (default 5)."""
    minutes = int(q.slots.get("minutes") or 5)
    return _command(
        q,
        f"Alerts muted for {minutes} minute{'s' if minutes != 1 else ''}.",
        {"action": "mute_alerts", "minutes": minutes, "state_changing": True},
    )


def bookmark(r: Context, q: Question, tl: Any, now: float, prev: Answer | None) -> Answer:
    """Bookmark the question's media time."""
    return _command(
        q, f"Bookmarked at {fmt_time(now)}.", {"action": "bookmark", "t_s": now}
    )


def stop(r: Context, q: Question, tl: Any, now: float, prev: Answer | None) -> Answer:
    """Stop speaking (nothing is said)."""
    return _command(q, "", {"action": "stop_speech"})


def acknowledge(r: Context, q: Question, tl: Any, now: float, prev: Answer | None) -> Answer:
    """Acknowledge the last alert."""
    return _command(q, "Acknowledged.", {"action": "acknowledge"})


def repeat(r: Context, q: Question, tl: Any, now: float, prev: Answer | None) -> Answer:
    """The previous answer again."""
    if prev is None:
        return abstain(q.intent, "I have nothing to repeat.", reason="no previous answer")
    return Answer(
        prev.answer,
        prev.steps,
        prev.confidence,
        prev.abstained,
        prev.reason,
        q.intent,
        list(prev.overlay_actions),
        dict(prev.data),
    )


def explain(r: Context, q: Question, tl: Any, now: float, prev: Answer | None) -> Answer:
    """The previous answer's steps as numbered sentences."""
    if prev is None:
        return abstain(
            q.intent, "I have nothing to explain yet.", reason="no previous answer"
        )
    return Answer(
        prev.explanation(),
        prev.steps,
        prev.confidence,
        prev.abstained,
        prev.reason,
        q.intent,
        [],
        dict(prev.data),
    )
