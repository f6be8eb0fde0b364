"""User-facing errors: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

from kg_reasoning.errors import KGError
from speech.errors import SpeechError
from vision.errors import VisionError


class CopilotError(Exception):
    """Bad input or configuration detected by the copilot itself."""


#: Every exception type that means "the user gave us something bad" (exit code 2).
USER_ERRORS: tuple[type[BaseException], ...] = (CopilotError, VisionError, SpeechError, KGError)
