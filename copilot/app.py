"""The copilot's runtime: one video loop that never waits for analysis, plus the listeners.

``Copilot.compose()`` wires (Holoscan style) the stages and their edges::

    source --decode--> [video edge] --compose + sinks--> annotated.mp4 / window / UI
                   \\--> [latest slot] --vision (supervised)--> annotations + brain
    audio  --feeder--> [audio edge, lossless] --speech (supervised)--> brain --> AudioOut
    brain alerts ----------------------------------------------------------> AudioOut

Edge policies: the video edge is lossless in ``fast`` mode (offline: every frame is written)
and latest-wins in ``realtime`` mode (drops counted); analysis always reads the newest frame
from a one-item slot, so a slow, hung or crashing analysis stage never holds the picture.
Audio is lossless with an alarm when full. Every step writes trace spans on one clock.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from copilot.clock import SYSTEM_CLOCK, Clock
from copilot.errors import CopilotError
from copilot.messages import (
    Alert,
    Answer,
    AudioChunk,
    Control,
    Finding,
    Message,
    OverlayUpdate,
    VideoFrame,
)
from copilot.messages import Transcript as TranscriptMsg
from copilot.overlay import AnnotationStore, Compositor, Status
from copilot.queues import Closed, EdgeQueue, LatestSlot, Policy
from copilot.runtime import (
    FaultSpec,
    FaultyStage,
    InjectedFault,
    RestartPolicy,
    Stage,
    StageHealth,
    StageRunner,
    Take,
    Watchdog,
    take_from,
)
from copilot.sinks import FrameSink, Mp4Sink, WindowSink
from copilot.tracing import Tracer

log = logging.getLogger(__name__)

MODES = ("fast", "realtime")
#: vision runtimes (and aliases) vision.runtimes knows; whether one loads here is checked
#: when the model is loaded (compose)
RUNTIMES = ("onnxruntime", "ort", "onnx", "torch", "pytorch", "tensorrt", "trt")
#: Stages a fault can be injected into (``--inject-fault STAGE:KIND``).
FAULT_STAGES = ("decode", "vision", "speech", "vad", "wake", "asr", "brain", "overlay",
                "writer", "tts", "audio_out")
#: steps inside the speech stage that run under their own InlineStage (faults, health)
SPEECH_STEPS = ("vad", "wake", "asr")
AUDIO_CHUNK = 512  # samples at 16 kHz (32 ms), what the VAD takes


def quiet_native_logs() -> None:
    """Silence FFmpeg / OpenCV chatter on stderr (errors reach the user as one line)."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        import av.logging

        av.logging.set_level(av.logging.PANIC)
    except Exception:  # noqa: BLE001 - logging tweak only
        pass


def _set_aside(path: Path) -> Path | None:
    """Rename an earlier run's non-empty ``path`` to ``<stem>.<its mtime, UTC>.jsonl`` so that
    a new run into the same folder starts a fresh log (the other outputs are rewritten too)
    and nothing written before is lost; returns the new name (None: nothing to move)."""
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(path.stat().st_mtime))
        dest = path.with_name(f"{path.stem}.{stamp}{path.suffix}")
        k = 1
        while dest.exists():
            dest = path.with_name(f"{path.stem}.{stamp}-{k}{path.suffix}")
            k += 1
        path.rename(dest)
    except OSError as exc:
        raise CopilotError(f"cannot set aside the earlier {path}: {exc}") from None
    log.warning("%s held an earlier run's session; moved to %s", path, dest.name)
    return dest


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
    # the copilot's recogniser: pocketsphinx until the hybrid ("default", speech.defaults) is
    # validated end to end (its decode measured 1.85 s p95 under load, near the 2 s watchdog)
    asr: str = "pocketsphinx"
    asr_model_dir: Path | None = None
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


class InlineStage:
    """Health, faults and watchdog support for a step that runs inside the video path.

    The decode, overlay and writer steps cannot be moved off the video thread, so an injected
    fault is applied at the step's boundary: ``raise`` (the first try of every 20th call fails:
    a step that crashes repeatedly) is caught, logged and retried with backoff, so the frame
    is not lost; ``slow`` sleeps; ``hang`` blocks until the watchdog
    declares the step hung and releases it (the recovery a restart gives a worker stage).
    """

    def __init__(self, name: str, tracer: Tracer, clock: Clock, fault: FaultSpec | None,
                 t0_ns: int, stop: threading.Event) -> None:
        self.name = name
        self.health = StageHealth(name, state="ok")
        self.tracer = tracer
        self.clock = clock
        self.fault = fault
        self.t0_ns = t0_ns
        self.stop_event = stop
        self._release = threading.Event()
        self.restart = RestartPolicy(base_s=0.01, cap_s=0.2)
        self._fired_hang = False
        self._calls = 0

    def replace_hung(self) -> None:
        """Called by the watchdog: release the hung step (counts as a restart)."""
        self.health.hangs += 1
        self.health.restarts += 1
        self.health.busy_since_ns = None
        self.tracer.event(self.name, "replaced")
        self._release.set()

    def _fault(self, attempt: int) -> None:
        f = self.fault
        if f is None or (self.clock.now_ns() - self.t0_ns) / 1e9 < f.after_s:
            return
        if f.kind == "raise":
            # crash repeatedly: the first try of every 20th call fails
            self._calls += attempt == 0
            if attempt == 0 and self._calls % 20 == 1:
                raise InjectedFault(f"injected fault: {self.name} raised")
        if f.kind == "slow":
            self.clock.sleep(f.slow_s)
        elif f.kind == "hang" and not self._fired_hang:
            # hang once: until the watchdog notices (then behave again, like a fresh worker)
            self._fired_hang = True
            self.health.busy_since_ns = self.clock.now_ns()
            self._release.clear()
            while not self._release.wait(0.05) and not self.stop_event.is_set():
                pass
            self.health.state = "ok"

    def call(self, fn: Callable[[], Any], attempts: int = 8, fault: bool = True) -> Any:
        """Run ``fn`` (after the fault hook unless ``fault`` is False) with retries; re-raises
        after ``attempts``."""
        for attempt in range(attempts):
            try:
                if fault:
                    self._fault(attempt)
                self.health.busy_since_ns = self.clock.now_ns()
                try:
                    out = fn()
                finally:  # a real error must not leave the step looking busy (hung)
                    self.health.busy_since_ns = None
                self.health.processed += 1
                if self.health.state != "ok":
                    self.health.state = "ok"
                return out
            except InjectedFault as exc:
                self.health.busy_since_ns = None
                self.health.errors += 1
                self.health.state = "restarting"
                self.health.last_error = str(exc)
                self.tracer.event(self.name, "error", error=str(exc))
                if attempt + 1 >= attempts:
                    raise
                self.clock.sleep(self.restart.delay(attempt))
                self.health.restarts += 1
                self.tracer.event(self.name, "restart", attempt=attempt + 1)
        return None  # pragma: no cover


class Guarded:
    """``obj`` whose ``methods`` run under an InlineStage (fault hook, watchdog, health);
    what they return is guarded too for the ``inner`` methods (an ASR's utterance session).
    Every other attribute passes through."""

    def __init__(self, obj: Any, stage: InlineStage, methods: frozenset[str],
                 inner: frozenset[str] = frozenset()) -> None:
        self._obj = obj
        self._stage = stage
        self._methods = methods
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._obj, name)
        if name not in self._methods or not callable(attr):
            return attr

        def call(*args: Any, **kw: Any) -> Any:
            st = self._stage
            t0 = st.clock.now_ns()
            out = st.call(lambda: attr(*args, **kw))
            st.tracer.span(st.name, name, "-", t0, st.clock.now_ns())
            if self._inner and out is not None:
                return Guarded(out, self._stage, self._inner)
            return out

        return call


def guard_listener(listener: Any, inline: dict[str, InlineStage]) -> None:
    """Put the listener's VAD, wake-word spotter and ASR under their InlineStages."""
    seg = getattr(listener, "seg", None)
    if "vad" in inline and seg is not None and getattr(seg, "vad", None) is not None:
        seg.vad = Guarded(seg.vad, inline["vad"], frozenset({"prob"}))
    session = frozenset({"feed", "finish"})
    if "asr" in inline and getattr(listener, "asr", None) is not None:
        listener.asr = Guarded(listener.asr, inline["asr"], frozenset({"start"}), session)
    if "wake" in inline and getattr(listener, "wake", None) is not None:
        listener.wake = Guarded(listener.wake, inline["wake"], frozenset({"start"}), session)


class ListenerStage(Stage):
    """Audio chunks -> VAD -> wake word + ASR -> transcript messages (speech.listener)."""

    name = "speech"

    def __init__(self, app: Copilot) -> None:
        self.app = app
        self.listener: Any = None

    def setup(self) -> None:
        from copilot.cli_speech import build_listener

        cfg = self.app.cfg
        self.listener = build_listener(
            asr=cfg.asr, model_dir=cfg.asr_model_dir, wake=cfg.wake,
            voice_print=cfg.voice_print, on_speech=self.app.on_user_speaking,
            denoiser=str(cfg.denoiser),
        )
        guard_listener(self.listener, self.app.inline)

    def process(self, msg: Message) -> list[Message] | None:
        if not isinstance(msg, AudioChunk):
            return None
        out: list[Message] = []
        for tr in self.listener.push(msg.pcm):
            out.append(self.app.transcript_message(tr))
        return out or None

    def flush(self) -> list[Message]:
        """End of the audio: close an open utterance."""
        if self.listener is None:
            return []
        return [self.app.transcript_message(tr) for tr in self.listener.flush()]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


#: a first sentence longer than this (words) is cut at its colon: the conclusion is spoken,
#: the evidence after the colon stays on screen
SPOKEN_MAX_WORDS = 16


def spoken_text(msg: Alert | Answer) -> str:
    """What the voice says for an alert / answer: its ``spoken`` form, else the first
    sentence of its text; a long answer is cut before a colon that ends a conclusion of six
    words or more ("No, the critical view of safety is not reached: <criteria>"), and a hedge
    keeps its last clause ("I am not sure; it could be A or B"). The
    details stay on screen, in the UI and in the session log; a long spoken answer would hold
    up the next one."""
    if msg.spoken:
        return msg.spoken
    first = _SENTENCE_END.split(msg.text.strip(), maxsplit=1)[0]
    head, colon, rest = first.partition(": ")
    if isinstance(msg, Answer) and colon and len(first.split()) > SPOKEN_MAX_WORDS:
        if len(head.split()) >= 6:  # a conclusion, not "I am not sure" / "Caution"
            return head.rstrip(",;") + "."
        if "; " in rest:  # "I am not sure: <evidence>; it could be A or B."
            return f"{head}; {rest.rsplit('; ', 1)[1]}"
    return first


class TimelineSpeechSink:
    """Where the copilot's voice goes: the feed time line (copilot_speech.wav), optionally a
    loudspeaker. Records the first-audio time of every message on the runtime clock."""

    def __init__(self, app: Copilot, speaker: Any | None, pace: float | None) -> None:
        from speech.audio_out import TimelineWavWriter

        self.app = app
        self.writer = TimelineWavWriter()
        self.speaker = speaker
        self.pace = pace  # None: no sleeping (fast mode); else real time / pace
        self._seq: int | None = None
        self._pos_s = 0.0

    def write(self, block: np.ndarray, rate: int) -> None:
        """One block of the copilot's voice (under the ``audio_out`` InlineStage)."""
        t0 = self.app.clock.now_ns()
        self.app.inline["audio_out"].call(lambda: self._write(block, rate))
        self.app.tracer.span("audio_out", "write", "-", t0, self.app.clock.now_ns())

    def _write(self, block: np.ndarray, rate: int) -> None:
        cur = self.app.audio_out.current if self.app.audio_out else None
        if cur is not None and cur.seq != self._seq:
            self._seq = cur.seq
            self._pos_s = self.app.speech_media_start(cur.trace_id)
            self._pos_s = self.writer.add(self._pos_s, np.zeros(0, np.float32), rate)
        self.writer.add(self._pos_s, block, rate)
        self._pos_s += len(block) / rate
        if self.speaker is not None:
            self.speaker.write(block, rate)
        elif self.pace:
            time.sleep(len(block) / rate / self.pace)

    def close(self) -> None:
        if self.speaker is not None:
            self.speaker.close()


class SupervisedTTS:
    """A TTS whose ``synthesize`` runs under an InlineStage (faults, watchdog, health) and
    writes a ``tts.synth`` span; everything else is the wrapped TTS."""

    def __init__(self, tts: Any, stage: InlineStage, tracer: Tracer, clock: Clock) -> None:
        self._tts = tts
        self._stage = stage
        self._tracer = tracer
        self._clock = clock

    def synthesize(self, text: str) -> Any:
        """Speech for ``text`` (see speech.tts)."""
        t0 = self._clock.now_ns()
        out = self._stage.call(lambda: self._tts.synthesize(text))
        self._tracer.span("tts", "synth", "-", t0, self._clock.now_ns(), chars=len(text))
        return out

    def stream(self, text: str) -> Iterator[np.ndarray]:
        """Chunks of speech for ``text`` as the TTS produces them. The fault hook runs once
        per message (on the first chunk); every chunk is watched (a TTS stuck mid-sentence
        shows as hung). The ``tts.synth`` span ends at the first chunk."""
        t0 = self._clock.now_ns()
        it = iter(self._tts.stream(text))
        try:
            chunk = self._stage.call(lambda: next(it, None))
            self._tracer.span("tts", "synth", "-", t0, self._clock.now_ns(), chars=len(text))
            while chunk is not None:
                yield chunk
                chunk = self._stage.call(lambda: next(it, None), fault=False)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tts, name)


class Copilot:
    """The running copilot. Build with a RunConfig, call ``run()`` (blocks) or ``start()``."""

    def __init__(
        self,
        cfg: RunConfig,
        clock: Clock = SYSTEM_CLOCK,
        extra_sinks: list[FrameSink] | None = None,
        on_message: Callable[[Message], None] | None = None,
    ) -> None:
        cfg.check()
        quiet_native_logs()
        self.cfg = cfg
        self.clock = clock
        self.extra_sinks = list(extra_sinks or [])
        self.on_message = on_message
        self.src = resolve_source(cfg.source, cfg.audio)
        self.out_dir, self.video_out = resolve_out(cfg.out)
        faults = [f if isinstance(f, FaultSpec) else FaultSpec.parse(f) for f in cfg.faults]
        for f in faults:
            if f.stage not in FAULT_STAGES:
                raise CopilotError(
                    f"bad --inject-fault {f.stage}:{f.kind}: STAGE must be one of "
                    f"{', '.join(FAULT_STAGES)}"
                )
        self.faults = {f.stage: f for f in faults}
        self.stop_event = threading.Event()
        self.voice_stop = threading.Event()
        self._user_stop = False  # stop() was called (Ctrl-C, the UI): do not wait for the voice
        self.tracer = Tracer(cfg.trace, clock)
        self.tracer.listeners.append(self._fault_event)
        self._fault_counts: dict[tuple[str, str], int] = {}
        self.store = AnnotationStore()
        self.compositor = Compositor(stale_after=cfg.stale_after)
        self.outputs: dict[str, Path] = {}
        self.frames_in = 0
        self.frames_out = 0
        self.media_t_s = 0.0  # media time of the newest decoded frame
        self.video_done = threading.Event()
        self.error = ""
        self.runners: list[StageRunner] = []
        self.inline: dict[str, InlineStage] = {}
        self.audio_out: Any = None
        self.speech_sink: TimelineSpeechSink | None = None
        self.listener_stage: ListenerStage | None = None
        self.brain: Any = None
        self.session: Any = None
        self._answers = 0
        self._alerts = 0
        self._pending_findings: list[Finding] = []  # of the frame the vision stage is on
        self._trigger: dict[str, tuple[float, int]] = {}  # trace id -> (media s, clock ns)
        self._audio_t0_ns: int | None = None
        self._lock = threading.Lock()
        self._fps = 0.0  # frames out per second over the last FPS_WINDOW_S
        self._out_times: collections.deque[int] = collections.deque()
        self._last_out_ns: int | None = None
        self._last_latency_ms: float | None = None
        self.t0_ns = clock.now_ns()
        self.source: Any = None
        self.composed = False
        #: the vision backend that actually runs (set by compose) and why, when not asked for
        self.vision_backend: str = cfg.vision
        self.vision_backend_reason: str | None = None

    # -- wiring ------------------------------------------------------------------------------
    def compose(self) -> None:
        """Open the source and create edges, stages, sinks; nothing runs yet."""
        from vision.sources import open_source

        cfg = self.cfg
        self.source = open_source(self.src.video, cfg.decoder)
        info = self.source.info
        self.fps = info.fps
        live = info.live
        realtime = cfg.mode == "realtime"
        policy = Policy.LATEST if (realtime or live) else Policy.LOSSLESS
        self.video_edge: EdgeQueue[VideoFrame] = EdgeQueue(
            "video", policy, 4 if realtime else 8, warn_when_full=False)
        self.analysis_slot: LatestSlot[VideoFrame] = LatestSlot("analysis")
        every = cfg.analyse_every
        if every is None:
            every = max(1, round(info.fps / 10))
        self.lockstep = every if (cfg.mode == "fast" and not live) else 0
        self.analysis_edge: EdgeQueue[VideoFrame] = EdgeQueue(
            "analysis", Policy.LOSSLESS, 1, warn_when_full=False)
        self.analysis_waits = 0
        self.audio_edge: EdgeQueue[AudioChunk] = EdgeQueue("audio", Policy.LOSSLESS, 256)
        self.sinks: list[FrameSink] = list(self.extra_sinks)
        if self.video_out is not None:
            self.sinks.append(Mp4Sink(self.video_out))
        if cfg.window:
            self.sinks.append(WindowSink())
        for name in ("decode", "overlay", "writer", "brain", "tts", "audio_out",
                     *(SPEECH_STEPS if self._speech_wanted() else ())):
            # the voice outlives the video (it finishes what it has to say): its own stop
            stop = self.voice_stop if name in ("tts", "audio_out") else self.stop_event
            self.inline[name] = InlineStage(
                name, self.tracer, self.clock, self.faults.get(name), self.t0_ns, stop
            )
        self.privacy = None
        if cfg.anonymise:
            from copilot.privacy import Anonymiser

            self.privacy = Anonymiser(on_span=self._hidden_span, on_change=self._hidden_change)
        self._resolve_vision()
        self._resolve_validity()
        self._make_session()
        self._make_brain()
        self._make_vision()
        self._make_speech()
        self._make_voice()
        self.watchdog = Watchdog(
            [*self.runners, *self.inline.values()],  # type: ignore[list-item]
            self.tracer, self.clock, hang_s=cfg.hang_s,
        )
        self.composed = True

    def _wrap(self, factory: Callable[[], Stage], name: str) -> Callable[[], Stage]:
        spec = self.faults.get(name)
        if spec is None:
            return factory
        return lambda: FaultyStage(factory(), spec, self.clock, self.t0_ns, self.stop_event)

    def _make_session(self) -> None:
        if self.out_dir is None:
            return
        from copilot.session import SessionLog  # part of the package: no silent skip

        path = self.out_dir / "session.jsonl"
        _set_aside(path)
        self.session = SessionLog(path)
        self.outputs["session"] = path
        self.session_write("start", source=str(self.cfg.source), mode=self.cfg.mode,
                           anonymise=self.cfg.anonymise,
                           vision_backend=self.vision_backend,
                           vision_backend_reason=self.vision_backend_reason,
                           scenario=self.src.scenario, procedure=self.procedure,
                           cvs_source=self.cvs_policy.source, cvs_why=self.cvs_policy.why,
                           vision_model=str(self.model_dir or "vision/weights/default"),
                           vision_model_why=self.model_choice,
                           config=_jsonable(self.cfg.__dict__),
                           fps=self.source.info.fps, width=self.source.info.width,
                           height=self.source.info.height, n_frames=self.source.info.n_frames)

    #: the status line's fps is measured over this sliding window (s)
    FPS_WINDOW_S = 2.0

    #: how long (s) the video waits at start for the analysis stages to load their models
    STARTUP_WAIT_S = 20.0

    #: the copilot's speaking rate (words per minute): brisk but clear, like a cockpit voice
    VOICE_WPM = 180

    #: an answer not begun this long (s) after it was ready is dropped, not said late
    ANSWER_TTL_S = 15.0

    #: trace events that are faults or recoveries, logged to the session as "fault" records
    FAULT_EVENTS = frozenset({"error", "restart", "hung", "replaced", "gave_up"})
    #: at most this many "fault" records per (stage, event); the rest are counted in "end"
    MAX_FAULT_RECORDS = 50

    def _fault_event(self, stage: str, name: str, attrs: dict[str, Any]) -> None:
        """A stage fault (raise / hang / restart) becomes a flushed session record."""
        if name not in self.FAULT_EVENTS:
            return
        key = (stage, name)
        n = self._fault_counts[key] = self._fault_counts.get(key, 0) + 1
        if n <= self.MAX_FAULT_RECORDS:
            self.session_write("fault", media_t_s=round(self.media_t_s, 3), stage=stage,
                               event=name, **{k: v for k, v in attrs.items()
                                              if isinstance(v, str | int | float | bool)})

    def session_write(self, kind: str, **rec: Any) -> None:
        """Append one record to session.jsonl (no-op without a session)."""
        if self.session is None:
            return
        try:
            self.session.write(kind, **rec)
        except Exception as exc:  # noqa: BLE001 - the log must never stop the video
            log.error("session log write failed: %s", exc)

    def _make_brain(self) -> None:
        if self.cfg.vision == "none" and not self._speech_wanted():
            return
        from copilot.brain import Brain  # part of the package: no silent skip

        self.brain = Brain(scenario=self.procedure, session=self.session, clock=self.clock,
                           tracer=self.tracer, cvs_policy=self.cvs_policy,
                           use_in_domain=not self.synthetic_feed,
                           real_video=not self.synthetic_feed)
        if self.cfg.taught is not None:
            from vision.teach import TeachError

            try:
                names = self.brain.teaching.load(self.cfg.taught)
            except TeachError as exc:
                raise CopilotError(str(exc)) from None
            self.session_write("taught_loaded", path=str(self.cfg.taught), names=names)

    def _resolve_validity(self) -> None:
        """The stated procedure and who calls the CVS (``copilot.validity``). A feed folder
        with truth is one of the project's synthetic feeds: the vision's other validated
        domain, where its CVS head decides and only a procedure mismatch is off-label (the
        in-domain score is calibrated on real frames)."""
        from copilot.validity import CvsPolicy, cvs_policy, resolve_procedure

        self.procedure = resolve_procedure(self.cfg.procedure, self.src.scenario)
        model_dir = self.model_dir if self.vision_backend == "model" else None
        try:
            self.cvs_policy = cvs_policy(self.cfg.cvs, self.synthetic_feed, model_dir)
        except ValueError as exc:
            raise CopilotError(str(exc)) from None
        if self.vision_backend != "model" and self.cfg.cvs == "auto":
            self.cvs_policy = CvsPolicy("surgeon", {}, f"no vision model ({self.vision_backend})")

    @property
    def off_label(self) -> bool:
        """Is the view off-label now (vision alerts withheld)?"""
        return self.brain is not None and self.brain.offlabel.off_label

    def _resolve_vision(self) -> None:
        """Decide the vision backend that will actually run (``vision_backend``) and why
        (``vision_backend_reason``). The model is loaded here once, so a model or runtime
        the user named that cannot load is a CopilotError (one line, exit 2); with
        ``--vision auto`` and nothing named, a failed load falls back to the heuristic stage
        and says so (log, session start record, status line, report)."""
        from copilot.stages import load_vision_pipeline
        from copilot.validity import model_for_source

        cfg = self.cfg
        self._vision_pipeline: Any = None
        self.vision_backend, self.vision_backend_reason = cfg.vision, None
        self.synthetic_feed = self.src.truth is not None
        self.model_dir, self.model_choice = model_for_source(cfg.model_dir, self.synthetic_feed)
        if cfg.vision not in ("auto", "model"):
            return
        named = cfg.vision == "model" or cfg.model_dir is not None or \
            cfg.runtime != "onnxruntime"
        try:
            self._vision_pipeline = load_vision_pipeline(self.model_dir, cfg.runtime,
                                                         cfg.vision_threads)
            self.vision_backend = "model"
        except Exception as exc:  # noqa: BLE001 - an error when named, else a said fallback
            why = " ".join(str(exc).split()) or type(exc).__name__
            if named:
                raise CopilotError(f"vision model cannot load ({why})") from None
            self.vision_backend = "heuristic"
            self.vision_backend_reason = f"model failed to load: {why}"
            log.warning("vision: heuristic stage (%s)", self.vision_backend_reason)

    def _make_vision(self) -> None:
        from copilot.stages import vision_stage_factory

        kind = self.vision_backend
        factory = vision_stage_factory(kind, self.model_dir, self.cfg.runtime, self.clock,
                                       threads=self.cfg.vision_threads,
                                       pipeline=self._vision_pipeline,
                                       phase_note="" if self.synthetic_feed else
                                       "phase head validated on synthetic video only")
        if factory is None:
            return
        take = take_from(self.analysis_edge if self.lockstep else self.analysis_slot)
        brain, privacy = self.brain, self.privacy
        if brain is not None:
            def take_and_keep_thumbnail(timeout: float, take: Take = take) -> Message:
                """The analysed frame also offers the brain an evidence thumbnail (in the
                analysis worker: off the video path; at most brain.cfg.thumb_hz per s)."""
                msg = take(timeout)
                if isinstance(msg, VideoFrame) and not (  # none of a hidden frame
                        privacy is not None and privacy.is_hidden(msg.frame_id)):
                    try:
                        brain.on_frame(msg.frame_id, msg.media_t_s, msg.image)
                    except Exception as exc:  # noqa: BLE001 - thumbnails are optional
                        log.debug("thumbnail failed: %s", exc)
                return msg

            take = take_and_keep_thumbnail
        self.runners.append(StageRunner(
            "vision", self._wrap(factory, "vision"), take,
            self._on_vision, self.tracer, self.clock, stop_event=self.stop_event, nice=5,
        ))

    def _speech_wanted(self) -> bool:
        if self.cfg.speech == "off":
            return False
        if self.cfg.speech == "on":
            return True
        return self.src.audio is not None or self.cfg.mic

    def _make_speech(self) -> None:
        cfg = self.cfg
        if not self._speech_wanted():
            return
        if cfg.speech == "on" and self.src.audio is None and not cfg.mic:
            raise CopilotError("--speech on needs audio: a feed folder with audio.wav, "
                               "--audio FILE or --mic")
        def factory() -> Stage:
            self.listener_stage = ListenerStage(self)
            return self.listener_stage

        self.runners.append(StageRunner(
            "speech", self._wrap(factory, "speech"), take_from(self.audio_edge),
            self._on_speech, self.tracer, self.clock, stop_event=self.stop_event,
        ))

    def _make_voice(self) -> None:
        """The copilot's voice (alerts, answers): whenever the brain runs, listening or not.
        Without espeak-ng the run goes on silently (logged)."""
        cfg = self.cfg
        if self.brain is None and not self._speech_wanted():
            return
        from speech.audio_out import AudioOut
        from speech.tts import create_tts

        try:
            # espeak-ng: alerts must start within 0.5 s (Piper joe measured 1.7 s first audio
            # under load; `copilot say` uses it where installed)
            engine = create_tts("espeak", speed=self.VOICE_WPM)
        except Exception as exc:  # noqa: BLE001 - no voice is not a reason to stop the video
            log.warning("the copilot's voice is off: %s", exc)
            return
        speaker = None
        if cfg.speak:
            from speech.audio_out import SoundDeviceSink

            speaker = SoundDeviceSink()
        pace = cfg.speed if cfg.mode == "realtime" else None
        self.speech_sink = TimelineSpeechSink(self, speaker, pace)
        tts = SupervisedTTS(engine, self.inline["tts"], self.tracer, self.clock)
        ttl = self.ANSWER_TTL_S if cfg.mode == "realtime" else None  # fast: no wall clock
        self.audio_out = AudioOut(tts, self.speech_sink, max_queue=8,
                                  clock=lambda: self.clock.now_ns() / 1e9, max_hold_s=1.5,
                                  ttl_s=ttl, supersede=True)

    # -- callbacks from stages -----------------------------------------------------------------
    def _publish(self, msg: Message) -> None:
        if self.on_message is not None:
            try:
                self.on_message(msg)
            except Exception as exc:  # noqa: BLE001 - a UI error must not stop the copilot
                log.warning("message listener failed: %s", exc)

    def _on_vision(self, msg: Message) -> None:
        if isinstance(msg, Finding):
            self._pending_findings.append(msg)
            return
        if isinstance(msg, OverlayUpdate):
            findings = [f for f in self._pending_findings if f.frame_id == msg.frame_id]
            self._pending_findings = []
            if self._vision_privacy(msg, findings):
                return  # a hidden frame: nothing made from it is drawn, shown or reasoned on
            self.store.publish(msg.annotations)
            if self.brain is not None:
                t0 = self.clock.now_ns()
                out = self.inline["brain"].call(lambda: self.brain.on_findings(
                    msg.frame_id, msg.media_t_s or 0.0, findings))
                self.tracer.span("brain", "findings", msg.trace_id, t0, self.clock.now_ns(),
                                 frame_id=msg.frame_id)
                for m in out or ():
                    self.deliver(m, trigger=(msg.media_t_s or 0.0, t0))
            self._publish(msg)
            return
        self.deliver(msg)

    def _vision_privacy(self, msg: OverlayUpdate, findings: list[Finding]) -> bool:
        """Give the anonymiser the vision's verdict; True when the analysed frame is hidden."""
        if self.privacy is None:
            return False
        region = next((f for f in findings if f.kind == "region"), None)
        dom = next((f for f in findings if f.kind == "domain"), None)
        self.privacy.note_vision(
            msg.media_t_s or 0.0, region.name if region else None,
            region.score if region else 0.0, dom.score if dom else None,
            bool(dom.attrs.get("off_label")) if dom else None)
        return self.privacy.is_hidden(msg.frame_id)

    def _hidden_span(self, span: Any) -> None:
        """A span of hidden frames ended: one session record (media s, why; no pixels)."""
        self.session_write("hidden", media_t_s=round(span.start_s, 3), **span.as_record())

    def _hidden_change(self, hidden: bool, media_t_s: float, reason: str) -> None:
        """The picture is hidden (or shown again): the brain pauses alerts and answers."""
        self.tracer.event("privacy", "hidden" if hidden else "shown", f"p{media_t_s:.3f}",
                          reason=reason, media_t_s=round(media_t_s, 3))
        if hidden:  # a run cut mid-span still shows where hiding began
            self.session_write("hiding", media_t_s=round(media_t_s, 3), reason=reason)
        if self.brain is not None:
            try:
                self.brain.set_privacy(hidden, media_t_s, reason)
            except Exception as exc:  # noqa: BLE001 - the video goes on
                log.warning("brain privacy update failed: %s", exc)

    def _on_speech(self, msg: Message) -> None:
        if not isinstance(msg, TranscriptMsg):
            return
        addressed = msg.accepted
        self._publish(msg)
        if self.brain is None:
            return
        t0 = self.clock.now_ns()
        out = self.inline["brain"].call(lambda: self.brain.on_transcript(msg, addressed))
        self.tracer.span("brain", "answer", msg.trace_id, t0, self.clock.now_ns())
        for m in out or ():
            if isinstance(m, Answer):
                m.trace_id = msg.trace_id  # speech end -> answer audio on one trace
            self.deliver(m, trigger=(msg.end_s, t0))

    def deliver(self, msg: Message, trigger: tuple[float, int] | None = None) -> None:
        """Route a brain output: alerts and answers to the voice, controls to the audio out."""
        from speech.audio_out import Priority as SayPriority

        self._publish(msg)
        if trigger is not None:
            with self._lock:
                self._trigger[msg.trace_id] = trigger
        if isinstance(msg, Alert):
            self._alerts += 1
            self.tracer.event("alert", "raise", msg.trace_id, rule=msg.rule,
                              frame_id=msg.frame_id, media_t_s=msg.media_t_s)
            if self.audio_out is not None and msg.text and not getattr(msg, "silent", False):
                self.audio_out.say(spoken_text(msg), SayPriority.ALERT, msg.trace_id)
        elif isinstance(msg, Answer):
            self._answers += 1
            if self.audio_out is not None and msg.text:
                self.audio_out.say(spoken_text(msg), SayPriority.ANSWER, msg.trace_id)
        elif isinstance(msg, Control):
            self.control(msg)

    def control(self, msg: Control) -> None:
        """Apply a runtime command: stop / repeat speech, hide / show overlays."""
        cmd = msg.command
        if self.audio_out is not None:
            if cmd == "stop":
                self.audio_out.stop()
            elif cmd == "repeat":
                self.audio_out.repeat()
        if cmd == "hide":
            self.store.hidden.add(str(msg.args.get("source", "vision")))
        elif cmd == "show":
            self.store.hidden.discard(str(msg.args.get("source", "vision")))

    def on_user_speaking(self, speaking: bool) -> None:
        """VAD opened / closed an utterance: hold the copilot's voice meanwhile."""
        if self.audio_out is not None:
            self.audio_out.user_speaking(speaking)

    def transcript_message(self, tr: Any) -> TranscriptMsg:
        """A speech.asr.Transcript as a runtime message, with its trace spans."""
        tid = f"u{int(tr.start_s * 1000)}-{os.urandom(2).hex()}"
        now = self.clock.now_ns()
        end_ns = self.audio_clock_ns(tr.end_s)
        if end_ns is not None:
            start_ns = self.audio_clock_ns(tr.start_s) or end_ns
            self.tracer.span("speech", "utterance", tid, start_ns, end_ns,
                             start_s=round(tr.start_s, 3), end_s=round(tr.end_s, 3),
                             accepted=bool(tr.accepted))
            self.tracer.span("speech", "final", tid, end_ns, max(end_ns, now))
        msg = TranscriptMsg(
            t_ns=now, trace_id=tid, media_t_s=tr.end_s, text=tr.text if tr.accepted else "",
            confidence=float(tr.confidence), start_s=float(tr.start_s), end_s=float(tr.end_s),
            nbest=list(tr.nbest) if tr.accepted else [], speaker_score=tr.speaker_score,
            accepted=bool(tr.accepted), reason=str(tr.reason or ""),
        )
        return msg

    def audio_clock_ns(self, media_s: float) -> int | None:
        """Runtime-clock time at which the audio at ``media_s`` was released (None: unknown)."""
        if self._audio_t0_ns is None:
            return None
        if self.cfg.mode == "realtime" or self.src.live:
            return self._audio_t0_ns + int(media_s / self.cfg.speed * 1e9)
        return None

    def speech_media_start(self, trace_id: str) -> float:
        """Where on the feed's time line the copilot's next utterance starts (s)."""
        now_ns = self.clock.now_ns()
        with self._lock:
            trig = self._trigger.get(trace_id)
        self.tracer.event("tts", "first_audio", trace_id)
        if self.cfg.mode == "realtime" or trig is None:
            return max(0.0, self.media_t_s)
        media, t_ns = trig
        return max(0.0, media + (now_ns - t_ns) / 1e9)

    # -- the threads -----------------------------------------------------------------------------
    def _decode_loop(self) -> None:
        cfg = self.cfg
        dec = self.inline["decode"]
        it = iter(self.source)
        realtime = cfg.mode == "realtime" and not self.src.live
        start_ns: int | None = None
        try:
            while not self.stop_event.is_set():
                t0 = self.clock.now_ns()
                item = dec.call(lambda: next(it, None))
                if item is None:
                    break
                i, t_s, rgb = item
                t_dec = self.clock.now_ns()
                if cfg.max_seconds is not None and t_s >= cfg.max_seconds:
                    break
                if self.privacy is not None:  # before anyone sees it: text out, hidden?
                    rgb = self.privacy.process(i, t_s, rgb)
                if realtime:
                    if start_ns is None:
                        start_ns = self.clock.now_ns() - int(t_s / cfg.speed * 1e9)
                    due = start_ns + int(t_s / cfg.speed * 1e9)
                    wait = (due - self.clock.now_ns()) / 1e9
                    if wait > 0:
                        self.clock.sleep(wait)
                now = self.clock.now_ns()
                if self._audio_t0_ns is None:
                    self._audio_t0_ns = now - int(t_s / cfg.speed * 1e9)
                frame = VideoFrame(t_ns=now, trace_id=f"f{i}", media_t_s=t_s, frame_id=i,
                                   image=rgb, fps=self.fps, t_decoded_ns=now)
                # the span is the decode alone; the frame is released (t1 ... now) after pacing
                self.tracer.span("decode", "frame", frame.trace_id, t0, t_dec, frame_id=i,
                                 media_t_s=round(t_s, 4), paced_ms=round((now - t_dec) / 1e6, 3))
                self.frames_in += 1
                self.media_t_s = t_s
                if self.lockstep:
                    if i % self.lockstep == 0 and self._vision_alive():
                        if not self.analysis_edge.put(frame, timeout=cfg.hang_s):
                            self.analysis_waits += 1  # analysis too slow / hung: go on
                else:
                    self.analysis_slot.put(frame)
                if not self.video_edge.put(frame):
                    break
        except InjectedFault as exc:
            self.error = f"decode failed: {exc}"
        except Exception as exc:  # noqa: BLE001 - a decoder error ends the video cleanly
            self.error = f"decoding stopped: {exc}"
            log.info("%s", self.error)
        finally:
            self.video_edge.close()
            self.video_done.set()

    def _status(self) -> Status:
        health = {r.name: r.health.state for r in self.runners}
        for s in self.inline.values():
            if s.health.state != "ok" or s.health.errors:
                health[s.name] = s.health.state if s.health.state != "ok" else "ok*"
        extra = "" if self.vision_backend_reason is None else \
            f"vision {self.vision_backend}: {self.vision_backend_reason}"[:80]
        return Status(fps=self._fps, latency_ms=self._last_latency_ms, health=health,
                      extra=extra)

    def status(self) -> Status:
        """What the status line shows now (fps, latency, stage health)."""
        return self._status()

    def _compose_loop(self) -> None:
        over = self.inline["overlay"]
        writer = self.inline["writer"]
        opened = False
        # the compose step owns the frame when no analysis stage reads it: draw in place
        own = not any(r.name == "vision" for r in self.runners)
        self.compositor.warm_up()  # OpenCV's first drawing call costs ~40 ms: not on frame 0
        try:
            while True:
                try:
                    frame = self.video_edge.get(timeout=0.5)
                except TimeoutError:
                    if self.stop_event.is_set():
                        break
                    continue
                except Closed:
                    break
                t0 = self.clock.now_ns()
                hidden = self.privacy is not None and self.privacy.is_hidden(frame.frame_id)
                if hidden:  # no pixel of it and no drawing made from it: the grey frame
                    frame = dataclasses.replace(frame, image=self.privacy.render(
                        frame.frame_id, frame.image)[0])
                sets = [] if hidden else self.store.current()
                if self.brain is not None and not hidden:
                    try:
                        extra = self.brain.overlay(frame.frame_id)
                    except Exception as exc:  # noqa: BLE001 - drawings are optional
                        log.warning("brain overlay failed: %s", exc)
                        extra = None
                    if extra is not None and extra.source not in self.store.hidden:
                        sets = [*sets, extra]
                status = self._status()
                try:
                    img = over.call(lambda f=frame, s=sets, st=status:
                                    self.compositor.compose(f, s, st, in_place=own))
                except InjectedFault:
                    img = frame.image  # the picture keeps flowing without the drawings
                t1 = self.clock.now_ns()
                self.tracer.span("overlay", "compose", frame.trace_id, t0, t1,
                                 frame_id=frame.frame_id)
                if not opened:
                    h, w = img.shape[:2]
                    for s in self.sinks:
                        s.open(self.fps, (w, h))
                    opened = True
                for s in self.sinks:
                    writer.call(lambda s=s, f=frame, im=img: s.write(f.frame_id, im))
                t2 = self.clock.now_ns()
                self.tracer.span("sink", "write", frame.trace_id, t1, t2,
                                 frame_id=frame.frame_id)
                self.tracer.span("video", "frame_to_overlay", frame.trace_id, frame.t_ns, t2,
                                 frame_id=frame.frame_id)
                self.frames_out += 1
                self._last_latency_ms = (t2 - frame.t_ns) / 1e6
                self._out_times.append(t2)  # frames out in the last FPS_WINDOW_S seconds
                while t2 - self._out_times[0] > self.FPS_WINDOW_S * 1e9:
                    self._out_times.popleft()
                if len(self._out_times) > 1:
                    span_s = (t2 - self._out_times[0]) / 1e9
                    self._fps = (len(self._out_times) - 1) / span_s if span_s > 0 else 0.0
                self._last_out_ns = t2
        except Exception as exc:  # noqa: BLE001 - report, keep what was written
            self.error = self.error or f"video output failed: {exc}"
            log.info("%s", self.error)
            self.stop_event.set()
        finally:
            self.video_edge.close()

    def _audio_loop(self) -> None:
        """Release the feed's audio in step with the video (fast) or the clock (realtime)."""
        from speech.audio import load_audio

        assert self.src.audio is not None
        try:
            pcm = load_audio(self.src.audio)
        except Exception as exc:  # noqa: BLE001 - bad audio: the video still runs
            self.error = self.error or f"audio not usable: {exc}"
            log.info("%s", self.error)
            self.audio_edge.close()
            return
        realtime = self.cfg.mode == "realtime"
        n = len(pcm)
        limit = self.cfg.max_seconds
        i = 0
        try:
            while i < n and not self.stop_event.is_set():
                chunk = pcm[i : i + AUDIO_CHUNK]
                if len(chunk) < AUDIO_CHUNK:
                    chunk = np.pad(chunk, (0, AUDIO_CHUNK - len(chunk)))
                t_end = (i + AUDIO_CHUNK) / 16000.0
                if limit is not None and t_end > limit + 0.5:
                    break
                while not self.stop_event.is_set():
                    if realtime:
                        if self._audio_t0_ns is not None:
                            due = self._audio_t0_ns + int(t_end / self.cfg.speed * 1e9)
                            wait = (due - self.clock.now_ns()) / 1e9
                            if wait <= 0:
                                break
                            self.clock.sleep(min(wait, 0.05))
                            continue
                    elif self.video_done.is_set() or self.media_t_s >= t_end:
                        break
                    if self.video_done.is_set():
                        break
                    self.clock.sleep(0.005)
                msg = AudioChunk(t_ns=self.clock.now_ns(), trace_id=f"a{i // AUDIO_CHUNK}",
                                 media_t_s=i / 16000.0, pcm=chunk.astype(np.float32),
                                 index=i // AUDIO_CHUNK)
                while not self.audio_edge.put(msg, timeout=0.5):
                    if self.audio_edge.closed or self.stop_event.is_set() or self._speech_stuck():
                        return
                i += AUDIO_CHUNK
        finally:
            self.audio_edge.close()

    # -- lifecycle --------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run to the end of the source (or ``stop()``); returns the result, writes outputs."""
        wall0 = time.perf_counter()
        if not self.composed:
            self.compose()
        threads = [
            threading.Thread(target=self._decode_loop, name="decode", daemon=True),
            threading.Thread(target=self._compose_loop, name="compose", daemon=True),
        ]
        audio_thread = None
        listening = any(r.name == "speech" for r in self.runners)
        if listening and self.src.audio is not None:
            audio_thread = threading.Thread(target=self._audio_loop, name="audio", daemon=True)
        elif listening and self.cfg.mic:
            audio_thread = threading.Thread(target=self._mic_loop, name="mic", daemon=True)
        for r in self.runners:
            r.start()
        # analysis stages load their models before the first frame: loading while the video
        # runs would take the CPU from the compositor (a realtime latency spike)
        until = time.monotonic() + self.STARTUP_WAIT_S
        for r in self.runners:
            r.ready.wait(max(0.0, until - time.monotonic()))
        self.watchdog.start()
        for t in threads:
            t.start()
        if audio_thread is not None:
            audio_thread.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
            self._drain_speech(audio_thread)
        except KeyboardInterrupt:
            self._user_stop = True
            self.stop_event.set()
            self.error = self.error or "interrupted"
        finally:
            result = self._shutdown(wall0)
        return result

    def _mic_loop(self) -> None:
        from speech.audio import MicrophoneSource

        try:
            mic = MicrophoneSource()
        except Exception as exc:  # noqa: BLE001 - no microphone: video-only
            self.error = self.error or str(exc)
            log.error("%s", exc)
            self.audio_edge.close()
            return
        self._audio_t0_ns = self._audio_t0_ns or self.clock.now_ns()
        try:
            for k, c in enumerate(mic):
                if self.stop_event.is_set() or self.video_done.is_set():
                    break
                self.audio_edge.put(AudioChunk(t_ns=self.clock.now_ns(), trace_id=f"a{k}",
                                               media_t_s=k * AUDIO_CHUNK / 16000.0, pcm=c,
                                               index=k))
        finally:
            mic.close()
            self.audio_edge.close()

    def _drain_speech(self, audio_thread: threading.Thread | None) -> None:
        """After the video: let the listener finish the audio (bounded wait), then flush."""
        if audio_thread is None:
            return
        budget = 60.0 + 0.5 * (self.media_t_s or 0.0)
        end = time.monotonic() + budget
        while (audio_thread.is_alive() and time.monotonic() < end and not self._speech_stuck()
               and not self.stop_event.is_set()):
            audio_thread.join(0.2)
        while len(self.audio_edge) and time.monotonic() < end and not self._speech_stuck():
            time.sleep(0.05)
        time.sleep(0.1)
        # a step inside the speech stage (VAD, wake, ASR) that is still busy: give the
        # watchdog time to name it (at most hang_s) before the stop releases it
        steps = [self.inline[n] for n in SPEECH_STEPS if n in self.inline]
        until = time.monotonic() + self.cfg.hang_s + 0.2
        while (any(st.health.busy_since_ns is not None and st.health.state != "hung"
                   for st in steps) and time.monotonic() < until):
            time.sleep(0.05)
        if self.listener_stage is not None:
            try:
                for m in self.listener_stage.flush():
                    self._on_speech(m)
            except Exception as exc:  # noqa: BLE001
                log.warning("speech flush failed: %s", exc)

    def submit_transcript(self, tr: Any) -> None:
        """A ``speech.asr.Transcript`` heard outside the feed (UI push-to-talk, a second mic):
        handled like the listener's own, answers go to the voice and ``on_message``."""
        self._on_speech(self.transcript_message(tr))

    def ask(self, text: str, confidence: float = 1.0) -> None:
        """A typed question or command (UI text box), e.g. "copilot, what phase is this?"."""
        now = self.clock.now_ns()
        t = self.media_t_s
        msg = TranscriptMsg(t_ns=now, trace_id=f"q{now}", media_t_s=t, text=text,
                            confidence=confidence, start_s=t, end_s=t, accepted=True)
        self._on_speech(msg)

    def teach_click(self, name: str, x: float, y: float, positive: bool = True) -> str:
        """The UI: teach ``name`` from a click at (x, y) in 0..1 of the shown frame
        (``copilot.teaching``); the answer goes to the voice and the history like a typed
        command's. Returns its text."""
        if self.brain is None:
            raise CopilotError("teaching needs the copilot's brain (vision or speech on)")
        w, h = self.brain.frame_size or (0, 0)
        if not w:
            return "No analysed frame yet."
        msg = self.brain.teach_click(name, x * w, y * h, positive)
        self.deliver(msg)
        return msg.text

    def _vision_alive(self) -> bool:
        """False when the vision stage is hung or failed (lockstep then stops waiting)."""
        runners = [r for r in self.runners if r.name == "vision"]
        return bool(runners) and all(r.health.state not in ("hung", "failed") for r in runners)

    def _speech_stuck(self) -> bool:
        """True when the speech stage is hung or has given up (do not wait for it)."""
        if not self.video_done.is_set():
            return False
        return any(r.name == "speech" and r.health.state in ("hung", "failed", "restarting")
                   for r in self.runners)

    def stop(self) -> None:
        """Ask every thread to finish (the video path writes what it has); the voice stops
        too instead of finishing what it still had to say."""
        self._user_stop = True
        self.stop_event.set()
        self.video_edge.close()

    def health(self) -> dict[str, dict[str, Any]]:
        """Stage health by name."""
        out = {r.name: r.health.as_dict() for r in self.runners}
        out.update({s.name: s.health.as_dict() for s in self.inline.values()})
        return out

    def _shutdown(self, wall0: float) -> RunResult:
        self.stop_event.set()
        if self.privacy is not None:
            self.privacy.finish()  # the span open at the end is recorded too
        self.analysis_slot.close()
        self.analysis_edge.close()
        self.audio_edge.close()
        for r in self.runners:
            r.stop(timeout=1.0)
        if self.brain is not None:
            try:
                for m in self.brain.finish(self.media_t_s) or ():
                    self.deliver(m, trigger=(self.media_t_s, self.clock.now_ns()))
            except Exception as exc:  # noqa: BLE001
                log.warning("brain finish failed: %s", exc)
            if self.out_dir is not None and self.brain.teaching.book.names():
                try:  # prototypes only, for the next case (--taught)
                    self.outputs["taught"] = self.brain.teaching.save(self.out_dir /
                                                                      "taught.npz")
                except OSError as exc:
                    self.error = self.error or f"cannot write taught concepts: {exc}"
        if self.audio_out is not None:  # the watchdog still guards the voice meanwhile
            if not self._user_stop:
                self.audio_out.wait_idle(30.0 if self.cfg.mode == "fast" else 60.0)
            self.voice_stop.set()
            self.audio_out.close()
        self.voice_stop.set()
        self.watchdog.stop()
        for s in self.sinks:
            try:
                s.close()
            except Exception as exc:  # noqa: BLE001 - keep closing the others
                self.error = self.error or f"closing {s.name} failed: {exc}"
        if self.video_out is not None and self.video_out.exists():
            self.outputs["video"] = self.video_out
        if self.source is not None:
            truncated = getattr(self.source, "truncated", None)
            if truncated and self.frames_in == 0:
                self.error = self.error or f"cannot decode {self.cfg.source}: {truncated}"
            elif truncated:
                where = f" to {self.video_out}" if "video" in self.outputs else ""
                self.error = self.error or (
                    f"{self.cfg.source}: {truncated}; wrote the {self.frames_out} decodable "
                    f"frames{where}"
                )
            self.source.close()
        duration = self.frames_in / self.fps if self.fps else self.media_t_s
        if self.out_dir is not None and self.speech_sink is not None:
            p = self.out_dir / "copilot_speech.wav"
            try:
                self.speech_sink.writer.save(p, duration)
                self.outputs["speech"] = p
            except (OSError, RuntimeError) as exc:  # disk full etc.: keep the other outputs
                self.error = self.error or f"cannot write {p}: {exc}"
        if self.speech_sink is not None:
            self.speech_sink.writer.close()
        dropped = self.video_edge.stats.dropped
        exit_code = 2 if self.error else 0
        self.session_write(
            "end", frames_in=self.frames_in, frames_out=self.frames_out, dropped=dropped,
            analysis_skipped=self.analysis_slot.dropped + self.analysis_waits,
            analysis_every=self.lockstep, health=self.health(),
            anonymise=self.privacy is not None,
            hidden_frames=getattr(self.privacy, "hidden", 0),
            exit_code=exit_code, error=self.error, duration_s=round(duration, 3),
            faults={f"{k[0]}.{k[1]}": n for k, n in sorted(self._fault_counts.items())},
            edges=[self.video_edge.snapshot(), self.audio_edge.snapshot()],
            latency=self.latency_summary(),
        )
        if self.session is not None:
            self.session.close()
        self.tracer.close()
        if self.cfg.trace:
            self.outputs["trace"] = Path(self.cfg.trace)
        if self.out_dir is not None and self.cfg.report and "session" in self.outputs:
            try:
                from copilot.report import build_report

                p = self.out_dir / "report.html"
                build_report(self.outputs["session"], p, trace_path=self.cfg.trace)
                self.outputs["report"] = p
            except Exception as exc:  # noqa: BLE001 - the run's data is kept; exit 2 says so
                self.error = self.error or f"report failed: {exc}"
        wall = time.perf_counter() - wall0
        return RunResult(
            frames_in=self.frames_in, frames_out=self.frames_out, dropped=dropped,
            exit_code=2 if self.error else 0, outputs=self.outputs, wall_s=wall,
            health=self.health(), error=self.error,
            fps=self.frames_out / wall if wall > 0 else 0.0,
            alerts=self._alerts, answers=self._answers, vision_backend=self.vision_backend,
            vision_backend_reason=self.vision_backend_reason,
        )

    def latency_summary(self) -> dict[str, dict[str, float]]:
        """p50 / p95 / p99 (ms) of the main spans seen in this run."""
        out = {}
        for key in self.tracer.keys():
            p = self.tracer.percentiles(key)
            if p:
                out[key] = {k: round(v, 3) for k, v in p.items()}
        return out


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, Path):
            out[k] = str(v)
        elif isinstance(v, (str, int, float, bool, type(None), list)):
            out[k] = v if not isinstance(v, list) else [str(x) for x in v]
    return out


def run_copilot(cfg: RunConfig, **kwargs: Any) -> RunResult:
    """Compose and run the copilot on ``cfg``; see :class:`Copilot` for keyword arguments."""
    app = Copilot(cfg, **kwargs)
    try:
        app.compose()
    except BaseException:
        app.tracer.close()
        raise
    return app.run()
