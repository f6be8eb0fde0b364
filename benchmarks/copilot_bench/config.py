"""What ``copilot bench`` runs: variants, backend / decoder / ASR names, the command line."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from copilot.errors import CopilotError
from copilot.voice import VOICES

BACKENDS = ("onnxruntime", "torch", "tensorrt")
DECODERS = ("pyav", "decord", "opencv")
ASR_BACKENDS = ("default", "hybrid", "moonshine-tiny", "moonshine-base", "pocketsphinx",
                "faster-whisper")
MODES = ("fast", "realtime")

# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class Variant:
    """One configuration of the copilot: vision backend, decoder, ASR backend, voice."""

    backend: str
    decoder: str
    asr: str
    voice: str = "default"

    @property
    def key(self) -> str:
        """``backend/decoder/asr``, ``/voice`` after it when not the default voice."""
        tail = "" if self.voice == "default" else f"/{self.voice}"
        return f"{self.backend}/{self.decoder}/{self.asr}{tail}"


@dataclass
class BenchConfig:
    """What ``copilot bench`` runs (see the module docstring); times in seconds."""

    feeds: list[Path]
    out: Path
    backends: list[str] = field(default_factory=lambda: ["onnxruntime"])
    decoders: list[str] = field(default_factory=lambda: ["pyav"])
    asr: list[str] = field(default_factory=lambda: ["default"])
    voices: list[str] = field(default_factory=lambda: ["default"])  # of VOICES
    repeat: int = 1
    mode: str = "realtime"
    ray: str | None = None
    workers: int | None = None
    asr_model_dir: Path | None = None
    max_seconds: float | None = None
    components: bool = True
    loop_check: bool = True
    vision_frames: int = 240
    decoder_rounds: int = 3
    progress: bool = True
    command: str = ""

    def check(self) -> None:
        """CopilotError (one line) on bad names, counts or missing feeds."""
        if not self.feeds:
            raise CopilotError("copilot bench needs at least one FEED")
        for f in self.feeds:
            if not Path(f).exists():
                raise CopilotError(f"feed not found: {f}")
            if Path(f).is_dir() and not (Path(f) / "video.mp4").is_file():
                raise CopilotError(f"{f} has no video.mp4 (not a feed folder?)")
        for names, allowed, what in ((self.backends, BACKENDS, "--backends"),
                                     (self.decoders, DECODERS, "--decoders"),
                                     (self.asr, ASR_BACKENDS, "--asr"),
                                     (self.voices, VOICES, "--voices")):
            if not names:
                raise CopilotError(f"{what} is empty")
            bad = [n for n in names if n not in allowed]
            if bad:
                raise CopilotError(f"unknown {what} {', '.join(bad)}; choose from "
                                   f"{', '.join(allowed)}")
            if len(set(names)) != len(names):
                raise CopilotError(f"{what} lists a name twice")
        if self.repeat < 1:
            raise CopilotError("--repeat must be >= 1")
        if self.mode not in MODES:
            raise CopilotError(f"--mode must be fast or realtime, not {self.mode!r}")
        if self.workers is not None and self.workers < 0:
            raise CopilotError("--workers must be >= 0")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise CopilotError("--max-seconds must be > 0")
        if self.decoder_rounds < 1 or self.vision_frames < 1:
            raise CopilotError("--rounds and --vision-frames must be >= 1")

    def variants(self) -> list[Variant]:
        """Baseline first, then each other name on one axis with the baseline's others."""
        base = Variant(self.backends[0], self.decoders[0], self.asr[0], self.voices[0])
        out = [base]
        out += [Variant(b, base.decoder, base.asr, base.voice) for b in self.backends[1:]]
        out += [Variant(base.backend, d, base.asr, base.voice) for d in self.decoders[1:]]
        out += [Variant(base.backend, base.decoder, a, base.voice) for a in self.asr[1:]]
        out += [Variant(base.backend, base.decoder, base.asr, v) for v in self.voices[1:]]
        return out


def parse_list(text: str | None, allowed: Iterable[str], what: str) -> list[str]:
    """``"a,b"`` -> ["a", "b"] (CopilotError for names outside ``allowed``)."""
    names = [x.strip() for x in (text or "").split(",") if x.strip()]
    bad = [n for n in names if n not in allowed]
    if bad:
        raise CopilotError(f"unknown {what} {', '.join(bad)}; choose from {', '.join(allowed)}")
    return names


def command_line() -> str:
    """This process's command line, as it would be typed."""
    prog = Path(sys.argv[0]).name
    return " ".join([prog if prog != "__main__.py" else "copilot", *sys.argv[1:]])
