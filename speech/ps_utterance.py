"""One utterance of the pocketsphinx recogniser, decoded as the audio comes in.

The front end is chosen from the first ``SNR_WINDOW_S`` seconds (``speech.snr_switch``); a
clean start also runs the denoised decoder as a shadow and switches to it when noise rises.
``finish`` turns the hypothesis into a ``Transcript`` (wake slot, completeness, N-best
agreement as confidence).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np

from speech.asr_base import Transcript, Utterance
from speech.audio import SAMPLE_RATE, float_to_pcm16
from speech.denoise import Denoiser
from speech.grammar import normalise
from speech.pocketsphinx_decoder import _first_word_score
from speech.snr_switch import (
    NOISE_SHARE_MIN_DB,
    SNR_SWITCH_DB,
    SNR_WINDOW_S,
    _NoiseRise,
    estimate_snr_db,
)

if TYPE_CHECKING:
    from speech.asr_pocketsphinx import PocketsphinxASR


class _PsUtterance(Utterance):
    def __init__(self, asr: PocketsphinxASR, start_s: float) -> None:
        self.asr = asr
        self.start_s = start_s
        self.n = 0
        self.t_busy = 0.0
        self._den: Denoiser | None = None
        self._pcm: list[bytes] = []  # kept for the second pass (freed at finish)
        self._pending: list[np.ndarray] | None = None  # audio before the front end is chosen
        self.snr_db: float | None = None
        # shadow front end ("auto", clean start): the denoised decoder runs alongside
        self._shadow: tuple[object, Denoiser] | None = None
        self._rise: _NoiseRise | None = None
        self._start_share_db = -math.inf
        asr._lock.acquire()  # one utterance at a time per decoder
        front = asr._force or {"off": "raw", "on": "denoised"}.get(asr.denoise)
        if front is None:
            self._pending = []
            self.dec = asr._dec
        else:
            self._choose(front)

    def _start_dn(self) -> tuple[object, Denoiser]:
        """Start the denoised decoder and a fresh suppressor."""
        a = self.asr
        dec = a._dec_dn
        if a._dn_cold:
            # its first utterance: start from the live mean the raw decoder has adapted
            # to this room, not the model's prior (a cold start lost the wake word of the
            # first loud-room command: fresh 60 s feeds 39 -> 41 of 48 commands)
            a._dn_cold = False
            try:
                dec.set_cmn(a._dec.get_cmn())
            except Exception:  # noqa: BLE001 - older pocketsphinx: keep its own prior
                pass
        dec.start_utt()
        return dec, a._make_denoiser()

    def _choose(self, front: str, shadow: bool = False) -> None:
        """Start the decoder of ``front`` ("raw" / "denoised"); ``shadow``: with "raw", also
        the denoised one (``PocketsphinxASR`` "auto" on a clean start)."""
        t0 = time.perf_counter()
        self.front = front
        if front == "denoised":
            self.dec, self._den = self._start_dn()
        else:
            self.dec = self.asr._dec
            self.dec.start_utt()
            if shadow:
                self._shadow = self._start_dn()
                self._rise = _NoiseRise(self._shadow[1].n)
        self.t_busy += time.perf_counter() - t0

    def _decide(self) -> None:
        """Pick the front end from the buffered start of the utterance; decode the buffer."""
        assert self._pending is not None
        buf = np.concatenate(self._pending) if self._pending else np.zeros(0, np.float32)
        self._pending = None
        t0 = time.perf_counter()
        self.snr_db = estimate_snr_db(buf)
        self.t_busy += time.perf_counter() - t0
        noisy = self.snr_db < SNR_SWITCH_DB
        self._choose("denoised" if noisy else "raw",
                     shadow=not noisy and self.asr.noise_rise_db is not None)
        k = int(SNR_WINDOW_S * SAMPLE_RATE)
        if len(buf[:k]):
            self._decode(buf[:k])
        if self._rise is not None:  # the start's own share is the reference
            self._start_share_db = self._rise.current_db()
            self._rise.max_db = -math.inf
        if len(buf[k:]):
            self._decode(buf[k:])

    def feed(self, chunk: np.ndarray) -> None:
        x = np.asarray(chunk, np.float32)
        self.n += len(x)
        if self._pending is not None:
            self._pending.append(x)
            if self.n >= SNR_WINDOW_S * SAMPLE_RATE:
                self._decide()
            return
        self._decode(x)

    def _decode(self, x: np.ndarray) -> None:
        t0 = time.perf_counter()
        raw = x
        if self._den is not None:
            x = self._den.process(x)
        pcm = float_to_pcm16(x)
        self.dec.process_raw(pcm, False, False)
        if self.asr._wide is not None:
            self._pcm.append(pcm)
        if self._shadow is not None:
            dec, den = self._shadow
            y = den.process(raw)
            dec.process_raw(float_to_pcm16(y), False, False)
            self._rise.add(raw, y)
        self.t_busy += time.perf_counter() - t0

    def partial(self) -> tuple[str, float] | None:
        if self._pending is not None:  # front end not chosen yet: nothing decoded
            return "", 0.0
        t0 = time.perf_counter()
        dec = self.dec
        hyp = dec.hyp()
        text = normalise(hyp.hypstr) if hyp is not None else ""
        last = -1
        if text:
            for sg in dec.seg():  # the words' frames (100 per second); fillers excluded
                w = sg.word
                if w and w[0] not in "<[(+" and w != "</s>":
                    last = max(last, int(sg.end_frame))
        frames = self.n / SAMPLE_RATE * 100.0
        self.t_busy += time.perf_counter() - t0
        return text, max(0.0, (frames - last - 1) / 100.0) if last >= 0 else 0.0

    @staticmethod
    def _end_utt(dec: object, den: Denoiser | None, pcm: list[bytes]) -> None:
        """Flush ``den``'s delay into ``dec`` and end its utterance."""
        if den is not None:
            tail = float_to_pcm16(den.process(np.zeros(den.n, np.float32)))
            dec.process_raw(tail, False, False)
            pcm.append(tail)
        dec.end_utt()

    def _result(self, dec: object, pcm: list[bytes]) -> dict:
        """The ended utterance's hypothesis of ``dec`` and what goes with it."""
        a = self.asr
        hyp = dec.hyp()
        nframes = int(dec.n_frames())
        second = False
        if hyp is None or not hyp.hypstr.strip():
            hyp = a._second_pass(pcm, dec)
            second = hyp is not None
        text = normalise(hyp.hypstr) if hyp is not None and hyp.hypstr.strip() else ""
        first_score = _first_word_score(a._wide if second else dec) if text else None
        nbest: list[str] = []
        if text and not second and a.nbest_n > 1:
            try:
                for i, nb in enumerate(dec.nbest()):
                    if i >= 4 * a.nbest_n or len(nbest) >= a.nbest_n:
                        break
                    h = nb.hyp()
                    t = normalise(h.hypstr) if h is not None else ""
                    if t and t not in nbest:
                        nbest.append(t)
            except Exception:  # no lattice for very short audio
                pass
        woke = text.startswith(a._wake_prefixes) if text else False
        return {"text": text, "frames": nframes, "second": second, "first": first_score,
                "nbest": nbest, "woke": woke,
                "complete": bool(text) and woke and a.grammar.matches(text)}

    def finish(self) -> Transcript:
        t0 = time.perf_counter()
        a = self.asr
        switched = False
        try:
            if self._pending is not None:  # shorter than the SNR window
                self._decide()
            self._end_utt(self.dec, self._den, self._pcm)
            r = self._result(self.dec, self._pcm)
            if self._shadow is not None:
                dec, den = self._shadow
                self._end_utt(dec, den, [])
                # noise rose after the start: the suppressor now removes a larger share of
                # the input. (Also taking the denoised result whenever the raw one is no
                # command let chatter in: sample.wav, "a highlight ..." -> "copilot ...".)
                # Its hypothesis is read only then (end-of-speech work).
                if self._rise.max_db >= max(self._start_share_db + a.noise_rise_db,
                                            NOISE_SHARE_MIN_DB):
                    d = self._result(dec, [])
                    if r["woke"] and d["woke"]:
                        # the wake word was spoken at the clean start: its score from there
                        d["first"] = r["first"]
                    r, self.front = d, "denoised"
                    switched = True
            self._pcm = []
        finally:
            a._lock.release()
        end_s = self.start_s + self.n / SAMPLE_RATE
        scores = {"frames": float(r["frames"]), "second_pass": float(r["second"]),
                  "denoised": float(self.front == "denoised")}
        if self.snr_db is not None:
            scores["snr_db"] = self.snr_db
        if self._rise is not None:
            scores["noise_rise_db"] = self._rise.max_db - self._start_share_db
            scores["front_switched"] = float(switched)
        text = r["text"]
        if not text:
            return Transcript("", 0.0, [], self.start_s, end_s, False, "no grammar path",
                              a.name, None, scores, time.perf_counter() - t0 + self.t_busy)
        woke, complete, nbest = r["woke"], r["complete"], r["nbest"]
        # The command body alone (after a competitor word in the wake slot), so that a wake
        # word spotted by the keyphrase search can still rescue it (Listener wake policy).
        body = text.split(" ", 1)[1] if (not woke and " " in text) else ""
        body_ok = complete or (bool(body) and a.grammar.matches(body))
        scores["wake_slot"] = float(woke)
        scores["body_complete"] = float(body_ok)
        if woke and r["first"] is not None and a._wake_prefixes != ("",):
            scores["wake_score"] = r["first"]
        # Confidence: share of N-best entries (the lattice's alternatives) that agree with
        # the best hypothesis, times completeness; a crowded lattice means an unsure decode.
        if text not in nbest:
            nbest.insert(0, text)
        agree = sum(1 for t in nbest if t == text) / len(nbest)
        conf = (0.5 + 0.5 * agree) if complete else 0.1
        scores["nbest_agreement"] = agree
        reason = "" if complete else ("wake word not heard" if not woke
                                      else "incomplete grammar path")
        nb = [(t, conf if t == text else conf * 0.5 ** (k + 1)) for k, t in enumerate(nbest)]
        return Transcript(text, float(conf), nb, self.start_s, end_s, complete, reason, a.name,
                          None, scores, time.perf_counter() - t0 + self.t_busy)
