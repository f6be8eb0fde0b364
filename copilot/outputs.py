"""What a run leaves behind: the session log (an earlier run's set aside, the start record
at compose, the end record) and, at shutdown, the stages stopped in order and the outputs
written (annotated video, the copilot's speech, taught concepts, trace, report)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from copilot.errors import CopilotError
from copilot.run_config import RunResult, jsonable
from copilot.tracing import Tracer

if TYPE_CHECKING:
    from copilot.app import Copilot

log = logging.getLogger(__name__)


def set_aside(path: Path) -> Path | None:
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



def open_session(app: Copilot) -> None:
    """Start ``session.jsonl`` in the output folder (none: no session) with the start
    record: source, mode, vision backend and why, procedure, CVS policy, config, video."""
    if app.out_dir is None:
        return
    from copilot.session import SessionLog  # part of the package: no silent skip

    path = app.out_dir / "session.jsonl"
    set_aside(path)
    app.session = SessionLog(path)
    app.outputs["session"] = path
    info = app.source.info
    app.session_write("start", source=str(app.cfg.source), mode=app.cfg.mode,
                      anonymise=app.cfg.anonymise,
                      vision_backend=app.vision_backend,
                      vision_backend_reason=app.vision_backend_reason,
                      asr_backend=app.asr_backend, asr_backend_reason=app.asr_backend_reason,
                      voice_backend=app.voice_backend,
                      voice_backend_reason=app.voice_backend_reason,
                      scenario=app.src.scenario, procedure=app.procedure,
                      cvs_source=app.cvs_policy.source, cvs_why=app.cvs_policy.why,
                      alerts_withheld=app.alerts_withheld,
                      real_taught=(None if getattr(app, "real_view", None) is None
                                   else app.real_view.card()),
                      vision_model=str(app.model_dir or "vision/weights/default"),
                      vision_model_why=app.model_choice,
                      config=jsonable(app.cfg.__dict__),
                      fps=info.fps, width=info.width, height=info.height,
                      n_frames=info.n_frames)


def latency_summary(tracer: Tracer) -> dict[str, dict[str, float]]:
    """p50 / p95 / p99 (ms) of the main spans seen in this run."""
    out = {}
    for key in tracer.keys():
        p = tracer.percentiles(key)
        if p:
            out[key] = {k: round(v, 3) for k, v in p.items()}
    return out


def shutdown(app: Copilot, wall0: float) -> RunResult:
    """Stop everything in order and write the outputs; ``wall0``: ``time.perf_counter()``
    at the start of the run (s)."""
    stop_stages(app)
    finish_brain(app)
    finish_voice(app)
    close_video(app)
    duration = app.frames_in / app.fps if app.fps else app.media_t_s
    save_speech(app, duration)
    dropped = app.video_edge.stats.dropped
    write_end(app, dropped, duration)
    if app.session is not None:
        app.session.close()
    app.tracer.close()
    if app.cfg.trace:
        app.outputs["trace"] = Path(app.cfg.trace)
    write_report(app)
    wall = time.perf_counter() - wall0
    return RunResult(
        frames_in=app.frames_in, frames_out=app.frames_out, dropped=dropped,
        exit_code=2 if app.error else 0, outputs=app.outputs, wall_s=wall,
        health=app.health(), error=app.error,
        fps=app.frames_out / wall if wall > 0 else 0.0,
        alerts=app.alerts, answers=app.answers, vision_backend=app.vision_backend,
        vision_backend_reason=app.vision_backend_reason, asr_backend=app.asr_backend,
        asr_backend_reason=app.asr_backend_reason, voice_backend=app.voice_backend,
        voice_backend_reason=app.voice_backend_reason,
    )


def stop_stages(app: Copilot) -> None:
    """Stop the threads and the worker stages (the privacy span open now is recorded)."""
    app.stop_event.set()
    if app.privacy is not None:
        app.privacy.finish()  # the span open at the end is recorded too
    app.analysis_slot.close()
    app.analysis_edge.close()
    app.audio_edge.close()
    for r in app.runners:
        r.stop(timeout=1.0)


def finish_brain(app: Copilot) -> None:
    """The brain's last words (alerts at the end of the case) and its taught concepts."""
    if app.brain is None:
        return
    try:
        for m in app.brain.finish(app.media_t_s) or ():
            app.deliver(m, trigger=(app.media_t_s, app.clock.now_ns()))
    except Exception as exc:  # noqa: BLE001
        log.warning("brain finish failed: %s", exc)
    if app.out_dir is not None and app.brain.teaching.book.names():
        try:  # prototypes only, for the next case (--taught)
            app.outputs["taught"] = app.brain.teaching.save(app.out_dir / "taught.npz")
        except OSError as exc:
            app.error = app.error or f"cannot write taught concepts: {exc}"


def finish_voice(app: Copilot) -> None:
    """Let the voice finish what it has to say (not after ``stop()``), then stop it and the
    watchdog (which guards the voice meanwhile)."""
    if app.audio_out is not None:  # the watchdog still guards the voice meanwhile
        if not app.user_stop:
            app.audio_out.wait_idle(30.0 if app.cfg.mode == "fast" else 60.0)
        app.voice_stop.set()
        app.audio_out.close()
    app.voice_stop.set()
    app.watchdog.stop()


def close_video(app: Copilot) -> None:
    """Close the sinks and the source; a truncated source is an error that says how many
    frames were written."""
    for s in app.sinks:
        try:
            s.close()
        except Exception as exc:  # noqa: BLE001 - keep closing the others
            app.error = app.error or f"closing {s.name} failed: {exc}"
    if app.video_out is not None and app.video_out.exists():
        app.outputs["video"] = app.video_out
    if app.source is None:
        return
    truncated = getattr(app.source, "truncated", None)
    if truncated and app.frames_in == 0:
        app.error = app.error or f"cannot decode {app.cfg.source}: {truncated}"
    elif truncated:
        where = f" to {app.video_out}" if "video" in app.outputs else ""
        app.error = app.error or (
            f"{app.cfg.source}: {truncated}; wrote the {app.frames_out} decodable "
            f"frames{where}"
        )
    app.source.close()


def save_speech(app: Copilot, duration: float) -> None:
    """The copilot's speech on the feed's time line (``duration`` s) as copilot_speech.wav."""
    if app.out_dir is not None and app.speech_sink is not None:
        p = app.out_dir / "copilot_speech.wav"
        try:
            app.speech_sink.writer.save(p, duration)
            app.outputs["speech"] = p
        except (OSError, RuntimeError) as exc:  # disk full etc.: keep the other outputs
            app.error = app.error or f"cannot write {p}: {exc}"
    if app.speech_sink is not None:
        app.speech_sink.writer.close()


def write_end(app: Copilot, dropped: int, duration: float) -> None:
    """The session's end record: counts, health, faults, edges, latency, exit code."""
    exit_code = 2 if app.error else 0
    app.session_write(
        "end", frames_in=app.frames_in, frames_out=app.frames_out, dropped=dropped,
        analysis_skipped=app.analysis_slot.dropped + app.analysis_waits,
        analysis_every=app.lockstep, speech_waits=getattr(app, "speech_waits", 0),
        health=app.health(),
        anonymise=app.privacy is not None,
        hidden_frames=getattr(app.privacy, "hidden", 0),
        exit_code=exit_code, error=app.error, duration_s=round(duration, 3),
        faults=app.fault_log.summary(),
        edges=[app.video_edge.snapshot(), app.audio_edge.snapshot()],
        latency=latency_summary(app.tracer),
    )


def write_report(app: Copilot) -> None:
    """report.html from the session and trace (a failure is the run's error, exit 2)."""
    if app.out_dir is not None and app.cfg.report and "session" in app.outputs:
        try:
            from copilot.report import build_report

            p = app.out_dir / "report.html"
            build_report(app.outputs["session"], p, trace_path=app.cfg.trace)
            app.outputs["report"] = p
        except Exception as exc:  # noqa: BLE001 - the run's data is kept; exit 2 says so
            app.error = app.error or f"report failed: {exc}"
