"""The copilot's threads: decode (source -> video edge + analysis slot), compose (video edge
-> overlay -> sinks), and the audio feeders (file or microphone -> audio edge), plus the
bounded wait for the listener after the video. Each takes the composed ``Copilot``.

The video threads never wait for analysis: the decode loop hands the analysis a frame
through a one-item slot (or, in lockstep, waits at most ``hang_s``), and the compose loop
draws the newest annotations available.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from copilot.faults import SPEECH_STEPS
from copilot.listening import AUDIO_CHUNK
from copilot.messages import AudioChunk, VideoFrame
from copilot.queues import Closed
from copilot.runtime import InjectedFault

if TYPE_CHECKING:
    from copilot.app import Copilot

log = logging.getLogger(__name__)


class OutputMeter:
    """Frames out per second over a sliding window and the newest frame's latency from
    decode to output (ms), for the status line."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s  # the fps is measured over this sliding window (s)
        self.fps = 0.0
        self.latency_ms: float | None = None
        self.last_out_ns: int | None = None
        self._times: collections.deque[int] = collections.deque()

    def note(self, t_frame_ns: int, t_out_ns: int) -> None:
        """A frame decoded at ``t_frame_ns`` was written at ``t_out_ns`` (clock ns)."""
        self.latency_ms = (t_out_ns - t_frame_ns) / 1e6
        self._times.append(t_out_ns)  # frames out in the last window_s seconds
        while t_out_ns - self._times[0] > self.window_s * 1e9:
            self._times.popleft()
        if len(self._times) > 1:
            span_s = (t_out_ns - self._times[0]) / 1e9
            self.fps = (len(self._times) - 1) / span_s if span_s > 0 else 0.0
        self.last_out_ns = t_out_ns


def vision_alive(app: Copilot) -> bool:
    """False when the vision stage is hung or failed (lockstep then stops waiting)."""
    runners = [r for r in app.runners if r.name == "vision"]
    return bool(runners) and all(r.health.state not in ("hung", "failed") for r in runners)


def speech_stuck(app: Copilot) -> bool:
    """True when the speech stage is hung or has given up (do not wait for it)."""
    if not app.video_done.is_set():
        return False
    return any(r.name == "speech" and r.health.state in ("hung", "failed", "restarting")
               for r in app.runners)


#: --fast with a recorded audio file: before releasing a frame at media time t, the video
#: waits (at most ``hang_s``) until the listener has taken the audio up to t minus this (s),
#: so a spoken command meets the frames it was said over however slow the recogniser is
SPEECH_SLACK_S = 0.25


def wait_for_speech(app: Copilot, t_s: float) -> None:
    """Offline replay: hold the video until the listener has heard up to ``t_s`` (s) minus
    ``SPEECH_SLACK_S``; not when the speech stage is unhealthy or has all the audio."""
    until = app.clock.now_ns() + int(app.cfg.hang_s * 1e9)
    runners = [r for r in app.runners if r.name == "speech"]
    while not app.stop_event.is_set() and runners:
        stage = app.listener_stage
        heard = stage.heard_s if stage is not None else 0.0
        if heard >= t_s - SPEECH_SLACK_S:
            return
        if any(r.health.state not in ("ok", "starting") or r.health.errors
               for r in runners) or (
                app.audio_edge.closed and not len(app.audio_edge)):
            return
        if app.clock.now_ns() >= until:
            app.speech_waits += 1  # the listener is slower than this: go on
            return
        app.clock.sleep(0.002)


def decode_loop(app: Copilot) -> None:
    """Decode the source, hide what must not be seen, pace it (realtime) and hand each
    frame to the analysis and the video edge; closes the video edge at the end."""
    cfg = app.cfg
    dec = app.inline["decode"]
    it = iter(app.source)
    realtime = cfg.mode == "realtime" and not app.src.live
    start_ns: int | None = None
    try:
        while not app.stop_event.is_set():
            t0 = app.clock.now_ns()
            item = dec.call(lambda: next(it, None))
            if item is None:
                break
            i, t_s, rgb = item
            t_dec = app.clock.now_ns()
            if cfg.max_seconds is not None and t_s >= cfg.max_seconds:
                break
            if app.privacy is not None:  # before anyone sees it: text out, hidden?
                rgb = app.privacy.process(i, t_s, rgb)
            if realtime:
                if start_ns is None:
                    start_ns = app.clock.now_ns() - int(t_s / cfg.speed * 1e9)
                due = start_ns + int(t_s / cfg.speed * 1e9)
                wait = (due - app.clock.now_ns()) / 1e9
                if wait > 0:
                    app.clock.sleep(wait)
            now = app.clock.now_ns()
            if app.media_clock.audio_t0_ns is None:
                app.media_clock.audio_t0_ns = now - int(t_s / cfg.speed * 1e9)
            frame = VideoFrame(t_ns=now, trace_id=f"f{i}", media_t_s=t_s, frame_id=i,
                               image=rgb, fps=app.fps, t_decoded_ns=now)
            # the span is the decode alone; the frame is released (t1 ... now) after pacing
            app.tracer.span("decode", "frame", frame.trace_id, t0, t_dec, frame_id=i,
                            media_t_s=round(t_s, 4), paced_ms=round((now - t_dec) / 1e6, 3))
            app.frames_in += 1
            app.media_t_s = t_s
            if app.speech_lockstep:
                wait_for_speech(app, t_s)
            if app.lockstep:
                if i % app.lockstep == 0 and vision_alive(app):
                    if not app.analysis_edge.put(frame, timeout=cfg.hang_s):
                        app.analysis_waits += 1  # analysis too slow / hung: go on
            else:
                app.analysis_slot.put(frame)
            if not app.video_edge.put(frame):
                break
    except InjectedFault as exc:
        app.error = f"decode failed: {exc}"
    except Exception as exc:  # noqa: BLE001 - a decoder error ends the video cleanly
        app.error = f"decoding stopped: {exc}"
        log.info("%s", app.error)
    finally:
        app.video_edge.close()
        app.video_done.set()



def frame_and_drawings(app: Copilot, frame: VideoFrame) -> tuple[VideoFrame, list[Any]]:
    """The frame to show and the annotation sets to draw on it: a hidden frame becomes the
    grey frame with no drawing made from it; else the store's sets plus the brain's."""
    hidden = app.privacy is not None and app.privacy.is_hidden(frame.frame_id)
    if hidden:  # no pixel of it and no drawing made from it: the grey frame
        frame = dataclasses.replace(frame, image=app.privacy.render(
            frame.frame_id, frame.image)[0])
    sets = [] if hidden else app.store.current()
    if app.brain is not None and not hidden:
        try:
            extra = app.brain.overlay(frame.frame_id)
        except Exception as exc:  # noqa: BLE001 - drawings are optional
            log.warning("brain overlay failed: %s", exc)
            extra = None
        if extra is not None and extra.source not in app.store.hidden:
            sets = [*sets, extra]
    return frame, sets


def compose_loop(app: Copilot) -> None:
    """Take frames off the video edge, draw the newest annotations (overlay step) and write
    them to every sink (writer step); a failed drawing passes the picture on undrawn."""
    over = app.inline["overlay"]
    writer = app.inline["writer"]
    opened = False
    # the compose step owns the frame when no analysis stage reads it: draw in place
    own = not any(r.name == "vision" for r in app.runners)
    app.compositor.warm_up()  # OpenCV's first drawing call costs ~40 ms: not on frame 0
    try:
        while True:
            try:
                frame = app.video_edge.get(timeout=0.5)
            except TimeoutError:
                if app.stop_event.is_set():
                    break
                continue
            except Closed:
                break
            t0 = app.clock.now_ns()
            frame, sets = frame_and_drawings(app, frame)
            status = app.status()
            try:
                img = over.call(lambda f=frame, s=sets, st=status:
                                app.compositor.compose(f, s, st, in_place=own))
            except InjectedFault:
                img = frame.image  # the picture keeps flowing without the drawings
            t1 = app.clock.now_ns()
            app.tracer.span("overlay", "compose", frame.trace_id, t0, t1,
                            frame_id=frame.frame_id)
            if not opened:
                h, w = img.shape[:2]
                for s in app.sinks:
                    s.open(app.fps, (w, h))
                opened = True
            for s in app.sinks:
                writer.call(lambda s=s, f=frame, im=img: s.write(f.frame_id, im))
            t2 = app.clock.now_ns()
            app.tracer.span("sink", "write", frame.trace_id, t1, t2, frame_id=frame.frame_id)
            app.tracer.span("video", "frame_to_overlay", frame.trace_id, frame.t_ns, t2,
                            frame_id=frame.frame_id)
            app.frames_out += 1
            app.meter.note(frame.t_ns, t2)
    except Exception as exc:  # noqa: BLE001 - report, keep what was written
        app.error = app.error or f"video output failed: {exc}"
        log.info("%s", app.error)
        app.stop_event.set()
    finally:
        app.video_edge.close()


def audio_loop(app: Copilot) -> None:
    """Release the feed's audio in step with the video (fast) or the clock (realtime)."""
    from speech.audio import load_audio

    assert app.src.audio is not None
    try:
        pcm = load_audio(app.src.audio)
    except Exception as exc:  # noqa: BLE001 - bad audio: the video still runs
        app.error = app.error or f"audio not usable: {exc}"
        log.info("%s", app.error)
        app.audio_edge.close()
        return
    realtime = app.cfg.mode == "realtime"
    n = len(pcm)
    limit = app.cfg.max_seconds
    i = 0
    try:
        while i < n and not app.stop_event.is_set():
            chunk = pcm[i : i + AUDIO_CHUNK]
            if len(chunk) < AUDIO_CHUNK:
                chunk = np.pad(chunk, (0, AUDIO_CHUNK - len(chunk)))
            t_end = (i + AUDIO_CHUNK) / 16000.0
            if limit is not None and t_end > limit + 0.5:
                break
            while not app.stop_event.is_set():
                if realtime:
                    if app.media_clock.audio_t0_ns is not None:
                        due = app.media_clock.audio_t0_ns + int(t_end / app.cfg.speed * 1e9)
                        wait = (due - app.clock.now_ns()) / 1e9
                        if wait <= 0:
                            break
                        app.clock.sleep(min(wait, 0.05))
                        continue
                elif app.video_done.is_set() or app.media_t_s >= t_end:
                    break
                if app.video_done.is_set():
                    break
                app.clock.sleep(0.005)
            msg = AudioChunk(t_ns=app.clock.now_ns(), trace_id=f"a{i // AUDIO_CHUNK}",
                             media_t_s=i / 16000.0, pcm=chunk.astype(np.float32),
                             index=i // AUDIO_CHUNK)
            while not app.audio_edge.put(msg, timeout=0.5):
                if app.audio_edge.closed or app.stop_event.is_set() or speech_stuck(app):
                    return
            i += AUDIO_CHUNK
    finally:
        app.audio_edge.close()


def mic_loop(app: Copilot) -> None:
    """Release the live microphone's audio onto the audio edge (until the video ends)."""
    from speech.audio import MicrophoneSource

    try:
        mic = MicrophoneSource()
    except Exception as exc:  # noqa: BLE001 - no microphone: video-only
        app.error = app.error or str(exc)
        log.error("%s", exc)
        app.audio_edge.close()
        return
    app.media_clock.audio_t0_ns = app.media_clock.audio_t0_ns or app.clock.now_ns()
    try:
        for k, c in enumerate(mic):
            if app.stop_event.is_set() or app.video_done.is_set():
                break
            app.audio_edge.put(AudioChunk(t_ns=app.clock.now_ns(), trace_id=f"a{k}",
                                          media_t_s=k * AUDIO_CHUNK / 16000.0, pcm=c,
                                          index=k))
    finally:
        mic.close()
        app.audio_edge.close()


def drain_speech(app: Copilot, audio_thread: threading.Thread | None) -> None:
    """After the video: let the listener finish the audio (bounded wait), then flush."""
    if audio_thread is None:
        return
    budget = 60.0 + 0.5 * (app.media_t_s or 0.0)
    end = time.monotonic() + budget
    while (audio_thread.is_alive() and time.monotonic() < end and not speech_stuck(app)
           and not app.stop_event.is_set()):
        audio_thread.join(0.2)
    while len(app.audio_edge) and time.monotonic() < end and not speech_stuck(app):
        time.sleep(0.05)
    time.sleep(0.1)
    # a step inside the speech stage (VAD, wake, ASR) that is still busy: give the
    # watchdog time to name it (at most hang_s) before the stop releases it
    steps = [app.inline[n] for n in SPEECH_STEPS if n in app.inline]
    until = time.monotonic() + app.cfg.hang_s + 0.2
    while (any(st.health.busy_since_ns is not None and st.health.state != "hung"
               for st in steps) and time.monotonic() < until):
        time.sleep(0.05)
    if app.listener_stage is not None:
        try:
            for m in app.listener_stage.flush():
                app.on_speech(m)
        except Exception as exc:  # noqa: BLE001
            log.warning("speech flush failed: %s", exc)
