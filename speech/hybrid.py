"""Hybrid recogniser: Moonshine + catalogue and the pocketsphinx grammar on the same segment.

Both are fed while the person speaks (pocketsphinx decodes as it goes, Moonshine buffers);
at the end the pocketsphinx result gets its own wake decision (the grammar's wake slot AND
the keyphrase spotter or a strong slot, ``speech.listener.decide_wake``), then:

- ``order="ms_first"``: Moonshine's catalogue command when it accepts one, else
  pocketsphinx's accepted command, else Moonshine's free-form result / rejection;
- ``order="ps_first"``: pocketsphinx's accepted command first, else Moonshine's.

Which order, margin and wake thresholds: chosen on the dev set (benchmarks/bench_speech.py,
``speech.json`` "choice"). The listener runs it without a separate wake backend.

Early end and speculation (``speculate=True``): at every pause the listener asks about (VAD
probability low), Moonshine decodes the audio so far in a background thread. The partial
hypothesis is pocketsphinx's (cheap: it decodes as it goes) when the grammar hears a whole
command, else the newest finished speculative decode's catalogue command, so a command
ends the utterance as early as with either recogniser alone. ``finish`` reuses that decode
when at most ``REUSE_S`` of audio came after it (waiting for it if it is still running),
so the neural decode overlaps the end-of-speech wait instead of following it.
``speculate=False``: Moonshine's own partial (a decode in the pause, in the listener's
thread) as before.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from speech.asr_base import ASR, ASR_BACKENDS, Transcript, Utterance
from speech.asr_pocketsphinx import PocketsphinxASR
from speech.audio import SAMPLE_RATE
from speech.errors import SpeechError
from speech.grammar import GrammarSpec


@ASR_BACKENDS.register("hybrid")
class HybridASR(ASR):
    """Moonshine (``size``) with the catalogue, and pocketsphinx with its spotter.

    ``ps_grammar``: the pocketsphinx grammar (wake slot with competitor words);
    ``ms_grammar``: the catalogue for Moonshine (no competitors); ``ms_cfg``: MoonshineASR
    keywords (thresholds); ``spotter``: a ``speech.wakeword.KeyphraseWakeWord`` or None
    (then pocketsphinx's own wake slot decides).
    """

    name = "hybrid"

    def __init__(self, ps_grammar: GrammarSpec, ms_grammar: GrammarSpec, size: str = "tiny",
                 order: str = "ms_first", spotter: object | None = None,
                 rescue: float | None = None, ms_cfg: dict | None = None,
                 denoiser: str = "neural", speculate: bool = True) -> None:
        if order not in ("ms_first", "ps_first"):
            raise SpeechError(f"unknown hybrid order {order!r}: ms_first or ps_first")
        from speech.moonshine import MoonshineASR  # (imported here: loaded on first use)

        self.ms = MoonshineASR(ms_grammar, size=size, **(ms_cfg or {}))
        self.ps = PocketsphinxASR(ps_grammar, denoiser=denoiser)
        self.grammar = ms_grammar
        self.order, self.spotter, self.rescue = order, spotter, rescue
        self.name = f"hybrid-{size}"
        self.speculate = speculate
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def pool(self) -> ThreadPoolExecutor:
        """The one background thread that runs speculative Moonshine decodes."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="moonshine-spec")
            return self._pool

    def warm_up(self, audio: np.ndarray) -> None:
        """Settle pocketsphinx's cepstral mean (``PocketsphinxASR.warm_up``)."""
        self.ps.warm_up(audio)

    def start(self, start_s: float = 0.0) -> Utterance:
        if self.speculate:
            return _SpeculativeUtterance(self, start_s)
        return _HybridUtterance(self, start_s)

    def combine(self, ps: Transcript, ms: Transcript, spotted: bool | None) -> Transcript:
        """The hybrid decision of the two transcripts (``spotted``: the spotter's verdict)."""
        from speech.listener import decide_wake

        if spotted is not None:
            ps = decide_wake(ps, spotted, "both", rescue=self.rescue)
        ms_cmd = ms.accepted and bool(ms.scores.get("in_catalogue"))
        if self.order == "ms_first":
            pick = ms if ms_cmd else (ps if ps.accepted else ms)
        else:
            pick = ps if ps.accepted else ms
        pick.scores = dict(pick.scores) | {"hybrid_from_ps": float(pick is ps),
                                           "ps_accepted": float(ps.accepted),
                                           "ms_accepted": float(ms.accepted)}
        pick.backend = self.name
        return pick


class _HybridUtterance(Utterance):
    #: its partial result is Moonshine's speculative decode (asked in pauses only)
    partial_needs_quiet = True

    def __init__(self, asr: HybridASR, start_s: float) -> None:
        self.asr = asr
        self.ps = asr.ps.start(start_s)
        self.ms = asr.ms.start(start_s)
        self.wake = asr.spotter.start(start_s) if asr.spotter is not None else None

    def feed(self, chunk: np.ndarray) -> None:
        self.ps.feed(chunk)
        self.ms.feed(chunk)
        if self.wake is not None:
            self.wake.feed(chunk)

    def partial(self) -> tuple[str, float] | None:
        return self.ms.partial()

    def _moonshine(self) -> Transcript:
        """Moonshine's transcript of the utterance (its own speculative decode if any)."""
        return self.ms.finish()

    def finish(self) -> Transcript:
        t0 = time.perf_counter()
        ps = self.ps.finish()
        spotted = self.wake.finish().detected if self.wake is not None else None
        ms = self._moonshine()
        spec_s = ms.scores.get("speculative_s", 0.0)  # Moonshine decoded in the pause
        tr = self.asr.combine(ps, ms, spotted)
        tr.decode_s = time.perf_counter() - t0 + spec_s
        if spec_s:
            tr.scores["speculative_s"] = spec_s
        return tr


class _SpeculativeUtterance(_HybridUtterance):
    """Pocketsphinx's partial hypothesis for the early end; Moonshine decoding in a
    background thread at each pause (see the module doc)."""

    partial_needs_quiet = False
    #: audio after a speculative decode that ``finish`` still accepts as its tail (s)
    REUSE_S = 0.4
    #: a new speculative decode only after this much more audio (s)
    EVERY_S = 0.25

    def __init__(self, asr: HybridASR, start_s: float) -> None:
        super().__init__(asr, start_s)
        self._spec: tuple[int, Future] | None = None  # (samples heard then, the decode)

    def partial(self) -> tuple[str, float] | None:
        """Pocketsphinx's hypothesis when the grammar hears a whole command, else the newest
        finished speculative decode when it found a catalogue command (its tail: the audio
        after its snapshot, s); a new speculative decode once ``EVERY_S`` more audio came."""
        text, tail = self.ps.partial() or ("", 0.0)
        out = (text, tail)
        heard = self.ms.n  # samples fed so far (Moonshine's utterance counts them)
        spec = self._spec
        if (not text or self.asr.grammar.completion(text) not in ("final", "complete")) and (
                spec is not None and spec[1].done()):
            tr = spec[1].result()
            if tr.accepted and tr.scores.get("in_catalogue"):
                out = (tr.text, (heard - spec[0]) / SAMPLE_RATE)
        if spec is None or (spec[1].done() and heard - spec[0] >= self.EVERY_S * SAMPLE_RATE):
            audio = np.array(self.ms._audio(), copy=True)  # a snapshot: feeding goes on
            self._spec = (heard, self.asr.pool().submit(self.asr.ms.decode, audio,
                                                        self.ms.start_s))
        return out

    def _moonshine(self) -> Transcript:
        """The speculative decode when at most ``REUSE_S`` of audio came after it (waiting
        for it if it is still running), else a decode of the whole utterance."""
        spec, self._spec = self._spec, None
        if spec is None or self.ms.n - spec[0] > self.REUSE_S * SAMPLE_RATE:
            return self.ms.finish()
        t1 = time.perf_counter()
        ms = spec[1].result()
        ms.scores["speculative"] = 1.0  # decoded in the background, during the pause
        ms.scores["speculative_wait_s"] = time.perf_counter() - t1
        ms.end_s = self.ms.start_s + self.ms.n / SAMPLE_RATE
        self.ms.parts = []
        return ms
