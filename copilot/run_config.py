"""What a run is told and what it did: ``RunConfig`` (``copilot run``'s options), its
checks, the SOURCE and ``--out`` arguments resolved to paths, and ``RunResult``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.errors import CopilotError
from copilot.runtime import FaultSpec

MODES = ("fast", "realtime")
#: vision runtimes (and aliases) vision.runtimes knows; whether one loads here is checked
#: when the model is loaded (compose)
RUNTIMES = ("onnxruntime", "ort", "onnx", "torch", "pytorch", "tensorrt", "trt")


def quiet_native_logs() -> None:
    """Silence FFmpeg / OpenCV chatter on stderr (errors reach the user as one line)."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        import av.logging

        av.logging.set_level(av.logging.PANIC)
    except Exception:  # noqa: BLE001 - logging tweak only
        pass



@dataclass
class RunConfig:
    """Everything ``copilot run`` can be told. Times in seconds."""

    source: str
    out: Path | None = None
    mode: str = "fast"  # fast | realtime
    speed: float = 1.0  # realtime replay speed factor (1.0 = as recorded)
    decoder: str | None = None  # pyav | decord | opencv (None: measured default)
    vision: str = "auto"  # auto | model | heuristic | none
    model_dir: Path | None = None
    runtime: str = "onnxruntime"
    vision_threads: int = 1
    speech: str = "auto"  # auto (when the feed has audio) | on | off
    audio: Path | None = None  # an audio file to replay with the video
    mic: bool = False  # live microphone (pip extra "mic")
    speak: bool = False  # play the copilot's speech on the loudspeaker
    # the copilot's recogniser: "default" = the measured default (speech.defaults: the hybrid
    # of Moonshine tiny + catalogue and the pocketsphinx grammar; pocketsphinx, said, when
    # Moonshine's wheel is missing) | hybrid | moonshine-tiny | moonshine-base | pocketsphinx
    # | faster-whisper
    asr: str = "default"
    asr_model_dir: Path | None = None
    # the copilot's voice: "default" = Piper joe where its wheel is installed (extra
    # voice-neural), else espeak-ng (said) | piper | espeak
    voice: str = "default"
    denoiser: str = "neural"  # pocketsphinx's noise suppressor: neural | wiener | model folder
    wake: str = "pocketsphinx"
    voice_print: Path | None = None
    faults: list[str | FaultSpec] = field(default_factory=list)  # STAGE:KIND[:AFTER_S]
    trace: Path | None = None
    max_seconds: float | None = None
    window: bool = False
    stale_after: int = 15  # frames before analysis drawings are marked stale
    # --fast only: analyse every Nth frame in lockstep (deterministic offline accuracy; the
    # video waits at most hang_s per frame for the analysis, then goes on). None: about 10
    # analyses per media second; 0: newest frame only, as in realtime.
    analyse_every: int | None = None
    hang_s: float = 2.0  # watchdog: a call longer than this is a hang
    consent: bool = False  # store the microphone audio (never without consent)
    report: bool = True
    # privacy: hide out-of-body frames, black out text outside the field of view (False:
    # --no-anonymise, for research recordings of already de-identified data)
    anonymise: bool = True
    # the stated procedure (copilot.validity.PROCEDURES); None: the feed's truth, else the
    # default. The vision never switches it mid-case.
    procedure: str | None = None
    cvs: str = "auto"  # who calls the critical view: auto | vision | surgeon (validity.py)
    # concepts taught by example in an earlier session (copilot.teaching; prototypes only);
    # this session's are saved as taught.npz in the output folder
    taught: Path | None = None

    def check(self) -> None:
        """Raise CopilotError with one line when the configuration is inconsistent."""
        if self.mode not in MODES:
            raise CopilotError(f"unknown mode {self.mode!r}: use --fast or --realtime")
        if not self.speed > 0 or self.speed == float("inf"):  # NaN fails "> 0"
            raise CopilotError("--speed must be a finite number > 0")
        if self.runtime not in RUNTIMES:
            raise CopilotError(f"unknown --runtime {self.runtime!r}: use one of "
                               f"{', '.join(sorted(set(RUNTIMES)))}")
        if self.vision not in ("auto", "model", "heuristic", "none"):
            raise CopilotError(f"unknown --vision {self.vision!r}: auto, model, heuristic or none")
        if self.speech not in ("auto", "on", "off"):
            raise CopilotError(f"unknown --speech {self.speech!r}: auto, on or off")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise CopilotError("--max-seconds must be > 0")
        if self.analyse_every is not None and self.analyse_every < 0:
            raise CopilotError("--analyse-every must be >= 0")
        from copilot.validity import resolve_procedure

        try:
            resolve_procedure(self.procedure, None)
        except ValueError as exc:
            raise CopilotError(str(exc)) from None
        if self.cvs not in ("auto", "vision", "surgeon"):
            raise CopilotError(f"unknown --cvs {self.cvs!r}: auto, vision or surgeon")
        if self.taught is not None and not Path(self.taught).is_file():
            raise CopilotError(f"--taught file not found: {self.taught}")


@dataclass
class RunResult:
    """What a run did: frame counts, outputs (name -> path), health, wall time (s)."""

    frames_in: int
    frames_out: int
    dropped: int
    exit_code: int
    outputs: dict[str, Path]
    wall_s: float
    health: dict[str, dict[str, Any]]
    error: str = ""
    fps: float = 0.0
    alerts: int = 0
    answers: int = 0
    vision_backend: str = ""  # what actually ran (model / heuristic / none)
    vision_backend_reason: str | None = None  # why, when it is not what was asked for
    asr_backend: str = ""  # the recogniser that ran (none when not listening)
    asr_backend_reason: str | None = None  # why, when it is not what was asked for
    voice_backend: str = ""  # the voice that spoke (piper / espeak / none)
    voice_backend_reason: str | None = None  # why, when it is not what was asked for


@dataclass
class ResolvedSource:
    """A SOURCE argument split into its parts."""

    video: str | int
    audio: Path | None = None
    truth: Path | None = None
    scenario: str | None = None
    live: bool = False


def resolve_source(spec: str, audio: Path | None = None) -> ResolvedSource:
    """A file, a feed folder (video.mp4 [+ audio.wav, truth.json]), a camera index or a URL."""
    if spec.isdigit():
        return ResolvedSource(int(spec), audio, live=True)
    if "://" in spec and not spec.startswith("file://"):
        return ResolvedSource(spec, audio, live=True)
    if audio is not None and not Path(audio).exists():
        raise CopilotError(f"audio file not found: {audio}")
    p = Path(spec.removeprefix("file://"))
    if p.is_dir():
        video = p / "video.mp4"
        if not video.exists():
            raise CopilotError(f"{p} is a folder without video.mp4 (make one: copilot feed make)")
        wav = p / "audio.wav"
        truth = p / "truth.json"
        scenario = None
        if truth.exists():
            try:
                scenario = json.loads(truth.read_text()).get("scenario")
            except (OSError, ValueError) as exc:
                raise CopilotError(f"{truth}: not readable JSON ({exc})") from None
        return ResolvedSource(
            str(video), audio or (wav if wav.exists() else None),
            truth if truth.exists() else None, scenario,
        )
    if not p.exists():
        raise CopilotError(f"source not found: {spec}")
    return ResolvedSource(str(p), audio)


def resolve_out(out: Path | None) -> tuple[Path | None, Path | None]:
    """(output folder or None, annotated video path or None) from ``--out``."""
    if out is None:
        return None, None
    out = Path(out)
    if out.suffix.lower() == ".mp4":
        if out.parent and not out.parent.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
        return None, out
    if out.exists() and not out.is_dir():
        raise CopilotError(f"--out {out} exists and is not a folder (give a folder or a .mp4)")
    out.mkdir(parents=True, exist_ok=True)
    return out, out / "annotated.mp4"


def jsonable(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` with paths as text and lists as lists of text; other values left out."""
    out = {}
    for k, v in d.items():
        if isinstance(v, Path):
            out[k] = str(v)
        elif isinstance(v, (str, int, float, bool, type(None), list)):
            out[k] = v if not isinstance(v, list) else [str(x) for x in v]
    return out
