"""Moonshine speech recognition (tiny-en / base-en) through ONNX Runtime, catalogue-aware.

Weights come from installed wheels, never from a hub: tiny-en from ``moonshine-voice``
(``moonshine_voice/assets/tiny-en``), base-en from ``moonshine-cpp``
(``moonshine_cpp/models/base-en``); both MIT (pip extra ``moonshine``). The packages' own C
library is not used (it leaked ~58 MB per call): the ``.ort`` encoder and merged decoder are
run with ``onnxruntime`` here and ``tokenizer.bin`` is read here. ``model_dir`` may point at
any folder with the three files instead.

Decoding (per VAD segment, at its end): the encoder once, then
- a free greedy decode (what was said, as the model hears it): log-probability ``Lf``;
- a beam search constrained to the catalogue's sentences behind the wake word
  (``speech.constrain.SentenceAutomaton``): best sentence and its log-probability ``Lc``.
The rejection score is ``margin = Lc - Lf`` (nats; 0 when the free decode is a catalogue
sentence, very negative for chatter forced into a command). A command is accepted when the
margin is at least ``min_margin``; otherwise, when the free transcript starts with the wake
word (``wake_similarity`` >= ``min_wake``) and ``free_form``, the free text goes on (wake word
spelt canonically) with its own confidence, for the reasoner's free-form parser.

The model itself (weights, tokenizer, ONNX Runtime sessions, decoding) is
``speech.moonshine_model``; its names are re-exported here.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from speech.asr_base import ASR, ASR_BACKENDS, Transcript, Utterance
from speech.audio import SAMPLE_RATE
from speech.constrain import SentenceAutomaton, strip_wake, wake_similarity
from speech.errors import SpeechError
from speech.grammar import GrammarSpec, normalise
from speech.moonshine_model import (
    FILES,
    PUNCT,
    TOKENS_PER_S,
    WHEEL_MODELS,
    MoonshineModel,
    model_dir,
    read_tokenizer,
)
from speech.moonshine_model import _Allowed as _Allowed
from speech.moonshine_model import _piece as _piece

__all__ = ["DEFAULT_MIN_MARGIN", "DEFAULT_MIN_WAKE", "FILES", "PUNCT", "TOKENS_PER_S",
           "WHEEL_MODELS", "MoonshineASR", "MoonshineModel", "model_dir", "read_tokenizer"]

#: Defaults chosen on the natural-voice dev set (benchmarks/bench_speech.py, speech.json
#: "choice"; speech.defaults): dev chatter forced into a catalogue sentence scored <= -65
#: nats or found none, commands mostly above -30.
DEFAULT_MIN_MARGIN = -30.0
DEFAULT_MIN_WAKE = 0.75


@ASR_BACKENDS.register("moonshine")
class MoonshineASR(ASR):
    """Moonshine on VAD segments, the catalogue's sentences as the domain (see module doc).

    ``size``: "tiny" (default) or "base"; ``grammar``: the catalogue sentences (None: free
    transcripts only, accepted when they start with the wake word); ``beam``: width of the
    constrained search; ``min_margin`` (nats) / ``min_wake`` (0-1): acceptance thresholds;
    ``wake_rule``: "constraint" (the catalogue search's forced wake word and the margin
    decide) or "neural" (the free transcript must also start with the wake word).
    """

    name = "moonshine"

    def __init__(self, grammar: GrammarSpec | None = None, size: str = "tiny",
                 model_dir: str | Path | None = None, beam: int = 3,
                 min_margin: float = DEFAULT_MIN_MARGIN, min_wake: float = DEFAULT_MIN_WAKE,
                 free_form: bool = True, threads: int = 2, wake_rule: str = "constraint"
                 ) -> None:
        if wake_rule not in ("constraint", "neural"):
            raise SpeechError(f"unknown Moonshine wake rule {wake_rule!r}: constraint or neural")
        self.wake_rule = wake_rule
        self.model = MoonshineModel(size, model_dir, threads)
        self.name = f"moonshine-{size}"
        self.grammar = grammar
        self.wake = normalise(grammar.wake_words[0]) if grammar else "copilot"
        self.wake_optional = bool(grammar and grammar.wake_optional)
        self.auto = (SentenceAutomaton([tuple(s) for s in grammar.sentences()],
                                       grammar.wake_words, grammar.wake_optional)
                     if grammar is not None else None)
        self.beam, self.min_margin, self.min_wake = beam, min_margin, min_wake
        self.free_form = free_form

    def start(self, start_s: float = 0.0) -> Utterance:
        return _MoonshineUtterance(self, start_s)

    def decode(self, audio: np.ndarray, start_s: float = 0.0) -> Transcript:
        """Decode one segment of 16 kHz float32 audio."""
        t0 = time.perf_counter()
        end_s = start_s + len(audio) / SAMPLE_RATE
        if len(audio) < SAMPLE_RATE // 10:
            return Transcript("", 0.0, [], start_s, end_s, False, "too short", self.name)
        m = self.model
        max_len = max(8, int(len(audio) / SAMPLE_RATE * TOKENS_PER_S))
        with m._lock:
            enc = m.encode(audio)
            ids, lf, (words, lc, nc) = m.search(enc, self.auto, max_len, self.beam,
                                                max_constrained=min(2 * max_len, 48))
        free = normalise(m.decode_text(ids))
        sim = wake_similarity(free, self.wake)
        margin = lc - lf if words is not None else -math.inf
        scores = {"lf": lf, "lc": lc if words is not None else -1e9, "tokens": float(len(ids)),
                  "margin": max(margin, -1e9), "wake_sim": sim}
        cmd = " ".join(words) if words is not None else ""
        in_cat = words is not None and margin >= self.min_margin
        woke = sim >= self.min_wake or self.wake_optional
        scores["in_catalogue"] = float(in_cat)  # a catalogue command passed the margin
        scores["wake_slot"] = float(woke)  # the neural wake path (speech.listener)
        if self.wake_rule == "neural":
            in_cat = in_cat and woke
        nper = max(1, len(ids) + 1)
        nbest = []
        if cmd:
            nbest.append((cmd, math.exp(min(0.0, margin) / max(1, nc))))
        if free:
            nbest.append((free, math.exp(lf / nper)))
        if in_cat:
            text, conf, ok, why = cmd, nbest[0][1], True, ""
        elif self.free_form and (rest := (free if self.wake_optional else strip_wake(
                free, self.wake, self.min_wake))):
            text = rest if self.wake_optional else f"{self.wake} {rest}"
            conf, ok, why = math.exp(lf / nper), True, ""
            scores["free_form"] = 1.0
        else:
            text, conf, ok = free, 0.0, False
            why = "no speech" if not free else ("wake word not heard" if not woke
                                                else "no catalogue command")
        scores["body_complete"] = float(ok)  # for speech.listener.decide_wake
        return Transcript(text, float(conf), nbest, start_s, end_s, ok, why, self.name, None,
                          scores, time.perf_counter() - t0)


class _MoonshineUtterance(Utterance):
    """Collects the segment; decodes at ``finish``, or earlier when the listener asks for a
    partial result in a pause (``partial``): if the person said nothing more, ``finish``
    reuses that decode, so a final command ends the utterance without the VAD hang-over."""

    #: the listener asks ``partial`` only after some VAD silence (each call is a decode)
    partial_needs_quiet = True
    #: audio after a speculative decode that ``finish`` still accepts as its tail (s)
    REUSE_S = 0.4

    def __init__(self, asr: MoonshineASR, start_s: float) -> None:
        self.asr, self.start_s = asr, start_s
        self.parts: list[np.ndarray] = []
        self.n = 0
        self._spec: tuple[int, Transcript] | None = None

    def feed(self, chunk: np.ndarray) -> None:
        x = np.asarray(chunk, np.float32)
        self.parts.append(x)
        self.n += len(x)

    def _audio(self) -> np.ndarray:
        if len(self.parts) > 1:
            self.parts = [np.concatenate(self.parts)]
        return self.parts[0] if self.parts else np.zeros(0, np.float32)

    def partial(self) -> tuple[str, float] | None:
        if self._spec is None or self.n - self._spec[0] > 0.25 * SAMPLE_RATE:
            self._spec = (self.n, self.asr.decode(self._audio(), self.start_s))
        tr = self._spec[1]
        if tr.accepted and tr.scores.get("in_catalogue"):
            return tr.text, 0.0  # a final catalogue command ends at the VAD's early end
        return "", 0.0

    def finish(self) -> Transcript:
        spec, self._spec = self._spec, None
        if spec is not None and self.n - spec[0] <= self.REUSE_S * SAMPLE_RATE:
            tr = spec[1]
            tr.end_s = self.start_s + self.n / SAMPLE_RATE
            tr.scores["speculative"] = 1.0  # decoded during the pause, before the close:
            tr.scores["speculative_s"] = tr.decode_s  # that time still counts for latency
            self.parts = []
            return tr
        audio = self._audio()
        self.parts = []
        return self.asr.decode(audio, self.start_s)


ASR_BACKENDS.register("moonshine-tiny")(lambda **cfg: MoonshineASR(size="tiny", **cfg))
ASR_BACKENDS.register("moonshine-base")(lambda **cfg: MoonshineASR(size="base", **cfg))
