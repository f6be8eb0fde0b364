"""The brain's message types and settings: ``BrainAlert``, ``BrainAnswer``, ``BrainConfig``,
the confirmation words and a command held for confirmation (``_Pending``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from copilot.messages import Alert, Answer
from kg_reasoning.reasoner import Question

SOURCE = "brain"
#: an outline is reported (and drawn, copilot.overlay.DrawOptions.min_score) at or above this
OUTLINE_MIN_SCORE = 0.5
YES_WORDS = frozenset({"yes", "yeah", "yep", "confirm", "confirmed", "correct", "affirmative"})
NO_WORDS = frozenset({"no", "nope", "cancel", "negative", "wrong"})
#: Intents never read back (cheap to undo, or needed at once).
NO_READBACK = frozenset({"stop", "repeat", "acknowledge", "explain"})


@dataclass(kw_only=True, slots=True)
class BrainAlert(Alert):
    """An alert with ``silent`` (alerts muted: draw, do not speak) and ``level``."""

    silent: bool = False
    level: str = "alert"


@dataclass(kw_only=True, slots=True)
class BrainAnswer(Answer):
    """An answer with the understood ``intent`` and ``slots``."""

    intent: str = ""
    slots: dict[str, Any] = field(default_factory=dict)
    #: an outline command's detection confidence now (0-1; None: not seen / not a detection):
    #: ``confidence`` stays the command's parse confidence
    detection: float | None = None


@dataclass
class BrainConfig:
    """Dialogue and overlay settings (confidences 0-1, times in media seconds)."""

    confirm_below: float = 0.3  # ASR confidence under which a command is read back
    speaker_threshold: float = 0.75  # enrolled-voice score needed for state-changing commands
    require_enrolled: bool = False  # True: unscored voices must confirm state changes
    pending_timeout_s: float = 15.0
    banner_s: float = 8.0
    min_seen_s: float = 1.0  # a bowel segment counts as seen after this long in view
    persist_hz: float = 2.0  # obs lines per second written to the session
    record_hz: float = 5.0  # frames per second kept in the perception timeline
    recent_s: float = 120.0  # full-detail memory
    reasoner_recent_s: float = 6.0  # "now" for the reasoner
    default_outline_s: float | None = None  # None: highlight until told otherwise
    thumb_hz: float = 2.0  # evidence thumbnails kept per second (on_frame)
    thumb_keep_s: float = 20.0  # and for how long
    thumb_width: int = 192  # px
    keep_items: int = 256  # alerts / bookmarks kept in memory (the session log has all)
    max_banners: int = 8  # alert banners shown at once (the newest)


@dataclass
class _Pending:
    question: Question
    t_s: float
    why: str
    text: str

