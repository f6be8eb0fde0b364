"""Dev check of a denoiser model folder against the shipped one (issue 20): pocketsphinx
command accuracy on the speech DEV set (``speech.testset.DEV_VOICES``, stratified catalogue
commands with the wake word, ``or_noise`` on dev seeds 20000+) at 15 and 5 dB, and false
accepts on 20 staff-chatter lines (``DEV_CHATTER_VOICES``). Never the test set.

``python -m benchmarks.denoiser_dev_check MODEL_DIR [--per-intent 2] [--out FILE]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def dev_check(denoiser: str, per_intent: int = 2) -> dict:
    """Right commands at 15 / 5 dB and chatter false accepts with ``denoiser``."""
    from copilot.cli_speech import build_listener
    from kg_reasoning.catalogue import load_catalogue
    from speech import testset as ts

    cat = load_catalogue()
    cmds = cat.expand(max_per_intent=per_intent, wake_word=True, stratify=True)
    lst = build_listener(denoiser=denoiser)
    out: dict = {}
    for snr in (15.0, 5.0):
        ok = 0
        for i, (text, intent, slots) in enumerate(cmds):
            s = ts.make_sample(text, ts.DEV_VOICES[i % len(ts.DEV_VOICES)], snr,
                               seed=20000 + 7 * i + int(snr))
            trs = [t for t in lst.process(s.audio) if t.accepted]
            p = cat.parse(trs[-1].text) if trs else None
            ok += bool(p and p.intent == intent
                       and all(p.slots.get(k) == v for k, v in slots.items()))
        out[f"{snr:g}dB"] = ok
    fa = 0
    for j, line in enumerate(ts.STAFF_CHATTER[:20]):
        s = ts.make_sample(line, ts.DEV_CHATTER_VOICES[j % len(ts.DEV_CHATTER_VOICES)], 15.0,
                           seed=21000 + j)
        fa += sum(1 for t in lst.process(s.audio) if t.accepted)
    out["chatter_false_accepts_of_20"] = fa
    out["commands"] = len(cmds)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="denoiser model folder (or 'neural' = the shipped one)")
    ap.add_argument("--per-intent", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    res = {"shipped": dev_check("neural", args.per_intent),
           "candidate": dev_check(args.model, args.per_intent),
           "set": "speech DEV set (DEV_VOICES, dev seeds 20000+, DEV_CHATTER_VOICES)"}
    print(json.dumps(res, indent=1))
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
