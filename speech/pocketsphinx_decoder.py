"""The pocketsphinx decoder shared by the grammar recogniser and the keyphrase spotter:
the bundled en-us model, quiet logging, the grammar search's beams, and the acoustic score
of a hypothesis' first word (pocketsphinx log units)."""

from __future__ import annotations

import math

from speech.errors import SpeechError
from speech.registry import require


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
