"""Speech recognition, one interface, backends selected by name.

- ``pocketsphinx`` (default, offline, no download): the grammar built from the command
  templates, searched as a minimal word automaton (``GrammarSpec.to_fsg``; the JSGF form
  is kept as ``search="jsgf"``), incomplete paths rejected; chatter is rejected by the
  wake-word gate in front of it (``speech.listener``).
- ``faster-whisper``: a CTranslate2 Whisper model directory from config, hotwords / initial
  prompt from the surgical vocabulary, temperature 0; segments consumed inside the call
  (i.e. inside the worker thread that calls it).

Streaming use: ``u = asr.start(); u.feed(chunk) ...; transcript = u.finish()``.

The rooms: ``speech.asr_base`` (interface and registry), ``speech.asr_pocketsphinx`` and
``speech.ps_utterance`` (the grammar recogniser), ``speech.pocketsphinx_decoder`` (decoder
set-up shared with the wake-word spotter), ``speech.snr_switch`` (raw / denoised front end),
``speech.asr_whisper``, ``speech.moonshine`` and ``speech.hybrid``. Importing this module
registers every backend; its names stay importable from here.
"""

from __future__ import annotations

from speech import hybrid as _hybrid  # noqa: F401  registers "hybrid"
from speech import moonshine as _moonshine  # noqa: F401  registers "moonshine*"
from speech.asr_base import ASR, ASR_BACKENDS, Transcript, Utterance
from speech.asr_pocketsphinx import PocketsphinxASR
from speech.asr_whisper import FasterWhisperASR
from speech.asr_whisper import _BufferedUtterance as _BufferedUtterance
from speech.pocketsphinx_decoder import DECODER_DEFAULTS, WIDE_BEAMS, make_decoder
from speech.pocketsphinx_decoder import _first_word_score as _first_word_score
from speech.pocketsphinx_decoder import _model_path as _model_path
from speech.ps_utterance import _PsUtterance as _PsUtterance
from speech.snr_switch import (
    DENOISE_FLOOR_DB,
    NEURAL_FLOOR_DB,
    NOISE_RISE_DB,
    NOISE_SHARE_MIN_DB,
    SNR_SWITCH_DB,
    SNR_WINDOW_S,
    estimate_snr_db,
)
from speech.snr_switch import _NoiseRise as _NoiseRise

__all__ = [
    "ASR", "ASR_BACKENDS", "DECODER_DEFAULTS", "DENOISE_FLOOR_DB", "NEURAL_FLOOR_DB",
    "NOISE_RISE_DB", "NOISE_SHARE_MIN_DB", "SNR_SWITCH_DB", "SNR_WINDOW_S", "WIDE_BEAMS",
    "FasterWhisperASR", "PocketsphinxASR", "Transcript", "Utterance", "create_asr",
    "estimate_snr_db", "make_decoder",
]


def create_asr(name: str = "pocketsphinx", **cfg) -> ASR:  # noqa: ANN003 - backend config
    """Build an ASR backend by registry name."""
    return ASR_BACKENDS.create(name, **cfg)
