"""The speech defaults by name: ``resolve_asr("default")`` / ``create_tts("default")``.

The default recogniser was chosen by measurement on the natural-voice DEV set
(``python -m benchmarks.bench_speech``; ``benchmarks/results/speech.json`` "choice") and
reported on the TEST set. Where its extra is missing, the fallback runs and the reason is
logged (and returned), never silently.
"""

from __future__ import annotations

import importlib.util
import logging

log = logging.getLogger(__name__)

#: The measured default recogniser (see the module doc) and its fallback.
DEFAULT_ASR = "hybrid"
FALLBACK_ASR = "pocketsphinx"
#: Hybrid order and Moonshine thresholds chosen with it on dev (speech.json "choice"; session
#: 10): on the natural-voice dev set (Piper joe + held-out espeak-ng, 10 / 5 dB, 48 commands
#: per family and SNR; 110 negatives: 50 chatter lines and 60 dev-only hard negatives,
#: speech.natural.DEV_HARD_CHATTER) Moonshine's catalogue command first, else pocketsphinx's:
#: mean 0.750 with 0 false accepts (pocketsphinx first 0.708, Moonshine tiny alone 0.651,
#: pocketsphinx alone 0.510). Margin -20 nats (-15: 0.708, -25: 0.745, -30: 0.745 with 1
#: false accept, "got it thank you" -> "copilot got it"). Until session 9 the margin was -30,
#: chosen on 24 commands per cell and the 50 chatter lines alone, 3 nats from the nearest
#: dev negative; the test chatter then gave 6.6 false accepts per 10 min. The free-form
#: fallback is off (it took free transcripts where pocketsphinx had the command).
HYBRID_ORDER = "ms_first"
MOONSHINE_CFG: dict[str, object] = {"min_margin": -20.0, "min_wake": 0.75, "free_form": False,
                                    "wake_rule": "constraint"}


def asr_available(name: str) -> str | None:
    """None when backend ``name`` can load here, else why not (one line)."""
    if name.startswith(("moonshine", "hybrid")):
        from speech.errors import SpeechError
        from speech.moonshine import model_dir

        try:
            model_dir("base" if name.endswith("base") else "tiny")
        except SpeechError as exc:
            return str(exc)
        return None
    if name == "pocketsphinx" and importlib.util.find_spec("pocketsphinx") is None:
        return "pocketsphinx is not installed: pip install '.[speech]'"
    return None


def resolve_asr(name: str) -> tuple[str, str]:
    """The backend name to build for ``name`` and, when "default" fell back, why."""
    if name != "default":
        return name, ""
    why = asr_available(DEFAULT_ASR)
    if why is None:
        return DEFAULT_ASR, ""
    log.warning("ASR: %s instead of %s: %s", FALLBACK_ASR, DEFAULT_ASR, why)
    return FALLBACK_ASR, f"{FALLBACK_ASR} instead of {DEFAULT_ASR}: {why}"
