"""Hybrid recogniser: Moonshine + catalogue and the pocketsphinx grammar on the same segment.

Both are fed while the person speaks (pocketsphinx decodes as it goes, Moonshine buffers);
at the end the pocketsphinx result gets its own wake decision (the grammar's wake slot AND
the keyphrase spotter or a strong slot, ``speech.listener.decide_wake``), then:

- ``order="ms_first"``: Moonshine's catalogue command when it accepts one, else
  pocketsphinx's accepted command, else Moonshine's free-form result / rejection;
- ``order="ps_first"``: pocketsphinx's accepted command first, else Moonshine's.

Which order, margin and wake thresholds: chosen on the dev set (benchmarks/bench_speech.py,
``speech.json`` "choice"). The listener runs it without a separate wake backend.
"""

from __future__ import annotations

import time

import numpy as np

from speech.asr_base import ASR, ASR_BACKENDS, Transcript, Utterance
from speech.asr_pocketsphinx import PocketsphinxASR
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
                 denoiser: str = "neural") -> None:
        if order not in ("ms_first", "ps_first"):
            raise SpeechError(f"unknown hybrid order {order!r}: ms_first or ps_first")
        from speech.moonshine import MoonshineASR  # (imported here: loaded on first use)

        self.ms = MoonshineASR(ms_grammar, size=size, **(ms_cfg or {}))
        self.ps = PocketsphinxASR(ps_grammar, denoiser=denoiser)
        self.grammar = ms_grammar
        self.order, self.spotter, self.rescue = order, spotter, rescue
        self.name = f"hybrid-{size}"

    def warm_up(self, audio: np.ndarray) -> None:
        """Settle pocketsphinx's cepstral mean (``PocketsphinxASR.warm_up``)."""
        self.ps.warm_up(audio)

    def start(self, start_s: float = 0.0) -> Utterance:
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

    def finish(self) -> Transcript:
        t0 = time.perf_counter()
        ps = self.ps.finish()
        spotted = self.wake.finish().detected if self.wake is not None else None
        ms = self.ms.finish()
        spec_s = ms.scores.get("speculative_s", 0.0)  # Moonshine decoded in the pause
        tr = self.asr.combine(ps, ms, spotted)
        tr.decode_s = time.perf_counter() - t0 + spec_s
        if spec_s:
            tr.scores["speculative_s"] = spec_s
        return tr
