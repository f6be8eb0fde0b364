"""Learned streaming noise suppression (a small causal GRU; ONNX Runtime).

Same frames as the Wiener filter (``speech.denoise``: 16 kHz, 512-sample sqrt-Hann frames,
hop 256 = 16 ms, 32 ms of delay), but the gain per bin comes from a network trained by
``python -m speech.train_denoiser`` on espeak-ng speech mixed with OR noise. Unlike minimum
statistics, it suppresses non-stationary bursts (suction hiss, diathermy buzz) that start
and stop within a word. The GRU state is carried from frame to frame; ``reset`` clears it.
The shipped model lives in ``speech/models/denoiser`` (its ``config.json`` and
``metrics.json`` say how it was trained).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from speech.denoise import Denoiser
from speech.errors import SpeechError

#: The shipped model directory.
DEFAULT_MODEL_DIR = Path(__file__).parent / "models" / "denoiser"

_SESSIONS: dict[str, object] = {}
_LOCK = threading.Lock()


def _session(path: Path) -> object:
    """One ONNX Runtime session per model file (shared; sessions are thread-safe)."""
    key = str(path.resolve())
    with _LOCK:
        if key not in _SESSIONS:
            import onnxruntime as ort

            if not path.is_file():
                raise SpeechError(f"denoiser model not found: {path}")
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                _SESSIONS[key] = ort.InferenceSession(str(path), opts,
                                                      providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001 - corrupt / foreign file
                raise SpeechError(f"cannot load denoiser model {path}: {exc}") from None
        return _SESSIONS[key]


class NeuralDenoiser(Denoiser):
    """Streaming learned denoiser; ``process(chunk) -> chunk`` (float32, 16 kHz).

    ``floor_db``: lowest gain applied (dB); a floor keeps some of every bin, which the
    recogniser's cepstra need (a gain of 0 makes log energies jump).
    """

    def __init__(self, model_dir: Path | str | None = None, floor_db: float = -20.0) -> None:
        d = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
        self._sess = _session(d / "model.onnx")
        state = self._sess.get_inputs()[1].shape  # (layers, 1, hidden)
        self._state_shape = (int(state[0]), 1, int(state[2]))
        super().__init__(n_fft=512, floor_db=floor_db)

    def reset(self) -> None:
        """Forget the GRU state and buffers."""
        super().reset()
        self._state = np.zeros(self._state_shape, np.float32)

    def _gains(self, spec: np.ndarray, p: np.ndarray) -> np.ndarray:
        feats = np.log10(p + 1e-9).astype(np.float32)[None, None, :]
        g, self._state = self._sess.run(None, {"feats": feats, "state": self._state})
        return np.maximum(g[0, 0].astype(np.float64), self.floor)


def denoiser_factory(kind: str, wiener_floor_db: float | None = None,
                     neural_floor_db: float = -20.0) -> Callable[[], Denoiser]:
    """A maker of fresh streaming denoisers: "wiener" (``speech.denoise``, gain floor
    ``wiener_floor_db`` or its own default), "neural" (the shipped model) or a directory
    holding a trained ``model.onnx``. The model is loaded now, so a bad one fails at start-up
    rather than in the middle of an utterance."""
    if kind == "wiener":
        kw = {} if wiener_floor_db is None else {"floor_db": wiener_floor_db}
        return lambda: Denoiser(**kw)
    model_dir = DEFAULT_MODEL_DIR if kind == "neural" else Path(kind)
    if not (model_dir / "model.onnx").is_file():
        raise SpeechError(f"unknown denoiser {kind!r}: wiener, neural or a model directory "
                          "with model.onnx")
    _session(model_dir / "model.onnx")
    return lambda: NeuralDenoiser(model_dir, floor_db=neural_floor_db)
