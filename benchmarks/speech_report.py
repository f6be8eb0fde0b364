"""The natural-voice report of the speech benchmark: rules chosen on DEV, scored on TEST,
speed, memory, the copilot's voice, and the issue-19 goals (benchmarks/bench_speech.py)."""

from __future__ import annotations

import os
import time

from benchmarks.speech_latency import paced_latency
from benchmarks.speech_natural import (
    Backends,
    collect,
    leak_check,
    listener_latency,
    real_negatives,
    split_sentences,
)
from benchmarks.speech_rules import Rule, choose, decide, score
from copilot.stats import percentile

#: dev / test sizes: sentences per family and SNR, base-en records (10 dB, per family)
SIZES = {"dev": (48, 8), "test": (36, 6)}
TEN_WORDS = "bleeding near the cystic artery, check the clip before you cut"


def _p(xs: list[float], q: float) -> float:
    return round(percentile(xs, q) * 1e3, 1) if xs else float("nan")


def natural_report(quick: bool = False, leak_n: int = 1000, cached_only: bool = False
                   ) -> dict:
    """Collect (cached) dev and test records, choose on dev, report on test."""
    from kg_reasoning.catalogue import load_catalogue
    from speech.natural import ESPEAK_DEV, ESPEAK_TEST, PIPER_DEV, PIPER_TEST

    t0 = time.time()
    cat = load_catalogue()
    parse = cat.parse
    be = Backends()
    nd, bd = (6, 2) if quick else SIZES["dev"]
    nt, bt = (6, 2) if quick else SIZES["test"]
    dev = collect("dev", nd, bd, be, snrs=(10.0, 5.0), chatter_per_line=1,
                  cached_only=cached_only)
    test = collect("test", nt, bt, be, chatter_per_line=3, cached_only=cached_only)
    real = real_negatives(be, base=False)  # base-en: too slow here for 30+ long segments
    rep: dict = {"sets": {
        "dev": {"used_for": "choosing every threshold, rule and the default",
                "piper_settings": [v.label for v in PIPER_DEV],
                "espeak_voices": [v.label for v in ESPEAK_DEV], "sentences_per_snr": nd,
                "snr_db": [10, 5], "chatter": "STAFF_CHATTER in DEV_CHATTER_VOICES + Piper "
                "dev settings, 15 dB, and DEV_HARD_CHATTER (speech/natural.py: 60 dev-only "
                "lines that start like commands, added in session 10)", "seed_base": 31000,
                "base_en_records": "first "
                f"{bd} sentences per family at 10 dB, first {bd // 2} chatter lines"},
        "test": {"used_for": "reporting only (never looked at while choosing)",
                 "piper_settings": [v.label for v in PIPER_TEST],
                 "espeak_voices": [v.label for v in ESPEAK_TEST], "sentences_per_snr": nt,
                 "snr_db": [15, 10, 5], "chatter": "STAFF_CHATTER in CHATTER_VOICES[:3] + "
                 "Piper test settings, 3 voices per line, 15 dB", "seed_base": 41000,
                 "real_negatives": {k: len(v) for k, v in real.items()},
                 "base_en_records": f"first {bt} sentences per family at 10 dB"},
        "records": {"dev": len(dev), "test": len(test), "cached_only": cached_only},
        "sentences": "catalogue stratified commands (10 per intent), alternate ones per "
                     "intent to dev and test (disjoint)",
        "overlap_dev_test_sentences": len({s[0] for s in split_sentences(cat, "dev", nd)}
                                          & {s[0] for s in split_sentences(cat, "test", nt)}),
    }}
    # ---- choose on dev -------------------------------------------------------------------
    cands = {"pocketsphinx": choose(dev, "pocketsphinx", parse),
             "moonshine-tiny": choose(dev, "tiny", parse, hybrid="moonshine"),
             "hybrid-tiny": choose([r for r in dev], "tiny", parse, hybrid="ms_first"),
             "hybrid-tiny-ps-first": choose(dev, "tiny", parse, hybrid="ps_first")}
    dev_base = [r for r in dev if "base" in r]
    cands["moonshine-base"] = choose(dev_base, "base", parse, hybrid="moonshine")
    cands["hybrid-base"] = choose(dev_base, "base", parse, hybrid="ms_first")
    full = ("pocketsphinx", "moonshine-tiny", "hybrid-tiny", "hybrid-tiny-ps-first")
    default = max(full, key=lambda k: (cands[k][1]["mean"], -cands[k][1]["false_accepts"]))
    rep["choice"] = {
        "chosen_on": "dev", "default": default, "default_rule": cands[default][0].as_dict(),
        "rule": "best mean dev accuracy (intent and slots, both families, 10 and 5 dB) with "
                "0 false accepts on the dev chatter; base-en candidates were scored on the "
                "dev subset that base decoded (too slow here for the full set) and are not "
                "default candidates",
        "dev_scores": {k: {"rule": r.as_dict(), **s} for k, (r, s) in cands.items()},
        "dev_base_subset_tiny": score(dev_base, cands["moonshine-tiny"][0], parse),
        "dev_base_subset_pocketsphinx": score(dev_base, Rule("pocketsphinx", "pocketsphinx"),
                                              parse),
    }
    # ---- test ----------------------------------------------------------------------------
    test_base = [r for r in test if "base" in r]
    res = {}
    for k, (rule, _) in cands.items():
        recs = test_base if "base" in k else test
        s = score(recs, rule, parse)
        chat = [r for r in recs if r["family"] == "chatter"]
        s["chatter_false_accepts"] = sum(int(decide(r, rule)[0]) for r in chat)
        s["chatter_minutes"] = round(sum(r.get("seconds", len(r["text"].split()) / 2.5)
                                         for r in chat) / 60.0, 2)
        s["chatter_false_accepts_per_10_min"] = round(
            10.0 * s["chatter_false_accepts"] / max(s["chatter_minutes"], 1e-9), 2)
        for name, segs in real.items():
            segs = [r for r in segs if rule.backend in r or rule.backend == "pocketsphinx"]
            s[f"false_accepts_{name}"] = sum(int(decide(r, rule)[0]) for r in segs)
            s[f"segments_{name}"] = len(segs)
            s[f"examples_{name}"] = [decide(r, rule)[1] for r in segs if decide(r, rule)[0]][:3]
        s["subset"] = "base-en subset (10 dB)" if "base" in k else "full test set"
        res[k] = s
    res["base_subset_tiny"] = score(test_base, cands["moonshine-tiny"][0], parse)
    res["base_subset_hybrid_tiny"] = score(test_base, cands["hybrid-tiny"][0], parse)
    res["base_subset_pocketsphinx"] = score(test_base, Rule("pocketsphinx", "pocketsphinx"),
                                            parse)
    rep["test"] = res
    # ---- decode cost per backend (end-of-segment work, from the test records) ------------
    dec = {"pocketsphinx": [r["ps"]["decode_s"] for r in test],
           "moonshine-tiny": [r["tiny"]["decode_s"] for r in test],
           "moonshine-base": [r["base"]["decode_s"] for r in test if "base" in r]}
    rep["decode_ms"] = {k: {"p50": _p(v, 50), "p95": _p(v, 95), "n": len(v)}
                        for k, v in dec.items()}
    rep["decode_ms"]["definition"] = ("whole-utterance decode per test record (pocketsphinx: "
                                      "grammar + spotter over the whole file; Moonshine: "
                                      "encoder + free and constrained decode)")
    rep["speed"] = _speed(be, default, cands, quick, leak_n)
    rep["elapsed_s"] = round(time.time() - t0, 1)
    rep["load_avg_at_end"] = os.getloadavg()
    return rep


def cached_leak_check(asr, n: int) -> dict:  # noqa: ANN001 - a MoonshineASR
    """``leak_check`` of Moonshine tiny + catalogue (the new code) on a 1.6 s Piper command,
    cached in the records folder (it takes minutes)."""
    import json

    from speech.natural import PIPER_TEST, cache_dir, natural_sample

    path = cache_dir() / f"leak_{asr.name}_{n}.json"
    if path.exists():
        return json.loads(path.read_text())
    x = natural_sample("copilot hide the overlays", PIPER_TEST[0], 10.0, 99).audio
    res = leak_check(asr, x, n) | {"backend": asr.name}
    path.write_text(json.dumps(res))
    return res


def build_default(be: Backends, default: str, rule: Rule):  # noqa: ANN201 - an ASR
    """The default recogniser as the copilot builds it, with the dev-chosen rule."""
    from copilot.cli_speech import catalogue_grammar
    from speech.asr import create_asr
    from speech.wakeword import DEFAULT_RESCUE

    ms_cfg = {"min_margin": rule.min_margin, "min_wake": rule.min_wake,
              "free_form": rule.free_form,
              "wake_rule": "neural" if rule.wake_rule == "neural" else "constraint"}
    if default.startswith("hybrid"):
        return create_asr("hybrid", ps_grammar=catalogue_grammar(),
                          ms_grammar=catalogue_grammar(competitors=False), size="tiny",
                          order=rule.hybrid, spotter=be.kws, rescue=DEFAULT_RESCUE,
                          ms_cfg=ms_cfg)
    if default.startswith("moonshine"):
        return create_asr("moonshine", grammar=catalogue_grammar(competitors=False),
                          size="tiny", **ms_cfg)
    return be.ps


def _speed(be: Backends, default: str, cands: dict, quick: bool, leak_n: int) -> dict:
    from speech.natural import PIPER_TEST, natural_sample, piper_joe
    from speech.tts import create_tts

    out: dict = {"load_avg_at_start": os.getloadavg()}
    asr = build_default(be, default, cands[default][0])
    if hasattr(asr, "warm_up"):
        asr.warm_up(natural_sample("we should send this for histology", PIPER_TEST[0], 15.0,
                                   77).audio)
    texts = ["copilot outline the cystic duct in red", "copilot mute alerts for ten minutes",
             "copilot where is the common bile duct", "copilot what phase are we in",
             "copilot is the critical view of safety reached", "copilot hide the overlays"]
    samples = [natural_sample(t, PIPER_TEST[i % len(PIPER_TEST)], 15.0, 88000 + i)
               for i, t in enumerate(texts * (1 if quick else 3))]
    # fed in real time (benchmarks.speech_latency): the default's speculative decode runs in
    # a background thread, which an offline replay cannot time; side by side in this run,
    # the same recogniser without speculation (Moonshine decodes after the close)
    out["default_listener"] = paced_latency(asr, samples)
    if getattr(asr, "speculate", False):
        asr.speculate = False
        out["default_listener_no_speculation"] = paced_latency(asr, samples)
        asr.speculate = True
    out["default_listener_offline_replay"] = listener_latency(asr, samples)
    tiny = be.ms["tiny"]
    out["moonshine_tiny_listener"] = listener_latency(tiny, samples[:6])
    out["leak_check"] = cached_leak_check(be.ms["tiny"], 50 if quick else leak_n)
    tts = create_tts("default")
    firsts = [tts.synthesize(TEN_WORDS).first_audio_s for _ in range(5 if quick else 20)]
    out["tts"] = {"backend": tts.name, "sentence": TEN_WORDS,
                  "first_audio_ms": {"p50": _p(firsts, 50), "p95": _p(firsts, 95)},
                  "definition": "create_tts('default').synthesize (the `copilot say` path): "
                                "call -> first audio block (Piper: first phrase of the "
                                "sentence, speech.tts.stream_pieces)"}
    esp = create_tts("espeak", speed=170)
    firsts = [esp.synthesize(TEN_WORDS).first_audio_s for _ in range(10)]
    out["tts_espeak_first_audio_ms"] = {"p50": _p(firsts, 50), "p95": _p(firsts, 95)}
    del piper_joe
    out["load_avg_at_end"] = os.getloadavg()
    return out


def goals(rep: dict) -> list[dict]:
    """The issue-19 goal rows (benchmarks/summary.py renders them)."""
    d = rep["choice"]["default"]
    t = rep["test"][d]
    acc = t["accuracy"]
    sp = rep["speed"]
    rows = []
    for fam, name in (("piper-joe", "Piper joe"), ("espeak-heldout", "held-out espeak")):
        for snr, target in (("10dB", 0.90), ("5dB", 0.80)):
            v = acc.get(fam, {}).get(snr, float("nan"))
            rows.append({"issue": 19, "name": f"right commands, {name}, {snr} (default {d}, "
                         "test)", "target": f">= {target}", "value": v,
                         "pass": bool(v >= target)})
    names = ("jfk.wav", "silero_vad_test.wav")
    if all(f"false_accepts_{n}" in t for n in names):  # both files were scored
        real = sum(t[f"false_accepts_{n}"] for n in names)
        rows.append({"issue": 19, "name": "false accepts on 71 s of real speech (../shared)",
                     "target": "0", "value": real, "pass": real == 0,
                     "note": f"{sum(t[f'segments_{n}'] for n in names)} VAD segments"})
    else:
        rows.append({"issue": 19, "name": "false accepts on 71 s of real speech (../shared)",
                     "target": "0", "value": None, "pass": False,
                     "note": "not measured: ../shared/data/real/speech was not found"})
    pa = t.get("false_accepts_pyannote_sample.wav")
    rows.append({"issue": 19, "name": "false accepts on pyannote sample.wav", "target": "0",
                 "value": pa, "pass": pa == 0,
                 **({} if pa is not None else {"note": "not measured: no sample.wav"})})
    c = t["chatter_false_accepts_per_10_min"]
    rows.append({"issue": 19, "name": "false accepts per 10 min of staff chatter (test)",
                 "target": "<= 1", "value": c, "pass": c <= 1.0})
    lat = sp["default_listener"]["speech_end_to_transcript_ms"]["p95"]
    rows.append({"issue": 19, "name": "speech end -> transcript p95 ms (default listener, "
                 "audio fed in real time)",
                 "target": "<= 300", "value": lat, "pass": bool(lat <= 300),
                 "note": f"load avg {sp['load_avg_at_start'][0]:.1f} on 2 cores"})
    g = sp["leak_check"]["growth_after_first_mb"]
    n = sp["leak_check"]["utterances"]
    rows.append({"issue": 19, "name": f"RSS growth over {n} utterances, Moonshine tiny + "
                 "catalogue (MB)", "target": "<= 20 over 1000", "value": g,
                 "pass": bool(g <= 20 and n >= 1000)})
    f = sp["tts"]["first_audio_ms"]["p95"]
    rows.append({"issue": 19, "name": f"copilot say first audio p95 ms ({sp['tts']['backend']})",
                 "target": "<= 150", "value": f, "pass": bool(f <= 150)})
    return rows



def _load_text(avg: object) -> str:
    """A load-average triple (or one value) as text; "not recorded" when absent."""
    if isinstance(avg, (list, tuple)) and avg:
        return ", ".join(f"{float(x):.1f}" for x in avg)
    return f"{float(avg):.1f}" if isinstance(avg, (int, float)) else "not recorded"

def markdown(rep: dict) -> str:
    """The natural-voice section of speech.md."""
    ch = rep["choice"]
    out = ["## Natural voices (issue 19)", "",
           f"Settings chosen on **dev**; numbers below on **test**. Default: "
           f"**{ch['default']}** ({ch['default_rule']}).", "",
           "| backend | Piper joe 15/10/5 dB | held-out espeak 15/10/5 dB | chatter FA | "
           "real FA (jfk, silero, pyannote) | set |", "|---|---|---|---|---|---|"]
    for k, s in rep["test"].items():
        if "false_accepts_jfk.wav" not in s and "chatter_false_accepts" not in s:
            continue
        a = s["accuracy"]

        def row(fam: str, a: dict = a) -> str:
            return " / ".join(f"{a.get(fam, {}).get(x, float('nan')):.2f}"
                              for x in ("15dB", "10dB", "5dB"))
        out.append(f"| {k} | {row('piper-joe')} | {row('espeak-heldout')} | "
                   f"{s['chatter_false_accepts']} | {s.get('false_accepts_jfk.wav')}, "
                   f"{s.get('false_accepts_silero_vad_test.wav')}, "
                   f"{s.get('false_accepts_pyannote_sample.wav')} | {s['subset']} |")
    sp = rep["speed"]
    def lat(key: str) -> str:
        v = sp.get(key) or {}
        return str(v.get("speech_end_to_transcript_ms", "not measured"))

    out += ["", f"Speed (load average {sp['load_avg_at_start']}): last spoken sample -> "
            f"transcript (ms), default listener fed in real time {lat('default_listener')}, "
            f"the same without speculation {lat('default_listener_no_speculation')}, "
            f"offline replay {lat('default_listener_offline_replay')}; Moonshine tiny "
            f"alone (offline replay) {lat('moonshine_tiny_listener')}; "
            f"decode per record {rep['decode_ms']}.", "",
            f"Leak check: {sp['leak_check']}.", "",
            f"Voice: {sp['tts']['backend']}, first audio {sp['tts']['first_audio_ms']} "
            f"(espeak-ng: {sp['tts_espeak_first_audio_ms']}).", "",
            f"Sets: {rep['sets']['records']} records (dev: {SIZES['dev'][0]} commands per "
            "family and SNR at 10 / 5 dB + the chatter lines and 60 hard negatives; test: "
            f"{SIZES['test'][0]} per family and SNR at 15 / 10 / 5 dB + the chatter lines: one "
            f"test error is {100 / SIZES['test'][0]:.1f} points). Timings were measured on a "
            "shared 2-core machine (load average at start "
            f"{_load_text(sp.get('load_avg_at_start'))}, "
            f"at end {_load_text(rep.get('load_avg_at_end'))}): under load they are far from "
            "idle-machine values. Moonshine base-en only on a small subset (its decode takes "
            "seconds per utterance on 2 cores).",
            "", "Goals:", ""]
    out += [f"- {g['name']}: {g['value']} (target {g['target']}) "
            f"{'PASS' if g['pass'] else 'FAIL'}" for g in rep.get("goals", [])]
    return "\n".join(out) + "\n"
