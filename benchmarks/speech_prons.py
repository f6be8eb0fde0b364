"""Does the pocketsphinx grammar's espeak-derived tuning help natural voices? (issue 19)

    python -m benchmarks.speech_prons [--n 12]

Pronunciation variants (``GrammarSpec.alt_prons``: "non-rhotic", "espeak") were chosen on
espeak-ng voices. Here the default pocketsphinx decision (grammar wake slot AND spotter or a
strong slot) is scored with each variant set on the natural-voice DEV set (Piper joe and
held-out espeak voices, 10 and 5 dB), and the result is written to
``benchmarks/results/speech_prons.json``. Dev data only: this chooses a setting.
"""

from __future__ import annotations

import argparse
import copy
import json
import os

from benchmarks.paths import results_dir

RESULTS = results_dir()
VARIANTS = {"espeak+non-rhotic (shipped)": ("non-rhotic", "espeak"),
            "non-rhotic only": ("non-rhotic",), "dictionary only": ()}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=12, help="dev sentences per family and SNR")
    args = ap.parse_args(argv)
    from benchmarks.speech_natural import SEED, split_sentences
    from copilot.cli_speech import catalogue_grammar
    from kg_reasoning.catalogue import load_catalogue
    from speech.asr import PocketsphinxASR
    from speech.listener import decide_wake
    from speech.natural import FAMILIES, natural_sample, voices
    from speech.testset import DEV_CHATTER_VOICES, make_sample
    from speech.wakeword import DEFAULT_RESCUE, DEFAULT_THRESHOLD, KeyphraseWakeWord

    cat = load_catalogue()
    sents = split_sentences(cat, "dev", args.n)
    samples = []
    for fi, fam in enumerate(FAMILIES):
        vs = voices(fam, "dev")
        for k, snr in ((1, 10.0), (2, 5.0)):
            for i, (t, intent, slots) in enumerate(sents):
                samples.append((fam, snr, natural_sample(t, vs[i % len(vs)], snr,
                                                         SEED["dev"] + 1000 * (3 * fi + k) + i),
                                (intent, slots)))
    kws = KeyphraseWakeWord(threshold=DEFAULT_THRESHOLD)
    spots = [kws.detect(s.audio).detected for _, _, s, _ in samples]
    warm = make_sample("we should send this for histology", DEV_CHATTER_VOICES[-1], 15.0,
                       4242).audio
    out: dict = {"set": "dev (natural voices)", "n_per_family_snr": args.n, "variants": {}}
    for name, alt in VARIANTS.items():
        g = catalogue_grammar()
        g.alt_prons = alt
        asr = PocketsphinxASR(g)
        asr.warm_up(warm)
        cells: dict[str, list[int]] = {}
        for (fam, snr, s, truth), spot in zip(samples, spots, strict=True):
            tr = decide_wake(copy.deepcopy(asr.transcribe(s.audio)), spot, "both",
                             rescue=DEFAULT_RESCUE)
            p = cat.parse(tr.text) if tr.accepted else None
            c = cells.setdefault(f"{fam}/{int(snr)}dB", [0, 0])
            c[0] += int(p is not None and (p.intent, p.slots) == truth)
            c[1] += 1
        acc = {k: round(a / n, 4) for k, (a, n) in cells.items()}
        out["variants"][name] = {"accuracy": acc,
                                 "mean": round(sum(acc.values()) / len(acc), 4)}
        print(name, out["variants"][name])
    out["load_avg"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "speech_prons.json").write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
