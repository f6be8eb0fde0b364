"""The listening pipeline: audio chunks -> VAD -> (wake word + ASR per utterance) -> transcripts.

Per utterance found by the VAD, the wake-word spotter and the recogniser are fed the same
chunks while the person speaks, so at the end of speech only the final search remains. An
utterance is a command when the recogniser accepts it *and* the wake word was heard (or
push-to-talk was down). The speaker score, when a voice print is enrolled, is attached. A
command the grammar says is over ends the utterance before the VAD hang-over runs out.
No audio is kept unless ``keep_audio`` (a consent flag) is set.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from speech.asr_base import ASR, Transcript, Utterance
from speech.audio import SAMPLE_RATE, chunks
from speech.errors import SpeechError
from speech.speaker import SpeakerEncoder, VoicePrint
from speech.vad import Segmenter, VadEvent
from speech.wakeword import DEFAULT_RESCUE, KeyphraseWakeWord, WakeSession, WakeWord

log = logging.getLogger(__name__)


@dataclass
class ListenerStats:
    """Counters and timings (seconds) for benchmarks and the slower-than-real-time log."""

    chunks: int = 0
    vad_s: float = 0.0
    asr_s: float = 0.0
    wake_s: float = 0.0
    speaker_s: float = 0.0
    utterances: int = 0
    finals: list[float] = field(default_factory=list)  # end-of-speech event -> transcript
    #: stream time (s) of the end of the chunk at which each utterance was closed
    closed_at_s: list[float] = field(default_factory=list)
    early_ends: int = 0  # utterances closed before the VAD hang-over ran out


def decide_wake(tr: Transcript, spotted: bool | None, policy: str = "both",
                wake_word: str = "copilot", rescue: float | None = None) -> Transcript:
    """Combine the grammar's wake slot (in ``tr``) with a keyphrase spotter's ``spotted``.

    ``spotted`` None: no spotter, the recogniser's decision stands. ``rescue`` (policy
    "both"): a wake slot whose acoustic score per frame (``scores["wake_score"]``) is at
    least this stands in for a spotter that did not fire. See ``Listener``.
    """
    if spotted is None:
        return tr
    slot = bool(tr.scores.get("wake_slot", 1.0))
    body = bool(tr.scores.get("body_complete", float(tr.accepted)))
    if policy == "both":
        strong = (rescue is not None and "wake_score" in tr.scores
                  and tr.scores["wake_score"] >= rescue)
        ok = tr.accepted and (spotted or strong)
    elif policy == "either":
        ok = body and (slot or spotted)
    else:
        ok = body and spotted
    if ok and not slot and " " in tr.text:  # rescued: the competitor word was the wake word
        tr.text = wake_word + " " + tr.text.split(" ", 1)[1]
    if not ok and tr.accepted:
        tr.reason = "wake word not heard"
    elif ok:
        tr.reason = ""
    tr.accepted = ok
    return tr


class Listener:
    """Feeds chunks through VAD, wake word, ASR (+ speaker score); yields ``Transcript``s.

    ``on_speech(bool)`` is called when the VAD opens / closes an utterance (``AudioOut``
    holds its output while the surgeon speaks). Every utterance yields a transcript;
    ``accepted`` says whether it is a command, ``reason`` why not.

    ``wake_policy`` (with a keyphrase ``wake`` backend): "both" = the grammar's wake slot and
    the keyphrase spotter must agree; "either" = one of them suffices (a spotted wake word
    rescues a command whose wake slot lost to a chatter word); "keyphrase" = the spotter
    alone decides. Without ``wake`` the ASR's own decision stands. ``wake_rescue`` (policy
    "both"; default ``speech.wakeword.DEFAULT_RESCUE``, calibrated with the spotter
    threshold): a grammar wake slot that matched the wake word this well (acoustic score per
    frame, ``Transcript.scores["wake_score"]``) is accepted when the spotter missed; None: off.

    Early end of an utterance (a grammar recogniser with ``Utterance.partial``; seconds, each
    None = off): the VAD's hang-over plus silero's own lag cost ~350-450 ms after the last
    word, so the utterance is closed sooner when the partial hypothesis says the command is
    over (``GrammarSpec.completion``):
    - "final" (complete; nothing but a filler word can extend it): after ``early_end_s`` of
      VAD silence, or once the VAD probability is below ``vad_gate`` and the decoder has
      aligned ``final_tail_s`` of audio after the last word;
    - "complete" (a longer command could follow): VAD below ``vad_gate`` and
      ``complete_tail_s`` after the last word (a pause inside a command longer than this
      splits it, as a pause longer than the hang-over always did);
    - otherwise the VAD hang-over decides.
    Values chosen on the dev set (speech/testset.py DEV_VOICES): speech end -> transcript
    p95 ~280 ms at 15 dB instead of ~530 ms with the VAD alone.
    """

    def __init__(self, segmenter: Segmenter, asr: ASR, wake: WakeWord | None = None,
                 speaker: SpeakerEncoder | None = None, voice_print: VoicePrint | None = None,
                 on_speech: Callable[[bool], None] | None = None,
                 keep_audio: bool = False, wake_policy: str = "both",
                 early_end_s: float | None = 0.096, final_tail_s: float | None = 0.15,
                 complete_tail_s: float | None = 0.2,
                 wake_rescue: float | None | str = "default") -> None:
        if wake_policy not in ("both", "either", "keyphrase"):
            raise SpeechError(f"unknown wake policy {wake_policy!r}: both, either or keyphrase")
        self.wake_policy = wake_policy
        self.wake_rescue = DEFAULT_RESCUE if wake_rescue == "default" else wake_rescue
        # decided here: the copilot app later wraps ``wake`` in a proxy (copilot.faults.Guarded)
        self._spotter = isinstance(wake, KeyphraseWakeWord)
        self.seg = segmenter
        self.asr = asr
        self.wake = wake
        self.speaker = speaker if voice_print is not None else None
        self.voice_print = voice_print
        self.on_speech = on_speech
        self.keep_audio = keep_audio
        self.stats = ListenerStats()
        self._utt: Utterance | None = None
        self._wake: WakeSession | None = None
        self._buf: list[np.ndarray] = []
        grammar = getattr(asr, "grammar", None)
        self._completion = getattr(grammar, "completion", None)
        if hasattr(grammar, "prepare"):
            grammar.prepare()  # not at the first utterance
        hang = getattr(segmenter, "hang_chunks", 0)
        self._early_chunks = (max(1, int(round(early_end_s / (512 / SAMPLE_RATE))))
                              if early_end_s is not None and self._completion is not None
                              else 0)
        if self._early_chunks >= hang:
            self._early_chunks = 0  # no earlier than the hang-over itself
        self.final_tail_s = final_tail_s if self._completion is not None else None
        self.complete_tail_s = complete_tail_s if self._completion is not None else None
        self.vad_gate = 0.5  # decoder silence counts only below this VAD probability

    def _feed(self, audio: np.ndarray) -> None:
        t0 = time.perf_counter()
        if self._wake is not None:
            self._wake.feed(audio)
        t1 = time.perf_counter()
        assert self._utt is not None
        self._utt.feed(audio)
        t2 = time.perf_counter()
        self.stats.wake_s += t1 - t0
        self.stats.asr_s += t2 - t1
        if self.speaker is not None or self.keep_audio:
            self._buf.append(audio)

    def _handle(self, ev: VadEvent) -> Transcript | None:
        if ev.kind == "start":
            self._utt = self.asr.start(ev.t_s)
            self._wake = self.wake.start(ev.t_s) if self.wake is not None else None
            self._buf = []
            if self.on_speech:
                self.on_speech(True)
            assert ev.audio is not None
            self._feed(ev.audio)
            return None
        if ev.kind == "speech" and self._utt is not None:
            assert ev.audio is not None
            self._feed(ev.audio)
            return None
        if ev.kind == "end" and self._utt is not None:
            t0 = time.perf_counter()
            tr = self._utt.finish()
            t1 = time.perf_counter()
            woke = self._wake.finish().detected if self._wake is not None else True
            t2 = time.perf_counter()
            self.stats.asr_s += t1 - t0
            self.stats.wake_s += t2 - t1
            tr.wake = woke
            decide_wake(tr, woke if self.wake is not None else None, self.wake_policy,
                        getattr(self.wake, "phrase", "copilot"),
                        self.wake_rescue if self._spotter else None)
            if self.speaker is not None and self.voice_print is not None and tr.accepted:
                audio = np.concatenate(self._buf) if self._buf else np.zeros(0, np.float32)
                try:
                    tr.speaker_score = self.speaker.score(self.voice_print, audio)
                except Exception as exc:  # too short etc.: no score, the gate will ask
                    log.info("no speaker score: %s", exc)
                self.stats.speaker_s += time.perf_counter() - t2
            self.stats.finals.append(time.perf_counter() - t0)
            self.stats.closed_at_s.append(self.stats.chunks * 512 / SAMPLE_RATE)
            self.stats.utterances += 1
            self._utt = None
            self._wake = None
            if not self.keep_audio:
                self._buf = []
            if self.on_speech:
                self.on_speech(False)
            return tr
        return None

    def push(self, chunk: np.ndarray) -> list[Transcript]:
        """Process one 512-sample chunk; return transcripts of utterances that ended."""
        t0 = time.perf_counter()
        events = self.seg.push(chunk)
        self.stats.vad_s += time.perf_counter() - t0
        self.stats.chunks += 1
        out = []
        for ev in events:
            tr = self._handle(ev)
            if tr is not None:
                out.append(tr)
        if ((self._early_chunks or self.final_tail_s is not None
             or self.complete_tail_s is not None) and self._utt is not None
                and self._ends_early()):
            self.stats.early_ends += 1
            for ev in self.seg.end_now():
                tr = self._handle(ev)
                if tr is not None:
                    out.append(tr)
        return out

    def _ends_early(self) -> bool:
        """The partial hypothesis says the command is over and the audio after it is quiet
        (see the class docstring)."""
        vad_quiet = bool(self._early_chunks) and self.seg.silent_chunks >= self._early_chunks
        # the decoder's trailing silence counts only once the VAD no longer hears speech
        vad_low = bool(self.seg.probs) and self.seg.probs[-1] < self.vad_gate
        if not vad_quiet and not vad_low:
            return False
        assert self._utt is not None and self._completion is not None
        if getattr(self._utt, "partial_needs_quiet", False) and not vad_quiet:
            return False  # its partial result is a whole decode (Moonshine): pauses only
        t0 = time.perf_counter()
        part = self._utt.partial()
        self.stats.asr_s += time.perf_counter() - t0
        if not part or not part[0]:
            return False
        text, tail = part
        state = self._completion(text)
        if state == "final":
            return vad_quiet or (self.final_tail_s is not None and tail >= self.final_tail_s)
        if not vad_low:
            return False
        if state == "complete":
            return self.complete_tail_s is not None and tail >= self.complete_tail_s
        return False

    def flush(self) -> list[Transcript]:
        """End of stream: close an open utterance."""
        out = []
        for ev in self.seg.flush():
            tr = self._handle(ev)
            if tr is not None:
                out.append(tr)
        return out

    def run(self, source: Iterable[np.ndarray]) -> Iterator[Transcript]:
        """Consume a chunk source; yield transcripts as utterances end."""
        for c in source:
            yield from self.push(c)
        yield from self.flush()

    def process(self, audio: np.ndarray) -> list[Transcript]:
        """Whole 16 kHz signal in, all transcripts out (offline)."""
        return list(self.run(chunks(audio)))

    @property
    def real_time_factor(self) -> float:
        """Processing seconds per audio second so far."""
        audio_s = self.stats.chunks * 512 / SAMPLE_RATE
        busy = self.stats.vad_s + self.stats.asr_s + self.stats.wake_s + self.stats.speaker_s
        return busy / audio_s if audio_s else 0.0
