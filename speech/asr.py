"""Speech recognition, one interface, backends selected by name.

- ``pocketsphinx`` (default, offline, no download): the grammar built from the command
  templates, searched as a minimal word automaton (``GrammarSpec.to_fsg``; the JSGF form
  is kept as ``search="jsgf"``), incomplete paths rejected; chatter is rejected by the
  wake-word gate in front of it (``speech.listener``).
- ``faster-whisper``: a CTranslate2 Whisper model directory from config, hotwords / initial
  prompt from the surgical vocabulary, temperature 0; segments consumed inside the call
  (i.e. inside the worker thread that calls it).

Streaming use: ``u = asr.start(); u.feed(chunk) ...; transcript = u.finish()``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speech.audio import SAMPLE_RATE, float_to_pcm16
from speech.denoise import Denoiser
from speech.errors import SpeechError
from speech.grammar import GrammarSpec, normalise
from speech.neural_denoise import denoiser_factory
from speech.registry import Registry, require

log = logging.getLogger(__name__)


@dataclass
class Transcript:
    """A recognition result (times in seconds on the audio's own time line).

    ``confidence`` in [0, 1]; ``accepted`` False means the recogniser rejected the audio as
    out of grammar (``reason`` says why); ``nbest`` holds (text, confidence) alternatives.
    """

    text: str
    confidence: float
    nbest: list[tuple[str, float]] = field(default_factory=list)
    start_s: float = 0.0
    end_s: float = 0.0
    accepted: bool = True
    reason: str = ""
    backend: str = ""
    wake: bool | None = None
    scores: dict[str, float] = field(default_factory=dict)
    decode_s: float = 0.0
    speaker_score: float | None = None

    @property
    def duration_s(self) -> float:
        """Length of the recognised span in seconds."""
        return self.end_s - self.start_s


class Utterance:
    """An utterance being decoded incrementally."""

    def feed(self, chunk: np.ndarray) -> None:  # pragma: no cover - interface
        """Add 16 kHz float32 samples."""
        raise NotImplementedError

    def finish(self) -> Transcript:  # pragma: no cover - interface
        """End the utterance and return the final transcript."""
        raise NotImplementedError

    def partial(self) -> tuple[str, float] | None:
        """Best hypothesis so far: (normalised text, seconds of audio after its last word),
        or None if the backend has no partial results."""
        return None


class ASR:
    """Interface of an ASR backend."""

    name = "asr"

    def start(self, start_s: float = 0.0) -> Utterance:  # pragma: no cover - interface
        """Begin an utterance whose first sample is at ``start_s`` seconds."""
        raise NotImplementedError

    def transcribe(self, audio: np.ndarray, start_s: float = 0.0) -> Transcript:
        """Decode a whole utterance of 16 kHz float32 audio."""
        u = self.start(start_s)
        u.feed(np.asarray(audio, np.float32))
        return u.finish()


ASR_BACKENDS: Registry[ASR] = Registry("ASR")


def _model_path(sub: str) -> str:
    from pocketsphinx import get_model_path

    return str(get_model_path(sub))


def make_decoder(**kw) -> object:  # noqa: ANN003 - pocketsphinx config keys
    """A pocketsphinx Decoder with the bundled en-us model and quiet logging."""
    ps = require("pocketsphinx", "speech", "the pocketsphinx recogniser")
    cfg = ps.Config(hmm=_model_path("en-us/en-us"), dict=_model_path("en-us/cmudict-en-us.dict"),
                    lm=None, loglevel="FATAL")
    for k, v in kw.items():
        if v is None:
            continue
        if isinstance(v, bool):
            cfg.set_boolean(k, v)
        elif isinstance(v, int):
            cfg.set_int(k, v)
        elif isinstance(v, float):
            cfg.set_float(k, v)
        else:
            cfg.set_string(k, str(v))
    try:
        return ps.Decoder(cfg)
    except Exception as exc:
        raise SpeechError(f"cannot start pocketsphinx: {exc}") from None


#: Grammar-search settings (pocketsphinx keys). Wide beams on every utterance: on a dev set
#: (other voices and seeds than the benchmark's test set; 103 commands, push-to-talk grammar)
#: 95/103 correct at 15 dB and 65/103 at 5 dB, where the earlier 1e-40 / 1e-20 beams with a
#: wide second pass on failure got 90/103 and 62/103; wider still (1e-100) gained nothing.
#: One pass keeps the end-of-speech work to the final search (no second decode).
#: Phone insertion penalty ``pip`` 0.5 (pocketsphinx's default 1.0): on 88 dev commands per
#: SNR (DEV_VOICES, seeds 57000+, default wake-slot grammar and front end) 85 -> 87 correct
#: at 15 dB and 77 -> 81 at 5 dB, dev chatter accepted by the grammar 0/100 either way; pip
#: 0.3: 86 / 81, 0.1: 84 / 79, 3.0: 81 / 72; word insertion penalty 0.2 / 2.0 (default
#: 0.65): 86 / 78 and 83 / 75; silprob 0.05: 84 / 76. Dev feeds (seeds 9401-9408): 46 of 48
#: with pip 0.5 as with 1.0 (0.3: 44); the real sample.wav: no command accepted.
DECODER_DEFAULTS: dict[str, object] = {"beam": 1e-70, "pbeam": 1e-70, "wbeam": 1e-45,
                                       "pip": 0.5}

#: Beams of the optional second pass (``second_pass=True``), run when the first finds no
#: complete grammar path.
WIDE_BEAMS: dict[str, object] = {"beam": 1e-90, "pbeam": 1e-90, "wbeam": 1e-60}


#: Shadow front end: the denoised result is taken when some 1 s window after the start loses
#: at least this share of its energy to the suppressor (dB; clean speech: -16 to -21 dB).
NOISE_SHARE_MIN_DB = -8.0
#: ... and that share is this much (dB) above the start's (``PocketsphinxASR.noise_rise_db``).
NOISE_RISE_DB = 5.0


@ASR_BACKENDS.register("pocketsphinx")
class PocketsphinxASR(ASR):
    """Grammar recogniser: ``GrammarSpec`` as a minimal word automaton (or JSGF).

    ``search="fsg"`` (default) shares prefixes and suffixes of all command sentences, where
    the JSGF compiler copies a slot's word list once per template: same language, real-time
    factor 0.12 -> 0.03 on the benchmark. ``second_pass`` (off by default): when the search
    ends with no complete path, the utterance is decoded again with ``WIDE_BEAMS``; it paid
    off with narrow first-pass beams, but cost ~100 ms at the end of speech, and the wide
    ``DECODER_DEFAULTS`` now get more right in one pass.

    A grammar forces any speech into some command, so a hypothesis is accepted only when it
    is a complete sentence of the grammar; the caller must also gate with the wake word
    (``speech.wakeword``) or push-to-talk, which is what rejects other people's chatter.
    ``denoise``: Wiener-filter the audio first (``speech.denoise``, gain floor
    ``DENOISE_FLOOR_DB``): False / "off" never, True / "on" always, "auto" (default) when the
    utterance's first ``SNR_WINDOW_S`` look noisy (``estimate_snr_db`` below
    ``SNR_SWITCH_DB``), each front end with its own decoder (own cepstral mean). Measured on a
    dev set (103 commands, other voices and seeds than the benchmark's test set, push-to-talk
    grammar): raw 95/103 at 15 dB and 65/103 at 5 dB, denoised 89/103 and 74/103: the filter
    helps in heavy noise and distorts the spectra the acoustic model expects in light noise.
    The estimate separates the two (15 dB: 16-22 dB, 5 dB: 7-12.5 dB on that set).
    ``denoiser``: which suppressor the denoised front end uses: "neural" (default; the
    learned gain net of ``speech.neural_denoise``, trained by ``speech.train_denoiser``),
    "wiener" (the filter above) or a folder holding a trained ``model.onnx``. Dev set (51
    commands per SNR, wake-slot grammar, auto switch): Wiener 50 / 37 / 21 of 51 at
    15 / 5 / 0 dB; a net trained on the test sets' noise model only 50 / 46 / 29; the shipped
    net (trained on both synthetic noise models) 50 / 45 / 29; chatter accepted by the
    grammar 1/100 (Wiener), 0/100 (nets). On 8 dev feeds (the feed generator's noise, seeds
    9401-9408, 48 commands): Wiener 41, first net 42, shipped net 45. With a net always on,
    15 dB fell to 49/51 (and 81 vs 85 of 88 on a larger 15 dB set), so "auto" stays: light
    noise is decoded raw.
    ``noise_rise_db`` (default ``NOISE_RISE_DB``; None = off): when "auto" picked the raw
    decoder, the denoised one runs alongside (shadow), and its result is taken when noise
    rose after the start: some 1 s window loses a share of its energy to the suppressor
    (``_NoiseRise``) at least this many dB above the start's share and at least
    ``NOISE_SHARE_MIN_DB``. Before, suction or diathermy starting mid-command was decoded
    raw. Dev feeds (seeds 9401-9408, 48 commands): 45 without, 47 with a 3 dB rise, 46 with
    5 dB; chatter accepted 0. Dev commands in OR noise (both fronts recorded, 88 clean
    starts): a 3 dB rise switched 41 and changed nothing in sum (the denoised front hears
    "liver" as "lumen" more often: 3 losses, 3 gains), 5 dB switched 5 (no change); the
    dev benchmark with 3 dB lost one command at 15 and at 5 dB, so the default is 5 dB. The
    real two-speaker sample.wav never switches (its windows lose -16 to -21 dB, rises up to
    1.6 dB). Taking the denoised result whenever the raw one was no command let a line of
    sample.wav through ("a highlight the pancreatic head ..." -> "copilot highlight ..."),
    so only the noise rise switches. Costs a second decode while the start is clean.
    ``decoder_cfg`` overrides ``DECODER_DEFAULTS`` (pocketsphinx config keys).

    Pronunciations: CMUdict (American) plus each grammar word's British non-rhotic form and
    espeak-ng's own phonemes (``GrammarSpec.alternative_pronunciations``). On the dev set
    (default wake-slot grammar, decision without the spotter): dictionary only 92/103
    correct at 15 dB and 74/103 at 5 dB; + non-rhotic 98/103 and 74/103 ("liver" no longer
    heard as "lumen" / "ileum" from British voices); + espeak-ng 99/103 and 77/103; chatter
    accepted by the grammar 0/100 in all three. With the benchmark's own procedure on the
    dev set (``python -m benchmarks.bench_speech --dev``, default decision after its wake
    calibration): dictionary only 94.1 % / 66.7 %, 0 false accepts; variants on every word
    98.0 % / 70.6 % but 1 chatter line accepted ("could you turn the lights down" ->
    "copilot turn the overlays on"); variants except the wake slot's competitor words
    (the default) 98.0 % / 70.6 %, 0 false accepts.
    """

    name = "pocketsphinx"

    def __init__(self, grammar: GrammarSpec, nbest: int = 1, denoise: bool | str = "auto",
                 remove_noise: bool = False, decoder_cfg: dict | None = None,
                 second_pass: bool = False, search: str = "fsg",
                 denoiser: str = "neural", noise_rise_db: float | None = NOISE_RISE_DB) -> None:
        if search not in ("fsg", "jsgf"):
            raise SpeechError(f"unknown grammar search {search!r}: fsg or jsgf")
        self.denoiser = denoiser
        self.noise_rise_db = noise_rise_db
        self.search = search
        self.grammar = grammar
        self.nbest_n = int(nbest)
        modes = {False: "off", True: "on", "off": "off", "on": "on", "auto": "auto"}
        if denoise not in modes:
            raise SpeechError(f"unknown denoise mode {denoise!r}: on, off or auto")
        self.denoise = modes[denoise]
        self._make_denoiser = (None if self.denoise == "off" else denoiser_factory(
            denoiser, wiener_floor_db=DENOISE_FLOOR_DB, neural_floor_db=NEURAL_FLOOR_DB))
        dict_path = _model_path("en-us/cmudict-en-us.dict")
        self.extra_words = grammar.pronunciations(dict_path)
        self.alt_words = grammar.alternative_pronunciations(dict_path)
        self.jsgf = grammar.to_jsgf()
        cfg = DECODER_DEFAULTS | (decoder_cfg or {})
        # bestpath=False: the FSG search's own backtrace; the lattice best path often drops
        # the final word of a command (measured: 11/16 vs 8/16 correct on a noisy sample).
        self._dec = self._grammar_decoder(remove_noise=remove_noise, bestpath=False, **cfg)
        self._dec_dn = (self._grammar_decoder(remove_noise=remove_noise, bestpath=False, **cfg)
                        if self.denoise != "off" else None)
        self._force: str | None = None  # "raw" / "denoised": warm_up pins a front end
        self._dn_cold = True  # the denoised decoder has not decoded anything yet
        self._wide = (self._grammar_decoder(remove_noise=remove_noise, bestpath=False,
                                            **(cfg | WIDE_BEAMS)) if second_pass else None)
        self._wake_prefixes = tuple(normalise(w) + " " for w in grammar.wake_words)
        if grammar.wake_optional:
            self._wake_prefixes = ("",)
        self._lock = threading.Lock()

    def _grammar_decoder(self, **cfg) -> object:  # noqa: ANN003 - pocketsphinx config keys
        dec = make_decoder(**cfg)
        for w, pron in (self.extra_words | self.alt_words).items():
            dec.add_word(w, pron, False)
        try:
            if self.search == "fsg":
                start, final, trans = self.grammar.to_fsg()
                dec.add_fsg("grammar", dec.create_fsg("grammar", start, final, trans))
            else:
                dec.add_jsgf_string("grammar", self.jsgf)
            dec.activate_search("grammar")
        except Exception as exc:
            raise SpeechError(f"invalid grammar: {exc}") from None
        return dec

    def _second_pass(self, pcm: list[bytes], dec: object) -> object | None:
        """Decode the utterance again with ``WIDE_BEAMS``; its hypothesis or None."""
        if self._wide is None or not pcm:
            return None
        try:
            self._wide.set_cmn(dec.get_cmn())  # the live mean the first pass adapted
        except Exception:  # older pocketsphinx: start from its own mean
            pass
        self._wide.start_utt()
        self._wide.process_raw(b"".join(pcm), False, True)
        self._wide.end_utt()
        hyp = self._wide.hyp()
        return hyp if hyp is not None and hyp.hypstr.strip() else None

    def start(self, start_s: float = 0.0) -> _PsUtterance:
        return _PsUtterance(self, start_s)

    def warm_up(self, audio: np.ndarray, max_passes: int = 4) -> None:
        """Decode ``audio`` until the live cepstral mean settles; results discarded.

        pocketsphinx adapts its live cepstral mean across utterances; the first ones after
        start-up decode against the model's prior and are measurably worse (one pass over
        3 s of speech is not enough: the first commands after it came out as other
        commands). Running continuously, the listener adapts on its own; the CLI, tests and
        benchmarks call this with a few seconds of room audio (any speech) before measuring.
        """
        fronts = {"off": ("raw",), "on": ("denoised",), "auto": ("raw", "denoised")}
        try:
            for front in fronts[self.denoise]:
                self._force = front
                dec = self._dec if front == "raw" else self._dec_dn
                prev = None
                for _ in range(max(1, max_passes)):
                    self.transcribe(audio)
                    try:
                        cmn = [float(v) for v in str(dec.get_cmn()).split(",")]
                    except Exception:  # no get_cmn: one pass as before
                        break
                    if prev is not None and max(abs(a - b) for a, b in zip(
                            cmn, prev, strict=False)) < 0.05:
                        break
                    prev = cmn
        finally:
            self._force = None


#: Gain floor of the recogniser's Wiener filter (dB): -15 dB (``Denoiser``'s default) cost
#: accuracy on the dev set at 5 dB, -8 dB gained (74/103 vs 65/103 raw).
DENOISE_FLOOR_DB = -8.0
#: Gain floor of the learned denoiser (dB).
NEURAL_FLOOR_DB = -20.0
#: ``denoise="auto"`` filters an utterance whose ``estimate_snr_db`` is below this (dB).
SNR_SWITCH_DB = 14.0
#: Audio looked at for that estimate (the listener's 0.5 s pre-roll + the start of speech).
SNR_WINDOW_S = 0.8


def estimate_snr_db(x: np.ndarray) -> float:
    """Crude SNR of an utterance's start (dB): 90th minus 10th percentile of the 32 ms frame
    energies (the pre-roll gives the noise floor, the first words the speech level)."""
    n = len(x) // 512
    if n < 2:
        return float("inf")
    f = np.asarray(x[: n * 512], np.float64).reshape(n, 512)
    db = 10.0 * np.log10(np.mean(f * f, axis=1) + 1e-12)
    return float(np.percentile(db, 90) - np.percentile(db, 10))


def _first_word_score(dec: object) -> float | None:
    """Acoustic score per frame of the hypothesis' first word (the wake slot), relative to
    the best senone of each frame, in pocketsphinx log units (ln x 1e4): near 0 for a close
    match; chatter forced into the wake word scores far lower (``Listener`` wake rescue)."""
    for sg in dec.seg():
        w = sg.word
        if w and w[0] not in "<[(+" and w != "</s>":
            nf = max(1, int(sg.end_frame) - int(sg.start_frame) + 1)
            return math.log(max(float(sg.ascore), 1e-300)) * 1e4 / nf
    return None


class _NoiseRise:
    """How much of the input the suppressor removes, per window (for the shadow front end).

    The input is delayed by the denoiser's ``delay`` samples to line up with its output;
    per ``WINDOW`` of samples the removed share (dB) is ``10 log10(sum max(in^2 - out^2, 0) /
    sum in^2)``. Clean speech loses -16 to -21 dB of its energy (the real two-speaker
    sample.wav, 1 s windows), speech under suction or diathermy -2 to -11 dB.
    """

    WINDOW = SAMPLE_RATE  # samples per window (1 s)
    STEP = 512  # the window slides by this many samples (32 ms)

    def __init__(self, delay: int) -> None:
        self._tail = np.zeros(delay, np.float32)
        self._win: deque[tuple[float, float, int]] = deque()  # (energy in, removed, samples)
        self._n = 0
        self._e = self._r = 0.0
        self.max_db = -math.inf

    @staticmethod
    def share_db(removed: float, energy: float) -> float:
        """Removed share of ``energy`` in dB (-inf for silence)."""
        return 10.0 * math.log10(removed / energy) if energy > 0 and removed > 0 else -math.inf

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        """Account input ``x`` and the suppressor's output ``y`` (same length), in steps of
        ``STEP`` samples."""
        xd = np.concatenate([self._tail, x])
        self._tail = xd[len(x):]
        e_in = xd[: len(x)].astype(np.float64) ** 2
        rem = np.maximum(e_in - y.astype(np.float64) ** 2, 0.0)
        for i in range(0, len(x), self.STEP):
            e, r = float(e_in[i:i + self.STEP].sum()), float(rem[i:i + self.STEP].sum())
            self._win.append((e, r, min(self.STEP, len(x) - i)))
            self._e += e
            self._r += r
            self._n += self._win[-1][2]
            while self._n - self._win[0][2] >= self.WINDOW:
                e0, r0, n0 = self._win.popleft()
                self._e -= e0
                self._r -= r0
                self._n -= n0
            if self._n >= self.WINDOW:
                self.max_db = max(self.max_db, self.share_db(self._r, self._e))

    def current_db(self) -> float:
        """Removed share over what the window holds now (dB)."""
        return self.share_db(self._r, self._e)


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


@ASR_BACKENDS.register("faster-whisper")
class FasterWhisperASR(ASR):
    """faster-whisper on a local CTranslate2 model directory (pip extra ``whisper``).

    hotwords / initial_prompt: the surgical vocabulary as a prompt string; temperature 0;
    ``no_speech_threshold`` and ``min_avg_logprob`` reject non-speech and garbage.
    """

    name = "faster-whisper"

    def __init__(self, model_dir: str | Path, device: str = "cpu", compute_type: str = "int8",
                 vocabulary: Sequence[str] = (), language: str = "en", beam_size: int = 1,
                 min_avg_logprob: float = -1.0, cpu_threads: int = 2,
                 no_speech_threshold: float | None = 0.6, max_new_tokens: int = 64) -> None:
        fw = require("faster_whisper", "whisper", "the faster-whisper recogniser")
        model_dir = Path(model_dir)
        if not (model_dir / "model.bin").exists():
            raise SpeechError(f"{model_dir}: not a CTranslate2 Whisper model dir (no model.bin)")
        if not (model_dir / "tokenizer.json").exists():
            raise SpeechError(f"{model_dir}: tokenizer.json missing (it would be downloaded)")
        try:
            self.model = fw.WhisperModel(str(model_dir), device=device, compute_type=compute_type,
                                         cpu_threads=cpu_threads, local_files_only=True)
        except Exception as exc:
            raise SpeechError(f"{model_dir}: cannot load Whisper model ({exc})") from None
        words = list(dict.fromkeys(w for w in vocabulary if w))
        self.prompt = ", ".join(words)[:800] if words else None
        self.hotwords = " ".join(words)[:400] if words else None
        self.language = language
        self.beam_size = beam_size
        self.min_avg_logprob = min_avg_logprob
        self.no_speech_threshold = no_speech_threshold
        self.max_new_tokens = max_new_tokens

    def start(self, start_s: float = 0.0) -> _BufferedUtterance:
        return _BufferedUtterance(self, start_s)

    def _decode(self, audio: np.ndarray, start_s: float) -> Transcript:
        t0 = time.perf_counter()
        segments, _info = self.model.transcribe(
            audio.astype(np.float32), language=self.language, beam_size=self.beam_size,
            temperature=0.0, initial_prompt=self.prompt, condition_on_previous_text=False,
            without_timestamps=True, vad_filter=False, hotwords=None if self.prompt else
            self.hotwords, no_speech_threshold=self.no_speech_threshold,
            compression_ratio_threshold=None, log_prob_threshold=None,
            max_new_tokens=self.max_new_tokens,
        )
        texts: list[str] = []
        logps: list[float] = []
        no_speech: list[float] = []
        for seg in segments:  # the generator is consumed here, in the caller's worker thread
            texts.append(seg.text)
            logps.append(seg.avg_logprob)
            no_speech.append(seg.no_speech_prob)
        text = normalise(" ".join(texts))
        avg = float(np.mean(logps)) if logps else -10.0
        conf = float(math.exp(max(-50.0, avg)))
        accepted = bool(text) and avg >= self.min_avg_logprob
        reason = "" if accepted else ("no speech" if not text else f"low avg logprob {avg:.2f}")
        end_s = start_s + len(audio) / SAMPLE_RATE
        return Transcript(text, conf, [(text, conf)], start_s, end_s, accepted, reason, self.name,
                          None, {"avg_logprob": avg, "segments": float(len(texts)),
                                 "no_speech_prob": float(np.mean(no_speech)) if no_speech else 1.0},
                          time.perf_counter() - t0)


class _BufferedUtterance(Utterance):
    """Collects audio; decodes at ``finish`` (for non-streaming backends)."""

    def __init__(self, asr: FasterWhisperASR, start_s: float) -> None:
        self.asr = asr
        self.start_s = start_s
        self.parts: list[np.ndarray] = []

    def feed(self, chunk: np.ndarray) -> None:
        self.parts.append(np.asarray(chunk, np.float32))

    def finish(self) -> Transcript:
        audio = np.concatenate(self.parts) if self.parts else np.zeros(0, np.float32)
        if audio.size == 0:
            return Transcript("", 0.0, [], self.start_s, self.start_s, False, "no audio",
                              self.asr.name)
        return self.asr._decode(audio, self.start_s)


def create_asr(name: str = "pocketsphinx", **cfg) -> ASR:  # noqa: ANN003 - backend config
    """Build an ASR backend by registry name."""
    return ASR_BACKENDS.create(name, **cfg)


# registers "moonshine" (imports this module's names, so it comes last)
from speech import hybrid as _hybrid  # noqa: E402,F401  registers "hybrid"
from speech import moonshine as _moonshine  # noqa: E402,F401
