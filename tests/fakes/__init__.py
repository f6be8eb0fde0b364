"""Fakes for each backend kind, for tests of the runtime's own logic (DESIGN.md, Testing).

- ``tests.fakes.clock``: ``FakeClock`` (``copilot.clock.Clock``; stands in for one module's
  ``time``) and ``wait_until`` (poll a condition instead of a fixed sleep);
- ``tests.fakes.speech``: ``FakeASR`` (``speech.asr.ASR``), ``FakeTTS`` (``speech.tts.TTS``),
  ``FakeSink`` (``speech.audio_out.Sink``);
- ``tests.fakes.vision``: ``FakeEncoderRuntime`` (``vision.runtimes.EncoderRuntime``).

Names are importable from here too; each submodule is imported on first use, so a test
that needs only the clock does not import the speech or vision packages.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"FakeClock": "clock", "wait_until": "clock", "FakeASR": "speech",
          "FakeTTS": "speech", "FakeSink": "speech", "FakeEncoderRuntime": "vision"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"tests.fakes.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
