"""The composition steps ``Copilot.compose`` runs, in data-path order: the edges, which
vision backend actually runs and why, the stated procedure and who calls the CVS, the brain,
and the two worker stages (vision on the analysis slot, speech on the audio edge)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from copilot.errors import CopilotError
from copilot.faults import wrap_stage
from copilot.listening import ListenerStage
from copilot.messages import Message, VideoFrame
from copilot.queues import EdgeQueue, LatestSlot, Policy
from copilot.runtime import Stage, StageRunner, Take, take_from

if TYPE_CHECKING:
    from copilot.app import Copilot

log = logging.getLogger(__name__)


def make_edges(app: Copilot, info: Any) -> None:
    """The video edge (lossless offline, latest-wins live / realtime), the analysis slot
    or lockstep edge, and the lossless audio edge."""
    cfg = app.cfg
    app.fps = info.fps
    live = info.live
    realtime = cfg.mode == "realtime"
    policy = Policy.LATEST if (realtime or live) else Policy.LOSSLESS
    app.video_edge = EdgeQueue(
        "video", policy, 4 if realtime else 8, warn_when_full=False)
    app.analysis_slot = LatestSlot("analysis")
    every = cfg.analyse_every
    if every is None:
        every = max(1, round(info.fps / 10))
    app.lockstep = every if (cfg.mode == "fast" and not live) else 0
    app.analysis_edge = EdgeQueue(
        "analysis", Policy.LOSSLESS, 1, warn_when_full=False)
    app.analysis_waits = 0
    # --fast from a file with recorded audio: the video waits for the listener (loops.py)
    app.speech_lockstep = (cfg.mode == "fast" and not live and app.src.audio is not None
                           and app.speech_wanted())
    app.speech_waits = 0
    app.audio_edge = EdgeQueue("audio", Policy.LOSSLESS, 256)


def resolve_vision(app: Copilot) -> None:
    """Decide the vision backend that will actually run (``vision_backend``) and why
    (``vision_backend_reason``). The model is loaded here once, so a model or runtime
    the user named that cannot load is a CopilotError (one line, exit 2); with
    ``--vision auto`` and nothing named, a failed load falls back to the heuristic stage
    and says so (log, session start record, status line, report)."""
    from copilot.stages import load_vision_pipeline
    from copilot.validity import model_for_source

    cfg = app.cfg
    app.vision_pipeline = None
    app.vision_backend, app.vision_backend_reason = cfg.vision, None
    app.synthetic_feed = app.src.truth is not None
    app.model_dir, app.model_choice = model_for_source(cfg.model_dir, app.synthetic_feed)
    app.real_view = None  # set once a model runs on real video (copilot.real_view)
    if cfg.vision not in ("auto", "model"):
        return
    named = cfg.vision == "model" or cfg.model_dir is not None or \
        cfg.runtime != "onnxruntime"
    try:
        app.vision_pipeline = load_vision_pipeline(app.model_dir, cfg.runtime,
                                                   cfg.vision_threads)
        app.vision_backend = "model"
        if not app.synthetic_feed:  # the loaded model's own card (no second read)
            from copilot.real_view import from_card

            app.real_view = from_card(app.vision_pipeline.runtime.config.extra)
    except Exception as exc:  # noqa: BLE001 - an error when named, else a said fallback
        why = " ".join(str(exc).split()) or type(exc).__name__
        if named:
            raise CopilotError(f"vision model cannot load ({why})") from None
        app.vision_backend = "heuristic"
        app.vision_backend_reason = f"model failed to load: {why}"
        log.warning("vision: heuristic stage (%s)", app.vision_backend_reason)


def resolve_speech(app: Copilot) -> None:
    """Decide the recogniser that will actually run (``asr_backend``) and why, when it is not
    the one asked for (``asr_backend_reason``): "default" is the measured default
    (``speech.defaults``), or its fallback when the default's extra is missing, said in the
    log, the session start record, the status line, the UI and the report."""
    from speech.defaults import asr_available, resolve_asr

    if not app.speech_wanted():
        app.asr_backend, app.asr_backend_reason = "none", None
        return
    if app.cfg.asr != "default" and (missing := asr_available(app.cfg.asr)):
        raise CopilotError(f"--asr {app.cfg.asr} cannot load: {missing}")  # named: no fallback
    app.asr_backend, why = resolve_asr(app.cfg.asr)
    app.asr_backend_reason = why or None


def resolve_validity(app: Copilot) -> None:
    """The stated procedure and who calls the CVS (``copilot.validity``). A feed folder
    with truth is one of the project's synthetic feeds: the vision's other validated
    domain, where its CVS head decides and only a procedure mismatch is off-label (the
    in-domain score is calibrated on real frames)."""
    from copilot.validity import CvsPolicy, cvs_policy, resolve_procedure, withheld_rules

    app.procedure = resolve_procedure(app.cfg.procedure, app.src.scenario)
    app.alerts_withheld = withheld_rules(app.procedure, not app.synthetic_feed)
    model_dir = app.model_dir if app.vision_backend == "model" else None
    try:
        app.cvs_policy = cvs_policy(app.cfg.cvs, app.synthetic_feed, model_dir)
    except ValueError as exc:
        raise CopilotError(str(exc)) from None
    if app.vision_backend != "model" and app.cfg.cvs == "auto":
        app.cvs_policy = CvsPolicy("surgeon", {}, f"no vision model ({app.vision_backend})")


def make_brain(app: Copilot) -> None:
    """The brain (perception timeline, alerts, dialogue) whenever vision or speech runs,
    with the concepts taught in an earlier session (``--taught``)."""
    if app.cfg.vision == "none" and not app.speech_wanted():
        return
    from copilot.brain import Brain  # part of the package: no silent skip

    app.brain = Brain(scenario=app.procedure, session=app.session, clock=app.clock,
                      tracer=app.tracer, cvs_policy=app.cvs_policy,
                      use_in_domain=not app.synthetic_feed,
                      real_video=not app.synthetic_feed,
                      real_view=getattr(app, "real_view", None))
    if app.cfg.taught is not None:
        from vision.teach import TeachError

        try:
            names = app.brain.teaching.load(app.cfg.taught)
        except TeachError as exc:
            raise CopilotError(str(exc)) from None
        app.session_write("taught_loaded", path=str(app.cfg.taught), names=names)


def make_vision(app: Copilot) -> StageRunner | None:
    """The vision worker stage on the analysis slot (lockstep: edge); it also offers the
    brain an evidence thumbnail. None when no vision runs."""
    from copilot.stages import vision_stage_factory

    kind = app.vision_backend
    factory = vision_stage_factory(kind, app.model_dir, app.cfg.runtime, app.clock,
                                   threads=app.cfg.vision_threads,
                                   pipeline=app.vision_pipeline,
                                   real_view=getattr(app, "real_view", None))
    if factory is None:
        return None
    take = take_from(app.analysis_edge if app.lockstep else app.analysis_slot)
    brain, privacy = app.brain, app.privacy
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
    return StageRunner(
        "vision", _wrap(app, factory, "vision"), take,
        app.on_vision, app.tracer, app.clock, stop_event=app.stop_event, nice=5,
    )


def make_speech(app: Copilot) -> StageRunner | None:
    """The speech worker stage (``ListenerStage``) on the audio edge; None when not
    listening. ``--speech on`` without audio is a CopilotError."""
    cfg = app.cfg
    if not app.speech_wanted():
        return None
    if cfg.speech == "on" and app.src.audio is None and not cfg.mic:
        raise CopilotError("--speech on needs audio: a feed folder with audio.wav, "
                           "--audio FILE or --mic")

    def factory() -> Stage:
        app.listener_stage = ListenerStage(app)
        return app.listener_stage

    return StageRunner(
        "speech", _wrap(app, factory, "speech"), take_from(app.audio_edge),
        app.on_speech, app.tracer, app.clock, stop_event=app.stop_event,
    )


def _wrap(app: Copilot, factory: Callable[[], Stage], name: str) -> Callable[[], Stage]:
    """``factory`` with the fault injected into stage ``name`` (if any)."""
    return wrap_stage(factory, app.faults.get(name), app.clock, app.t0_ns, app.stop_event)
