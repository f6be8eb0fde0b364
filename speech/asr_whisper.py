"""faster-whisper recogniser on a local CTranslate2 model directory (extra ``whisper``):
hotwords / initial prompt from the surgical vocabulary, temperature 0; segments consumed
inside the call (i.e. inside the worker thread that calls it)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from speech.asr_base import ASR, ASR_BACKENDS, Transcript, Utterance
from speech.audio import SAMPLE_RATE
from speech.errors import SpeechError
from speech.grammar import normalise
from speech.registry import require


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
