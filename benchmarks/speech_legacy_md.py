"""Markdown of the espeak-ng / pocketsphinx sections of the speech benchmark
(benchmarks/bench_speech.py); the natural-voice section is benchmarks/speech_report.py."""

from __future__ import annotations


def markdown(r: dict) -> str:
    """Human-readable summary of a report."""
    a15, a5 = r["command_accuracy"]["15dB"], r["command_accuracy"]["5dB"]
    fa = r["false_accepts"]
    sp = r["speed"]
    se = sp["speech_end_to_transcript_ms"]
    out = [
        "# Speech benchmark", "",
        f"Command: `{r['command']}`  ",
        f"Machine: {r['machine']['cpu_count']} CPUs, {r['machine']['platform']}, Python "
        f"{r['machine']['python']}, load average at start {r['machine']['load_avg_at_start']}"
        " (shared machine: wall times are inflated; CPU times are per thread)", "",
        f"{r['test_set'].get('set', 'test').capitalize()} set: "
        f"{r['test_set']['commands']} catalogue commands x 2 SNRs ("
        + (f"slot values stratified: {r['test_set']['structures']} structures, "
           f"{r['test_set']['minutes_values']} numbers of minutes, colours, cues and "
           "relations varied; "
           if r['test_set'].get('slot_sampling') == 'stratified' else
           "each template's first slot values: structure liver, minutes one; ")
        + "each slot value in a command is scored), voices "
        f"{', '.join(r['test_set']['command_voices'])}; noise: {r['test_set']['noise']}.", "",
        f"Recogniser: pocketsphinx grammar as a {r['recogniser']['search'].upper()} "
        f"(minimal word automaton), decoder {r['recogniser']['decoder']}, wide-beam second "
        f"pass when no grammar path: {r['recogniser']['second_pass']}, noise suppressor "
        f"{r['recogniser'].get('denoiser', 'wiener')}: {r['recogniser']['denoise']} (auto: on "
        f"when the utterance's first 0.8 s estimate below "
        f"{r['recogniser'].get('denoise_switch_snr_db')} dB; after a clean start the denoised "
        f"decoder runs alongside and is taken when the suppressor's removed share of a 1 s "
        f"window rises {r['recogniser'].get('shadow_noise_rise_db')} dB over the start's and "
        f"reaches {r['recogniser'].get('shadow_share_min_db')} dB), in front of the keyphrase "
        f"spotter: {r['recogniser'].get('spotter_denoise', 'off')}, pronunciation variants next to "
        f"CMUdict's: {', '.join(r['recogniser'].get('pronunciation_variants', [])) or 'none'}"
        f" ({r['recogniser'].get('added_pronunciations', 0)} added)"
        + "".join(f", the grammar leaves out {slot} form(s) {', '.join(forms)} (the "
                  "catalogue the commands are drawn from keeps them)" for slot, forms in
                  r['recogniser'].get('grammar_left_out', {}).items() if forms)
        + ". These settings and the "
        "listener's end-of-utterance rules were chosen on a separate dev set (speech/testset.py "
        "DEV_VOICES / DEV_CHATTER_VOICES, other seeds), never on this test set; the wake "
        "threshold and rescue are calibrated below.", "",
        "## Command accuracy (exact intent and slots)", "",
        "| mode | 15 dB | 5 dB | false accepts / 10 min speech | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for k, name in (("wake_both", "wake slot AND (spotter OR strong wake slot) (default)"),
                    ("grammar_wake", "grammar wake slot only"),
                    ("wake_either", "wake slot OR keyphrase spotter"),
                    ("keyphrase_gate", "keyphrase spotting gate, no wake slot"),
                    ("push_to_talk", "push-to-talk (no wake check)")):
        out.append(f"| {name} | {a15[k]:.1%} | {a5[k]:.1%} | "
                   f"{fa['per_10_min_of_speech'][k]} ({fa['counts'][k]}) | >= 95 %, >= 90 %, "
                   "<= 1 |")
    real = " + real sample.wav" if fa.get("real_sample") else ""
    out += ["", f"Negatives: {fa['negative_utterances']} chatter utterances{real} "
            f"({fa['negative_speech_s']} s of speech, {fa['negative_audio_s']} s audio). "
            f"{fa['note']}.", "",
            f"Wake calibration: spotter threshold {r['wake_calibration']['chosen_threshold']:g}"
            f", wake-slot rescue score {r['wake_calibration'].get('chosen_rescue')} "
            f"({r['wake_calibration']['rule']}).", "",
            "| rescue score (at the chosen spotter threshold) | calibration recall | "
            "calibration chatter accepted |", "| --- | --- | --- |"]
    for sw in r["wake_calibration"]["sweep"]:
        if sw["threshold"] == r["wake_calibration"]["chosen_threshold"]:
            out.append(f"| {sw['rescue']} | {sw['recall']:.1%} | {sw['false_alarms']} of "
                       f"{sw['negatives']} |")
    out += ["",
            "## Speed", "",
            "| measure | value | target |", "| --- | --- | --- |",
            f"| VAD time per 32 ms chunk / 32 ms (median, p95) | "
            f"{sp['vad_ratio_to_32ms']['median']:.4f}, {sp['vad_ratio_to_32ms']['p95']:.4f} "
            f"| <= 0.05 |",
            f"| grammar ASR real-time factor (wall, CPU) | {sp['grammar_asr_rtf']['wall']:.3f},"
            f" {sp['grammar_asr_rtf']['cpu']:.3f} | <= 0.1 |",
            "| whole pipeline RTF, default listener (VAD + spotter + ASR; wall, CPU) | "
            f"{sp['pipeline_rtf']['wall']:.3f}, "
            f"{sp['pipeline_rtf']['cpu']:.3f} | |",
            f"| speech end -> final transcript p95 (p50, max), from the last spoken sample | "
            f"{se['p95']:.0f} ms ({se['p50']:.0f} ms, {se['max']:.0f} ms) | <= 300 ms |",
            f"| of which waiting for the end of the utterance, p95 | {se['wait_p95']:.0f} ms "
            f"({se['early_ends']} of {se['utterances']} utterances ended early on a final "
            f"grammar hypothesis; VAD hang-over otherwise {sp['vad_hangover_ms']:.0f} ms) | |",
            f"| processing after the end (close -> transcript), p95 (p50) | "
            f"{sp['final_latency_ms']['p95']:.0f} ms ({sp['final_latency_ms']['p50']:.0f} ms) "
            "| |",
            f"| espeak-ng time to first audio, 10 words (median, p95) | "
            f"{sp['tts_first_audio_ms']['median']:.1f} ms, {sp['tts_first_audio_ms']['p95']:.1f}"
            " ms | <= 100 ms |", "",
            "## Speaker check (Resemblyzer, cosine)", ""]
    for k, v in r["speaker"].items():
        out.append(f"- {k}: EER {v['eer']:.1%} at threshold {v['threshold']:.3f} "
                   f"({v['genuine']} genuine / {v['impostor']} impostor trials)")
    out += ["", "## Why the default misses commands (counts per SNR)", ""]
    for snr in ("15dB", "5dB"):
        causes = r["command_accuracy"][snr].get("error_causes_default", {})
        out.append(f"- {snr}: " + (", ".join(f"{k} {v}" for k, v in sorted(causes.items()))
                                   or "none"))
    out += ["", "## Recognition errors (default decision, first few)", ""]
    for snr in ("15dB", "5dB"):
        for e in r["command_accuracy"][snr]["errors"][:6]:
            out.append(f"- {snr} {e['voice']}: '{e['said']}' -> '{e['heard']}' "
                       f"({e.get('cause', e['reason'])})")
    return "\n".join(out) + "\n"
