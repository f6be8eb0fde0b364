"""The web UI's microphone side (a mixin of ``copilot.ui.UIController``): checked uploads,
push-to-talk clips, the hands-free stream with the wake word, voice enrolment. Audio is
16 kHz mono float32; it is stored (``workdir/recordings``) only with consent."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from copilot.errors import CopilotError
from copilot.ui_state import Heard

log = logging.getLogger(__name__)

#: Audio files the page may upload (by extension), and the limits checked before decoding.
AUDIO_TYPES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".webm", ".m4a", ".mp4", ".opus")


class MicMixin:
    """Microphone methods; the controller provides cfg, state, copilot, consent, workdir,
    voice_print and the listener / hands-free fields."""

    cfg: Any
    state: Any
    copilot: Any
    consent: bool
    workdir: Path
    voice_print: Path | None
    hf_seconds: float
    _stop: threading.Event
    _listeners: dict[str, Any]
    _listen_lock: threading.Lock
    _warm: set[str]
    _hf_q: queue.Queue[Any]
    _hf_thread: threading.Thread | None
    _hf_heard: list[Heard]

    # -- audio in --------------------------------------------------------------------------------
    def check_upload(self, path: str | Path) -> Path:
        """The uploaded file if its type and size are acceptable (CopilotError otherwise)."""
        p = Path(path)
        if not p.is_file():
            raise CopilotError("no audio received")
        if p.suffix.lower() not in AUDIO_TYPES:
            raise CopilotError(f"{p.suffix or 'no extension'}: not an audio type the copilot "
                               f"takes ({', '.join(AUDIO_TYPES)})")
        size = p.stat().st_size
        if size > self.cfg.max_upload_bytes:
            raise CopilotError(f"audio file too large ({size / 1e6:.1f} MB > "
                               f"{self.cfg.max_upload_bytes / 1e6:.0f} MB)")
        if size < 64:
            raise CopilotError("audio file is empty")
        return p

    def take_audio(self, path: str | Path, kind: str = "utterance") -> np.ndarray:
        """Check and decode an uploaded / recorded clip (16 kHz mono float32); store it under
        ``workdir/recordings`` only with consent, and delete the upload file either way."""
        from speech.audio import check_audio, load_audio
        from speech.errors import SpeechError

        p = self.check_upload(path)
        try:
            try:
                x = load_audio(p)
            except SpeechError as exc:
                raise CopilotError(f"audio not usable: {str(exc).replace(f'{p}: ', '')}"
                                   ) from None
            if len(x) / 16000.0 > self.cfg.max_clip_s:
                raise CopilotError(f"clip too long ({len(x) / 16000.0:.0f} s > "
                                   f"{self.cfg.max_clip_s:.0f} s)")
            problem = check_audio(x)
            if problem:
                raise CopilotError(f"no speech in the clip: {problem}")
            if self.consent:
                from speech.audio import write_wav

                dest = self.workdir / "recordings" / f"{kind}-{time.strftime('%H%M%S')}-" \
                    f"{os.urandom(2).hex()}.wav"
                write_wav(dest, x)
        finally:
            self.discard(p)
        return x

    @staticmethod
    def discard(p: Path) -> None:
        """Delete an uploaded file (and its folder when gradio made one just for it)."""
        try:
            p.unlink(missing_ok=True)
            parent = p.parent
            if parent.name and not any(parent.iterdir()):
                parent.rmdir()
        except OSError as exc:
            log.warning("could not delete %s: %s", p, exc)

    def listener(self, mode: str) -> Any:
        """The listener of ``mode``: ptt (no wake word needed) or handsfree (wake word)."""
        from copilot.cli_speech import build_listener

        with self._listen_lock:
            if mode not in self._listeners:
                wake = "none" if mode == "ptt" else "pocketsphinx"
                self._listeners[mode] = build_listener(
                    self.cfg.asr, wake=wake, voice_print=self.voice_print)
            return self._listeners[mode]

    def _submit(self, trs: list[Any], origin: str) -> list[Heard]:
        heard = []
        for tr in trs:
            h = Heard(tr.text, bool(tr.accepted), str(tr.reason or ""), time.time(), origin,
                      tr.speaker_score)
            heard.append(h)
            app = self.copilot
            if tr.accepted and app is not None:
                with self.state.origin(origin):
                    app.submit_transcript(tr)  # Transcript msg -> state via on_message
            else:
                self.state.note_heard(h)
        return heard

    def push_to_talk(self, path: str | Path) -> list[Heard]:
        """Transcribe one recorded clip (push-to-talk) and hand its commands to the copilot."""
        x = self.take_audio(path, "ptt")
        lis = self.listener("ptt")
        with self._listen_lock:
            if "ptt" not in self._warm and hasattr(lis.asr, "warm_up"):
                lis.asr.warm_up(x)  # adapt the cepstral mean to this microphone once
                self._warm.add("ptt")
            trs = lis.process(x)
        if not trs:
            self.state.note_heard(Heard("", False, "no speech found", time.time(), "mic"))
        return self._submit(trs, "mic")

    def hands_free(self, rate: int, data: np.ndarray) -> None:
        """One streamed microphone chunk (hands-free). Returns at once: a worker thread runs
        VAD + wake word + ASR, so the page's stream is never held up by recognition."""
        from speech.audio import resample, to_mono

        x = to_mono(np.asarray(data))
        if x.dtype.kind in "iu" or np.abs(x).max(initial=0) > 1.5:
            x = x / 32768.0
        x = resample(x.astype(np.float32), int(rate))
        self.hf_seconds += len(x) / 16000.0
        self._hf_start()
        try:
            self._hf_q.put_nowait(x)
        except queue.Full:
            log.warning("hands-free audio backlog full: %.1f s dropped", len(x) / 16000.0)

    def _hf_start(self) -> None:
        with self._listen_lock:
            if self._hf_thread is None or not self._hf_thread.is_alive():
                self._hf_thread = threading.Thread(target=self._hf_loop, name="ui-handsfree",
                                                   daemon=True)
                self._hf_thread.start()

    def prepare_hands_free(self) -> None:
        """Load the hands-free listener and start its worker (before the first chunk)."""
        self._hf_start()

    def _hf_loop(self) -> None:
        from speech.audio import CHUNK

        rest = np.zeros(0, np.float32)
        lis = None
        while not self._stop.is_set():
            try:
                x = self._hf_q.get(timeout=0.5)
            except queue.Empty:
                if lis is None:
                    lis = self.listener("handsfree")
                continue
            try:
                lis = self.listener("handsfree")  # rebuilt after an enrolment
                if isinstance(x, threading.Event):  # end of the stream: close the utterance
                    trs = lis.flush()
                    rest = np.zeros(0, np.float32)
                    self._hf_heard += self._submit(trs, "mic")
                    x.set()
                    continue
                buf = np.concatenate([rest, x])
                n = len(buf) // CHUNK * CHUNK
                trs = []
                for i in range(0, n, CHUNK):
                    trs += lis.push(buf[i:i + CHUNK])
                rest = buf[n:]
                # every utterance is shown; only the addressed ones reach the copilot
                self._hf_heard += self._submit(trs, "mic")
            except Exception as exc:  # noqa: BLE001 - keep listening
                log.warning("hands-free listening failed: %s", exc)

    def hands_free_stop(self, timeout_s: float = 30.0) -> list[Heard]:
        """The stream ended: recognise what is queued, close an open utterance; returns what
        was heard since the previous stop."""
        done = threading.Event()
        self._hf_start()
        self._hf_q.put(done)
        done.wait(timeout_s)
        heard, self._hf_heard = self._hf_heard, []
        return heard

    # -- voice enrolment -------------------------------------------------------------------------
    def enrol(self, path: str | Path, name: str) -> str:
        """Make a voice print from a recording; the listeners score speakers against it."""
        from speech.speaker import create_speaker

        name = "".join(c for c in str(name).strip() if c.isalnum() or c in "-_")[:40]
        if not name:
            raise CopilotError("give the speaker's name (letters, digits, - or _)")
        x = self.take_audio(path, "enrol")
        if len(x) < 8000:
            raise CopilotError("recording too short for enrolment (need >= 0.5 s)")
        vp = create_speaker("resemblyzer").enroll([x], name)
        dest = vp.save(self.workdir / "voiceprints" / f"{name}.npz")
        self.voice_print = dest
        with self._listen_lock:
            self._listeners.clear()  # rebuilt with the voice print on next use
            self._warm.clear()
        return f"enrolled {name}: {vp.seconds:.1f} s -> voice print {dest.name} (no audio kept)"
