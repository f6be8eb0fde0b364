"""Upper bound of any rule combining the recognisers, on the DEV records only.

For each dev command record (``records_dev.jsonl`` written by ``python -m benchmarks.bench_speech
--natural-only`` under ``$SPEECH_CACHE``), is the right command (intent and slots) among the
hypotheses the recognisers produced: pocketsphinx's grammar transcript (accepted or not),
Moonshine tiny's best catalogue sentence, Moonshine base's (where decoded)? No decision rule
over these outputs (order, margins, wake thresholds) can be right more often than "any of them
is right". The test records are not read.

    python -m benchmarks.speech_oracle [--records PATH] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from benchmarks.speech_rules import truth_ok

COLUMNS = ("pocketsphinx", "tiny", "pocketsphinx or tiny")
#: on the records where Moonshine base was decoded (a subset: its decode takes seconds)
BASE_COLUMNS = ("base", "pocketsphinx or tiny or base")


def oracle(records: list[dict], parse) -> dict[tuple[str, float], dict[str, float]]:
    """Share of command records whose right command is each recogniser's hypothesis, per
    (voice family, SNR dB); "pocketsphinx or tiny": at least one of them (the ceiling of every
    rule over the default hybrid's two recognisers); base columns on its decoded subset."""
    hits: dict[tuple[str, float], list[list[bool]]] = defaultdict(list)
    base_hits: dict[tuple[str, float], list[list[bool]]] = defaultdict(list)
    for r in records:
        if r.get("truth") is None or r.get("ms_v", 1) != 2:
            continue
        key = (r["family"], float(r["snr"]))
        ps = truth_ok(parse, r["ps"]["text"], r["truth"])
        tiny = truth_ok(parse, r["tiny"]["cmd"], r["truth"])
        hits[key].append([ps, tiny, ps or tiny])
        if "base" in r:
            base = truth_ok(parse, r["base"]["cmd"], r["truth"])
            base_hits[key].append([base, ps or tiny or base])
    out = {}
    for key, rows in sorted(hits.items()):
        n, b = len(rows), base_hits.get(key, [])
        out[key] = {"n": n, **{c: round(sum(row[i] for row in rows) / n, 3)
                               for i, c in enumerate(COLUMNS)}, "n_base": len(b),
                    **{c: (round(sum(row[i] for row in b) / len(b), 3) if b else None)
                       for i, c in enumerate(BASE_COLUMNS)}}
    return out


def main() -> None:
    from kg_reasoning.catalogue import load_catalogue
    from speech.natural import cache_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=Path, default=None, help="records_dev.jsonl")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/speech_oracle_dev.md"))
    a = ap.parse_args()
    path = a.records or cache_dir() / "records_dev.jsonl"
    if "test" in path.name:
        print("error: this analysis reads dev records only", file=sys.stderr)
        sys.exit(2)
    if not path.is_file():
        print(f"error: no dev records at {path}: run python -m benchmarks.bench_speech "
              "--natural-only first", file=sys.stderr)
        sys.exit(2)
    records = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    res = oracle(records, load_catalogue().parse)
    lines = ["# Speech: the ceiling of any decision rule over the recognisers (dev records)", "",
             f"Command: `python -m benchmarks.speech_oracle` on {len(records)} dev records "
             "(the test records are not read). Share of commands whose right intent and "
             "slots are in each hypothesis; \"pocketsphinx or tiny\" bounds every rule that picks "
             "between the default hybrid's two recognisers.", "",
             "| voice family | SNR dB | n | " + " | ".join(COLUMNS) + " | n (base decoded) | "
             + " | ".join(BASE_COLUMNS) + " |",
             "|---|---|---|" + "---|" * (len(COLUMNS) + 1 + len(BASE_COLUMNS))]
    for (fam, snr), row in res.items():
        base = " | ".join("-" if row[c] is None else f"{row[c]:.2f}" for c in BASE_COLUMNS)
        lines.append(f"| {fam} | {snr:g} | {row['n']} | "
                     + " | ".join(f"{row[c]:.2f}" for c in COLUMNS)
                     + f" | {row['n_base']} | {base} |")
    lines += ["", "```json", json.dumps({f"{f} {s:g} dB": r for (f, s), r in res.items()},
                                        indent=1), "```", ""]
    a.out.write_text("\n".join(lines))
    print(a.out)


if __name__ == "__main__":
    main()
