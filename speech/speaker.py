"""Speaker enrolment and check: Resemblyzer voice prints (default), pyannote.audio (optional).

``enroll(audios, name)`` -> ``VoicePrint`` (mean L2-normalised embedding); ``score(print, audio)``
-> cosine similarity in [-1, 1]. Resemblyzer's score is a soft signal: ``SpeakerGate`` lets a
state-changing command through only when the score clears the threshold, otherwise asks for a
spoken confirmation, which a caller resolves with ``confirm``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speech.audio import SAMPLE_RATE
from speech.errors import SpeechError
from speech.registry import Registry, require

#: Intents that change what the copilot does or shows (need the enrolled voice).
STATE_CHANGING_DEFAULT = frozenset(
    {"mute_alerts", "hide_overlay", "show_overlay", "outline_structure", "show_coverage"}
)
MIN_SPEECH_S = 0.5


@dataclass
class VoicePrint:
    """A speaker's voice print: unit ``embedding``, how many utterances / seconds made it."""

    name: str
    embedding: np.ndarray
    n_utterances: int
    seconds: float
    backend: str = "resemblyzer"

    def save(self, path: str | Path) -> Path:
        """Write ``.npz`` (embedding + JSON metadata). Holds no audio."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        meta = {"name": self.name, "n_utterances": self.n_utterances, "seconds": self.seconds,
                "backend": self.backend}
        with open(p, "wb") as f:
            np.savez(f, embedding=self.embedding.astype(np.float32), meta=json.dumps(meta))
        return p

    @classmethod
    def load(cls, path: str | Path) -> VoicePrint:
        """Read a voice print written by ``save``; SpeechError if missing or corrupt."""
        p = Path(path)
        if not p.exists():
            raise SpeechError(f"voice print not found: {p}")
        try:
            with np.load(p, allow_pickle=False) as z:
                emb = z["embedding"].astype(np.float32)
                meta = json.loads(str(z["meta"]))
        except Exception:
            raise SpeechError(f"{p}: not a voice print file") from None
        return cls(meta["name"], emb, int(meta["n_utterances"]), float(meta["seconds"]),
                   meta.get("backend", "resemblyzer"))


class SpeakerEncoder:
    """Interface: ``embed(audio16k) -> unit vector``."""

    name = "speaker"

    def embed(self, audio: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def enroll(self, audios: Sequence[np.ndarray], name: str) -> VoicePrint:
        """Average the embeddings of ``audios`` (16 kHz) into a voice print."""
        if not audios:
            raise SpeechError("enrolment needs at least one recording")
        if not name or not name.strip():
            raise SpeechError("enrolment needs a speaker name")
        embs = [self.embed(a) for a in audios]
        e = np.mean(embs, axis=0)
        e = e / (np.linalg.norm(e) + 1e-9)
        secs = float(sum(len(a) for a in audios) / SAMPLE_RATE)
        return VoicePrint(name.strip(), e.astype(np.float32), len(audios), secs, self.name)

    def score(self, vp: VoicePrint, audio: np.ndarray) -> float:
        """Cosine similarity between the print and ``audio``'s embedding."""
        e = self.embed(audio)
        return float(np.dot(vp.embedding, e) / (np.linalg.norm(vp.embedding) * np.linalg.norm(e)
                                                 + 1e-9))


SPEAKER_BACKENDS: Registry[SpeakerEncoder] = Registry("speaker")


@SPEAKER_BACKENDS.register("resemblyzer")
class ResemblyzerEncoder(SpeakerEncoder):
    """Resemblyzer's GE2E encoder (weights ship in its wheel), CPU, one lock (torch)."""

    name = "resemblyzer"

    def __init__(self, device: str = "cpu") -> None:
        rz = require("resemblyzer", "speech", "the Resemblyzer speaker check")
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded the voice encoder"
            self.encoder = rz.VoiceEncoder(device)
        self._rz = rz
        self._lock = threading.Lock()

    def embed(self, audio: np.ndarray) -> np.ndarray:
        x = np.asarray(audio, np.float32)
        if x.size < MIN_SPEECH_S * SAMPLE_RATE:
            raise SpeechError(f"too little audio for a voice print ({x.size / SAMPLE_RATE:.2f} s "
                              f"< {MIN_SPEECH_S} s)")
        wav = self._rz.preprocess_wav(x, source_sr=SAMPLE_RATE)
        if wav.size < MIN_SPEECH_S * SAMPLE_RATE:
            wav = x / (np.max(np.abs(x)) + 1e-9)  # trimming left too little: use as is
        with self._lock:
            e = self.encoder.embed_utterance(wav)
        return (e / (np.linalg.norm(e) + 1e-9)).astype(np.float32)


@SPEAKER_BACKENDS.register("pyannote")
class PyannoteEncoder(SpeakerEncoder):
    """pyannote.audio speaker embedding from a local model directory (optional, not bundled).

    pyannote.audio pulls its own torchaudio / torch pins, so it is not installed here; pass
    ``model_dir`` holding a pyannote embedding model (``pytorch_model.bin`` + ``config.yaml``).
    """

    name = "pyannote"

    def __init__(self, model_dir: str | Path, device: str = "cpu") -> None:
        pa = require("pyannote.audio", "pyannote", "the pyannote speaker backend")
        model_dir = Path(model_dir)
        if not model_dir.exists():
            raise SpeechError(f"pyannote model dir not found: {model_dir}")
        import torch

        try:
            model = pa.Model.from_pretrained(str(model_dir))
            self.inference = pa.Inference(model, window="whole", device=torch.device(device))
        except Exception as exc:
            raise SpeechError(f"{model_dir}: cannot load pyannote model ({exc})") from None

    def embed(self, audio: np.ndarray) -> np.ndarray:
        import torch

        wav = torch.from_numpy(np.asarray(audio, np.float32))[None]
        e = np.asarray(self.inference({"waveform": wav, "sample_rate": SAMPLE_RATE})).reshape(-1)
        return (e / (np.linalg.norm(e) + 1e-9)).astype(np.float32)


class PyannoteDiarizer:
    """Who spoke when, with a pyannote.audio pipeline from a local directory (optional).

    ``pipeline_dir`` holds the pipeline's ``config.yaml`` (and the models it points to); it is
    never fetched from a hub. ``diarize(audio)`` -> [(start_s, end_s, speaker)].
    """

    def __init__(self, pipeline_dir: str | Path, device: str = "cpu") -> None:
        pa = require("pyannote.audio", "pyannote", "pyannote diarization")
        cfg = Path(pipeline_dir) / "config.yaml"
        if not cfg.exists():
            raise SpeechError(f"pyannote pipeline config not found: {cfg}")
        try:
            self.pipeline = pa.Pipeline.from_pretrained(str(cfg))
        except Exception as exc:
            raise SpeechError(f"{cfg}: cannot load pyannote pipeline ({exc})") from None
        import torch

        self.pipeline.to(torch.device(device))

    def diarize(self, audio: np.ndarray) -> list[tuple[float, float, str]]:
        """Speaker turns of 16 kHz audio."""
        import torch

        wav = torch.from_numpy(np.asarray(audio, np.float32))[None]
        out = self.pipeline({"waveform": wav, "sample_rate": SAMPLE_RATE})
        ann = getattr(out, "speaker_diarization", out)
        return [(float(t.start), float(t.end), str(who))
                for t, _, who in ann.itertracks(yield_label=True)]


def create_speaker(name: str = "resemblyzer", **cfg) -> SpeakerEncoder:  # noqa: ANN003
    """Build a speaker encoder by registry name."""
    return SPEAKER_BACKENDS.create(name, **cfg)


@dataclass
class GateDecision:
    """``action``: "accept", "confirm" (ask "say confirm") or "reject"; ``score`` cosine."""

    action: str
    score: float | None
    reason: str


@dataclass
class SpeakerGate:
    """Lets state-changing intents through only from the enrolled voice (when enrolment is on).

    Without a voice print every intent is accepted. With one, a state-changing intent whose
    speaker score is below ``threshold`` (or has no score) needs a spoken confirmation.
    """

    voice_print: VoicePrint | None = None
    threshold: float = 0.75
    state_changing: frozenset[str] = STATE_CHANGING_DEFAULT
    pending: list[tuple[str, dict]] = field(default_factory=list)

    def decide(self, intent: str, score: float | None, slots: dict | None = None
               ) -> GateDecision:
        """Decide for one recognised command."""
        if self.voice_print is None or intent not in self.state_changing:
            return GateDecision("accept", score, "no check needed")
        if score is not None and score >= self.threshold:
            return GateDecision("accept", score, f"enrolled voice ({score:.2f})")
        self.pending = [(intent, dict(slots or {}))]
        shown = "none" if score is None else f"{score:.2f}"
        return GateDecision("confirm", score,
                            f"voice check {shown} < {self.threshold}: confirmation needed")

    def confirm(self, yes: bool = True) -> tuple[str, dict] | None:
        """Resolve a pending confirmation: the held command if ``yes``, else drop it."""
        held = self.pending[0] if self.pending else None
        self.pending = []
        return held if yes else None


def equal_error_rate(genuine: Iterable[float], impostor: Iterable[float]) -> tuple[float, float]:
    """(EER, threshold) from genuine and impostor scores (higher = same speaker)."""
    g = np.sort(np.asarray(list(genuine), np.float64))
    i = np.sort(np.asarray(list(impostor), np.float64))
    if g.size == 0 or i.size == 0:
        raise SpeechError("EER needs genuine and impostor scores")
    best_gap, eer, thr = 2.0, 1.0, 0.0
    for t in np.unique(np.concatenate([g, i])):
        frr = float(np.mean(g < t))
        far = float(np.mean(i >= t))
        if abs(frr - far) < best_gap:
            best_gap, eer, thr = abs(frr - far), (frr + far) / 2, float(t)
    return eer, thr
