"""The brain benchmark's Markdown page (``results/brain_accuracy.md``)."""

from __future__ import annotations

import json
from typing import Any


def render_md(r: dict[str, Any]) -> str:
    """The results as a Markdown page."""
    s = r["summary"]
    lines = [
        "# Brain accuracy (offline: vision every k frames + listener + brain)", "",
        f"Command: `{r['command']}`  ",
        f"Machine: {r['machine'].get('cpu', '')}, {r['machine'].get('os', '')}; "
        f"commit {r['machine'].get('git', {}).get('commit', '')[:10]}  ",
        f"Settings: {json.dumps(r['settings']['seconds'])} s feeds, "
        f"{r['settings']['size']} at {r['settings']['fps']} fps, vision every "
        f"{r['settings']['every']} frames, seeds {r['settings']['seeds']}  ",
        f"**Split: {r.get('split', 'not recorded')}** (test seeds {r.get('test_seeds')} were "
        f"never used for development; dev seeds {r.get('dev_seeds')} are the ones the fixes "
        f"were made on). Expected answers: {r.get('expected_answers', 'not recorded')}.", "",
        "| metric | value | target |", "| --- | --- | --- |",
        f"| scripted queries | {s['queries']} | |",
        f"| intent accuracy | {s['intent_accuracy']} | 1.0 |",
        f"| answer fact accuracy | {s['fact_accuracy']} | 1.0 |",
        f"| intent and slots as spoken (e.g. the minutes asked about) | "
        f"{s.get('intent_and_slot_accuracy')} | |",
        f"| queries the recogniser accepted | {s['heard_queries']} | |",
        f"| intent accuracy on accepted queries | {s['intent_accuracy_heard']} | |",
        f"| intent accuracy, perfect transcripts (brain alone) | "
        f"{s['text_intent_accuracy']} | 1.0 |",
        f"| fact accuracy, perfect transcripts (brain alone) | {s['text_fact_accuracy']} | |",
        f"| scripted alert events | {s['scripted_events']} | |",
        f"| alert recall | {s['alert_recall']} | 1.0 |",
        f"| alerts raised | {s['alerts']} | |",
        f"| unscripted alert fraction | {s['unscripted_alert_fraction']} | <= 0.10 |",
        f"| chatter triggers | {s['chatter_triggers']} | 0 |",
        f"| detection delay (event -> alert, media s) median / max | "
        f"{s['detection_delay_s']['median']} / {s['detection_delay_s']['max']} | |",
        f"| brain.on_findings ms p50 / p95 | {s['on_findings_ms']['p50']} / "
        f"{s['on_findings_ms']['p95']} | < 2 |", "",
        "## Per feed", ""]
    for f in r["feeds"]:
        lines.append(f"### {f['feed']} (events {f['events_spec']})")
        lines.append("")
        lines.append("| query | heard | intent | answer | facts ok | facts ok, perfect "
                     "transcript |")
        lines.append("| --- | --- | --- | --- | --- | --- |")
        tq = {x["text"] + str(x["t_s"]): x for x in f.get("text_queries", [])}
        for q in f["queries"]:
            t = tq.get(q["text"] + str(q["t_s"]), {})
            lines.append(f"| {q['text']} | {q['heard']} | {q['intent']} | "
                         f"{(q['answer'] or '').replace('|', '/')} | {q['facts_ok']} | "
                         f"{t.get('facts_ok')} |")
        lines.append("")
        lines.append("| event | t (s) | alert | delay (s) |")
        lines.append("| --- | --- | --- | --- |")
        for e in f["events"]:
            a = e["alert"]
            lines.append(f"| {e['kind']} | {e['time_s']} | {a['text'] if a else 'MISSED'} | "
                         f"{a['delay_s'] if a else ''} |")
        if f["unscripted"]:
            lines.append("")
            lines.append("Unscripted alerts: " + "; ".join(
                f"{u['t_s']:.1f} s {u['text']}" for u in f["unscripted"]))
        if f["chatter_triggers"]:
            lines.append("")
            lines.append("Chatter triggers: " + "; ".join(
                c["chatter"] for c in f["chatter_triggers"]))
        lines.append("")
    return "\n".join(lines) + "\n"
