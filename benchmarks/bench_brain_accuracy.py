"""Brain accuracy offline: vision every k frames + listener over audio.wav + the brain.

No video loop and no voice: frames are decoded and analysed in order, the utterances of
``audio.wav`` go through the real listener (VAD, wake word, ASR), and both streams reach the
brain in media-time order (a transcript is handled once every frame before its end has been).
Scored against the feed's truth:

- intent accuracy: scripted addressed queries whose answer has the expected intent;
- fact accuracy: scripted queries whose answer contains every expected fact
  (``copilot.feeds.fact_in_answer``);
- alert recall: scripted alert-worthy events (``copilot.alerts.RULE_EVENTS``) with an alert
  whose rule fits them in [event - 4 s, event + 8 s] (segments: any time after; the rule and
  the window: ``benchmarks.copilot_bench.scoring``, shared with ``copilot bench``);
- unscripted fraction: alerts matching no scripted event / all alerts (target <= 0.10);
- chatter triggers: brain outputs for utterances overlapping a non-addressed line (target 0).

Seeds (issue 20): DEV_SEEDS are the feeds the brain's and the listener's fixes were made
and checked on; TEST_SEEDS were drawn for this benchmark and never used for development.
``--split test`` (the default) reports on the test seeds; a new test list is drawn whenever
the old one has been looked at while changing the brain. Expected answers come from the
feed's own scene truth (``copilot.feeds``), not from the reasoner's tables.

Run: ``python -m benchmarks.bench_brain_accuracy [--split test|dev] [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.brain_report import render_md
from benchmarks.copilot_bench.scoring import match_brain_alerts, scripted_alert_events
from benchmarks.paths import results_dir
from copilot.stats import percentile

#: Events scripted per scenario for the acceptance feeds (times as fractions of the length).
SCRIPTS = {
    "cholecystectomy": [
        ["clip_before_cvs@0.45", "bleeding@0.7", "large_vessel@0.25"],
        ["bleeding@0.55", "large_vessel@0.3", "skip_phase:GallbladderPackaging"],
    ],
    "bowel-survey": [
        ["skip_segment:jejunum", "large_vessel@0.25", "brief_segment:caecum"],
        ["skip_segment:transverse_colon", "large_vessel@0.6"],
    ],
}
#: feeds the fixes were made on (two cholecystectomy, then two bowel-survey seeds per list):
#: the first list, and the first test list (7331...) once its errors had been read (the
#: pulsatility measure, copilot.pulse, was chosen on it)
DEV_SEEDS = (7101, 7102, 7201, 7202, 7331, 7332, 7431, 7432)
#: never used for development (drawn 2026-12-07, session 8; the lists before became dev)
TEST_SEEDS = (7541, 7542, 7641, 7642)


def events_for(spec: list[str], seconds: float) -> list[str]:
    """Turn ``kind@fraction`` into ``kind@seconds``."""
    out = []
    for s in spec:
        if "@" in s:
            k, f = s.split("@")
            out.append(f"{k}@{float(f) * seconds:.1f}")
        else:
            out.append(s)
    return out


def make_feeds(out_dir: Path, seconds: float, seeds: dict[str, list[int]],
               size: tuple[int, int] = (426, 240), fps: float = 15.0) -> list[Path]:
    """Generate (or reuse) the acceptance feeds; returns their folders."""
    from copilot.feeds import make_feed

    paths = []
    for scenario, seed_list in seeds.items():
        for i, seed in enumerate(seed_list):
            d = out_dir / f"{scenario}-{seed}"
            if not (d / "truth.json").is_file():
                make_feed(d, scenario, seconds, seed, size=size, fps=fps,
                          events=events_for(SCRIPTS[scenario][i % len(SCRIPTS[scenario])],
                                            seconds))
            paths.append(d)
    return paths


def analyse_video(feed: Path, every: int = 3, pipeline: Any = None
                  ) -> list[tuple[int, float, list]]:
    """Decode the feed and run the vision pipeline on every ``every``-th frame.

    Returns (frame_id, media_t_s, findings) with the brain's adapter mapping.
    """
    from copilot.brain import findings_from_result
    from vision.modelio import SYNTHETIC_MODEL_DIR
    from vision.pipeline import VisionPipeline
    from vision.sources import open_source

    # the feeds are synthetic: the model the copilot uses for them (copilot.validity)
    pipe = pipeline or VisionPipeline.load(SYNTHETIC_MODEL_DIR)
    pipe.reset()
    out = []
    src = open_source(str(feed / "video.mp4"))
    try:
        for i, t, rgb in src:
            if i % every:
                continue
            res = pipe.process(rgb, frame_id=i, timestamp_s=t)
            out.append((i, float(t), findings_from_result(res, i, float(t))))
    finally:
        src.close()
    return out


def listen(feed: Path, listener: Any = None) -> list[Any]:
    """The real listener over audio.wav -> ``copilot.messages.Transcript`` messages."""
    from copilot.cli_speech import build_listener
    from copilot.messages import Transcript
    from speech.audio import load_audio

    lst = listener or build_listener()
    audio = load_audio(str(feed / "audio.wav"))
    out = []
    for k, tr in enumerate(lst.process(audio)):
        out.append(Transcript(
            t_ns=0, trace_id=f"u{k}", media_t_s=tr.end_s,
            text=tr.text if tr.accepted else "", confidence=float(tr.confidence),
            start_s=float(tr.start_s), end_s=float(tr.end_s),
            nbest=list(tr.nbest) if tr.accepted else [], speaker_score=tr.speaker_score,
            accepted=bool(tr.accepted), reason=str(tr.reason or "")))
    return out


def truth_transcripts(truth: dict, confidence: float = 0.9) -> list[Any]:
    """The truth's utterances as transcripts (perfect ASR; chatter not addressed)."""
    from copilot.messages import Transcript

    out = []
    for k, u in enumerate(truth["utterances"]):
        out.append(Transcript(
            t_ns=0, trace_id=f"t{k}", media_t_s=u["end_s"],
            text=u["text"] if u["addressed"] else "", confidence=confidence,
            start_s=u["start_s"], end_s=u["end_s"], accepted=bool(u["addressed"])))
    return out


@dataclass
class RunOutput:
    """What the brain produced for one feed."""

    alerts: list[Any] = field(default_factory=list)
    replies: list[tuple[Any, list[Any]]] = field(default_factory=list)  # transcript, messages
    on_findings_ms: list[float] = field(default_factory=list)


def run_brain(brain: Any, frames: list[tuple[int, float, list]], transcripts: list[Any],
              duration_s: float) -> RunOutput:
    """Feed findings and transcripts to ``brain`` in media-time order, then ``finish``."""
    from copilot.messages import Alert

    out = RunOutput()
    trs = sorted(transcripts, key=lambda t: t.end_s)
    k = 0
    for fid, t, findings in frames:
        while k < len(trs) and trs[k].end_s <= t:
            msgs = brain.on_transcript(trs[k], trs[k].accepted)
            out.replies.append((trs[k], msgs))
            out.alerts.extend(m for m in msgs if isinstance(m, Alert))
            k += 1
        t0 = time.perf_counter()
        msgs = brain.on_findings(fid, t, findings)
        out.on_findings_ms.append((time.perf_counter() - t0) * 1e3)
        out.alerts.extend(m for m in msgs if isinstance(m, Alert))
    for tr in trs[k:]:
        msgs = brain.on_transcript(tr, tr.accepted)
        out.replies.append((tr, msgs))
    out.alerts.extend(m for m in brain.finish(duration_s) if isinstance(m, Alert))
    return out


def score(truth: dict, run: RunOutput) -> dict[str, Any]:
    """Compare one run with the truth (see the module docstring)."""
    from copilot.feeds import fact_in_answer
    from copilot.messages import Answer
    queries = []
    taken: set[int] = set()
    for u in truth["utterances"]:
        if not u["addressed"]:
            continue
        # the accepted transcript overlapping this line most (each transcript used once)
        best, best_ov = None, 0.0
        for k, (tr, _msgs) in enumerate(run.replies):
            ov = min(tr.end_s, u["end_s"]) - max(tr.start_s, u["start_s"])
            if tr.accepted and k not in taken and ov > best_ov:
                best, best_ov = k, ov
        reply = None
        if best is not None:
            taken.add(best)
            reply = run.replies[best]
        ans = next((m for m in reply[1] if isinstance(m, Answer)), None) if reply else None
        intent = getattr(ans, "intent", None) if ans else None
        facts_ok = bool(ans) and all(fact_in_answer(f, ans.text) for f in u["expected_facts"])
        # the slots the brain understood (e.g. the minutes of "in the last fifteen minutes")
        slots_ok = (intent == u["intent"]
                    and getattr(ans, "slots", None) == (u.get("slots") or {}))
        queries.append({"t_s": u["start_s"], "text": u["text"], "expected_intent": u["intent"],
                        "heard": reply[0].text if reply else None,
                        "intent": intent, "intent_ok": intent == u["intent"],
                        "slots_ok": slots_ok,
                        "facts": u["expected_facts"], "answer": ans.text if ans else None,
                        "facts_ok": facts_ok and intent == u["intent"]})
    events = scripted_alert_events(truth)
    used = match_brain_alerts(events, run.alerts)
    unscripted = [{"rule": a.rule, "t_s": a.media_t_s, "text": a.text}
                  for i, a in enumerate(run.alerts) if i not in used]
    chatter = [u for u in truth["utterances"] if not u["addressed"]]
    triggers = []
    for tr, msgs in run.replies:
        if not msgs:
            continue
        for u in chatter:
            if tr.start_s < u["end_s"] and tr.end_s > u["start_s"]:
                triggers.append({"chatter": u["text"], "heard": tr.text,
                                 "outputs": [type(m).__name__ for m in msgs]})
    return {"queries": queries, "events": [{k: e[k] for k in ("kind", "time_s", "rule", "alert")}
                                           for e in events],
            "unscripted": unscripted, "n_alerts": len(run.alerts), "chatter_triggers": triggers}


def summarise(per_feed: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over feeds."""
    q = [x for f in per_feed for x in f["queries"]]
    ev = [x for f in per_feed for x in f["events"]]
    n_alerts = sum(f["n_alerts"] for f in per_feed)
    n_un = sum(len(f["unscripted"]) for f in per_feed)
    tq = [x for f in per_feed for x in f.get("text_queries", [])]
    heard = [x for x in q if x["heard"]]
    delays = sorted(e["alert"]["delay_s"] for e in ev
                    if e["alert"] and e["rule"] != "segment_missed")
    return {
        "queries": len(q),
        "intent_accuracy": round(sum(x["intent_ok"] for x in q) / max(1, len(q)), 4),
        "fact_accuracy": round(sum(x["facts_ok"] for x in q) / max(1, len(q)), 4),
        "intent_and_slot_accuracy": round(sum(x.get("slots_ok", False) for x in q)
                                          / max(1, len(q)), 4),
        "heard_queries": len(heard),
        "intent_accuracy_heard": round(sum(x["intent_ok"] for x in heard) / max(1, len(heard)),
                                       4),
        "text_intent_accuracy": round(sum(x["intent_ok"] for x in tq) / max(1, len(tq)), 4)
        if tq else None,
        "text_fact_accuracy": round(sum(x["facts_ok"] for x in tq) / max(1, len(tq)), 4)
        if tq else None,
        "scripted_events": len(ev),
        "alert_recall": round(sum(e["alert"] is not None for e in ev) / max(1, len(ev)), 4),
        "alerts": n_alerts,
        "unscripted_alert_fraction": round(n_un / max(1, n_alerts), 4),
        "chatter_triggers": sum(len(f["chatter_triggers"]) for f in per_feed),
        "detection_delay_s": {"median": percentile(delays, 50, method="index"),
                              "max": delays[-1] if delays else None},
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write benchmarks/results/brain_accuracy.{json,md}."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--feeds-dir", type=Path, default=Path("/tmp/brain_bench_feeds"))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--every", type=int, default=3)
    ap.add_argument("--size", default="426x240")
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--split", choices=("test", "dev"), default="test",
                    help="TEST_SEEDS (never used for development) or DEV_SEEDS")
    ap.add_argument("--seeds", default=None,
                    help="override: two cholecystectomy seeds then two bowel-survey seeds")
    ap.add_argument("--out", type=Path, default=results_dir())
    args = ap.parse_args(argv)
    from benchmarks.machine import machine_info
    from copilot.brain import Brain
    from copilot.cli_speech import build_listener
    from copilot.feeds import load_truth
    from copilot.session import SessionLog
    from vision.pipeline import VisionPipeline

    s = [int(x) for x in args.seeds.split(",")] if args.seeds else \
        list(TEST_SEEDS if args.split == "test" else DEV_SEEDS)
    split = "custom" if args.seeds else args.split
    w, h = (int(v) for v in args.size.split("x"))
    feeds = make_feeds(args.feeds_dir, args.seconds,
                       {"cholecystectomy": [x for i, x in enumerate(s) if i // 2 % 2 == 0],
                        "bowel-survey": [x for i, x in enumerate(s) if i // 2 % 2 == 1]},
                       (w, h), args.fps)
    from vision.modelio import SYNTHETIC_MODEL_DIR

    pipe = VisionPipeline.load(SYNTHETIC_MODEL_DIR)  # as the copilot does on synthetic feeds
    per_feed = []
    fmss: list[float] = []
    for feed in feeds:
        truth = load_truth(feed)
        t0 = time.perf_counter()
        frames = analyse_video(feed, args.every, pipe)
        t1 = time.perf_counter()
        trs = listen(feed, build_listener())
        t2 = time.perf_counter()
        with SessionLog(args.feeds_dir / f"{feed.name}.session.jsonl") as log:
            brain = Brain(scenario=truth["scenario"], session=log)
            run = run_brain(brain, frames, trs, truth["duration_s"])
        fmss.extend(run.on_findings_ms)
        sc = score(truth, run)
        # the same frames with perfect transcripts: the brain's own share of the errors
        text_run = run_brain(Brain(scenario=truth["scenario"]), frames,
                             truth_transcripts(truth), truth["duration_s"])
        sc["text_queries"] = score(truth, text_run)["queries"]
        sc.update({"feed": feed.name, "scenario": truth["scenario"], "seed": truth["seed"],
                   "events_spec": truth.get("options", {}).get("events"),
                   "vision_s": round(t1 - t0, 2), "listener_s": round(t2 - t1, 2)})
        per_feed.append(sc)
        print(feed.name, json.dumps(summarise([sc])))
    fmss.sort()
    total = summarise(per_feed)
    total["on_findings_ms"] = {"p50": round(percentile(fmss, 50, method="index"), 3),
                               "p95": round(percentile(fmss, 95, method="index"), 3)}
    cmd = "python -m benchmarks.bench_brain_accuracy " + " ".join(argv or [])
    result = {"benchmark": "brain_accuracy", "command": cmd.strip(), "machine": machine_info(),
              "settings": {"seconds": args.seconds, "every": args.every, "size": args.size,
                           "fps": args.fps, "seeds": s, "scripts": SCRIPTS},
              "split": split, "dev_seeds": list(DEV_SEEDS), "test_seeds": list(TEST_SEEDS),
              "expected_answers": "from the feed's scene truth (copilot.feeds)",
              "targets": {"unscripted_alert_fraction": "<= 0.10", "chatter_triggers": "0",
                          "intent_accuracy": "1.0", "fact_accuracy": "1.0",
                          "alert_recall": "1.0"},
              "summary": total, "feeds": per_feed,
              "goals": [{"issue": 20, "name": f"brain bench ({split} seeds {s}): answers with "
                         "the expected facts, expected from the scene truth",
                         "target": "= 1.0", "value": total["fact_accuracy"],
                         "pass": total["fact_accuracy"] >= 1.0,
                         "note": "test seeds never used for development" if split == "test"
                         else "NOT a test split"}]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "brain_accuracy.json").write_text(json.dumps(result, indent=1, default=str))
    (args.out / "brain_accuracy.md").write_text(render_md(result))
    print(json.dumps(total, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
