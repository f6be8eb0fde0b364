"""Truth scoring of one run: phases, segments, commands, answers, alerts against ``truth.json``."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from copilot.alerts import RULE_EVENTS
from copilot.stats import stats_ms

#: Truth event kinds that should raise an alert: every kind some alert rule answers.
ALERT_KINDS = frozenset(k for kinds in RULE_EVENTS.values() for k in kinds)
EVENT_GROUP_S = 5.0  # same-kind truth events closer than this are one scripted event
#: copilot bench (whole app, real time): an alert within this of an event (media s) can match
ALERT_WINDOW_S = (-1.0, 15.0)
#: brain benchmark (offline brain): an alert within this of an event (media s) can match; a
#: missed segment's alert may come any time after the start of the window
BRAIN_WINDOW_S = (-4.0, 8.0)


# ----------------------------------------------------------------------------- event matching
def rule_fits(rule: str | None, kind: str) -> bool:
    """The one event-matching rule of both benchmarks: an alert can answer a truth event when
    the event's kind is one its rule declares in ``copilot.alerts.RULE_EVENTS``. A rule that
    declares no kind (``cvs_confirm_prompt``, an unknown or empty name) fits no event: its
    alerts count as unscripted."""
    return kind in RULE_EVENTS.get(rule or "", ())


# ----------------------------------------------------------------------------- truth matching
def scripted_events(truth: dict) -> list[dict[str, Any]]:
    """Truth events that should raise an alert (clips only before the CVS), grouped:
    same-kind events within EVENT_GROUP_S count once, at the first one."""
    out: list[dict[str, Any]] = []
    last: dict[str, float] = {}
    for e in sorted(truth.get("events", []), key=lambda e: e.get("time_s", 0.0)):
        kind = e.get("kind")
        if kind not in ALERT_KINDS:
            continue
        if kind == "clip_applied" and e.get("cvs_reached", True):
            continue
        t = float(e.get("time_s", 0.0))
        if kind in last and t - last[kind] < EVENT_GROUP_S:
            last[kind] = t
            continue
        last[kind] = t
        out.append(dict(e))
    return out


def _alert_time(a: dict[str, Any], fps: float) -> float | None:
    for key in ("media_t_s", "t_s", "time_s"):
        if isinstance(a.get(key), int | float):
            return float(a[key])
    if isinstance(a.get("frame_id"), int):
        return a["frame_id"] / fps
    return None


def match_alerts(events: list[dict], alerts: list[dict], fps: float) -> dict[str, Any]:
    """Greedy one-to-one matching of alerts to scripted events in time order.

    An alert matches an event when its media time is within ALERT_WINDOW_S of the event and
    its rule fits the event kind (``rule_fits``). Returns pairs,
    precision, recall and media-time latencies (s).
    """
    pairs: list[tuple[dict, dict]] = []
    free = sorted(((t, i) for i, a in enumerate(alerts)
                   if (t := _alert_time(a, fps)) is not None))
    taken: set[int] = set()
    for ev in events:
        t_ev = float(ev["time_s"])
        best = None
        for t, i in free:
            if i in taken or not (ALERT_WINDOW_S[0] <= t - t_ev <= ALERT_WINDOW_S[1]):
                continue
            if not rule_fits(str(alerts[i].get("rule", "")), ev["kind"]):
                continue
            best = i
            break
        if best is not None:
            taken.add(best)
            pairs.append((ev, alerts[best]))
    lat = [(_alert_time(a, fps) or 0.0) - float(e["time_s"]) for e, a in pairs]
    return {
        "pairs": pairs,
        "events": len(events),
        "alerts": len(alerts),
        "matched": len(pairs),
        "precision": round(len(pairs) / len(alerts), 4) if alerts else None,
        "recall": round(len(pairs) / len(events), 4) if events else None,
        "unscripted_fraction": round(1 - len(pairs) / len(alerts), 4) if alerts else None,
        "media_latency_s": stats_ms(x * 1000 for x in lat),
        "missed": [f"{e['kind']}@{e['time_s']}" for e in events
                   if all(e is not p[0] for p in pairs)],
    }


# ----------------------------------------------------------------------------- brain benchmark
def scripted_alert_events(truth: dict) -> list[dict[str, Any]]:
    """Truth events an alert should answer, one per incident (clips of one run grouped)."""
    kinds = {k: rule for rule, ks in RULE_EVENTS.items() for k in ks}
    out: list[dict[str, Any]] = []
    for e in truth["events"]:
        rule = kinds.get(e["kind"])
        if rule is None:
            continue
        if e["kind"] == "clip_applied" and e.get("cvs_reached", True):
            continue
        if rule == "clip_before_cvs" and any(o["rule"] == rule for o in out):
            continue  # the clips of one clipping count once
        out.append({**e, "rule": rule})
    return out


def match_brain_alerts(events: list[dict[str, Any]], alerts: list[Any]) -> set[int]:
    """The brain benchmark's matching: sets each event's ``alert`` (None: missed) and returns
    the indices of the alerts that answered an event. An alert (``.rule``, ``.media_t_s``,
    ``.text``) answers the first free event its rule fits (``rule_fits``) within
    BRAIN_WINDOW_S; a missed segment's alert must also name the segment, and one alert naming
    several missed segments answers each."""
    used: set[int] = set()
    for e in events:
        e["alert"] = None
        for i, a in enumerate(alerts):
            if i in used or not rule_fits(a.rule, e["kind"]):
                continue
            dt = (a.media_t_s or 0.0) - e["time_s"]
            ok = dt >= BRAIN_WINDOW_S[0] if e["rule"] == "segment_missed" else \
                BRAIN_WINDOW_S[0] <= dt <= BRAIN_WINDOW_S[1]
            if e["rule"] == "segment_missed":
                ok = ok and e["segment"] in a.text.replace(" ", "_") or \
                    ok and _says_segment(a.text, e["segment"])
            if ok:
                used.add(i)
                e["alert"] = {"t_s": a.media_t_s, "text": a.text, "delay_s": round(dt, 3)}
                break
    # one alert may name several segments: count it as matched for each
    for e in events:
        if e["alert"] is None and e["rule"] == "segment_missed":
            for i, a in enumerate(alerts):
                if rule_fits(a.rule, e["kind"]) and _says_segment(a.text, e["segment"]):
                    used.add(i)
                    e["alert"] = {"t_s": a.media_t_s, "text": a.text,
                                  "delay_s": round((a.media_t_s or 0) - e["time_s"], 3)}
                    break
    return used


def _says_segment(text: str, segment: str) -> bool:
    from copilot.feeds import fact_in_answer

    return fact_in_answer(segment, text)


# ----------------------------------------------------------------------------- spans
def _last_spoken_ns(u: dict[str, Any], truth: dict | None, speed: float) -> int | None:
    """Runtime-clock time of the last spoken sample of the truth utterance that the traced
    utterance ``u`` heard (None: no truth, no media times, or no overlapping utterance).

    The span's end ``t1_ns`` is the audio clock at media time ``end_s`` (realtime runs), so
    the clock's origin is t1_ns - end_s / speed and the truth's end maps onto it."""
    if truth is None or not isinstance(u.get("end_s"), int | float) or \
            not isinstance(u.get("start_s"), int | float):
        return None
    span = (float(u["start_s"]), float(u["end_s"]))
    heard = [t for t in truth.get("utterances", []) if t.get("addressed")
             and _overlaps(span, t, before=0.5, after=0.5)]
    if not heard:
        return None
    said = min(heard, key=lambda t: abs(float(t["end_s"]) - span[1]))
    origin = int(u["t1_ns"]) - span[1] / speed * 1e9
    return int(origin + float(said["end_s"]) / speed * 1e9)


def _overlaps(span: tuple[float, float], u: dict, before: float = 0.5, after: float = 4.0
              ) -> bool:
    return span[1] >= float(u["start_s"]) - before and span[0] <= float(u["end_s"]) + after


def _rec_span(r: dict[str, Any]) -> tuple[float, float] | None:
    """(start, end) media seconds of a session / transcript record, if it says."""
    s = r.get("start_s")
    e = r.get("end_s")
    if isinstance(s, int | float) and isinstance(e, int | float):
        return float(s), float(e)
    for key in ("media_t_s", "t_s"):
        if isinstance(r.get(key), int | float):
            return float(r[key]), float(r[key])
    return None


def _same_slots(got: dict | None, want: dict | None) -> bool:
    want = {k: v for k, v in (want or {}).items() if v is not None}
    got = {k: v for k, v in (got or {}).items() if v is not None}
    return got == want


_CATALOGUE: Any = None


def parse_command(text: str) -> tuple[str, dict] | None:
    """(intent, slots) of a recognised text by the shared catalogue (None: no command)."""
    global _CATALOGUE
    if not text:
        return None
    if _CATALOGUE is None:
        from kg_reasoning.catalogue import load_catalogue

        _CATALOGUE = load_catalogue()
    p = _CATALOGUE.parse(text)
    return (p.intent, dict(p.slots)) if p is not None else None


def command_accuracy(utterances: list[dict], commands: list[dict], duration_s: float
                     ) -> dict[str, Any]:
    """Commands heard (records with start/end or media time, and intent/slots or text) vs
    the addressed truth utterances: exact intent + slots accuracy, and wake false accepts
    (commands overlapping no addressed utterance) per hour of audio."""
    addressed = [u for u in utterances if u.get("addressed")]
    spans = [(_rec_span(c), c) for c in commands]
    matched_ids: set[int] = set()
    correct = 0
    rows = []
    for u in addressed:
        hit = None
        for k, (sp, c) in enumerate(spans):
            # a record with its own start / end must overlap the utterance; a point in time
            # (when it was logged) may come up to 4 s after the utterance's end
            after = 0.5 if "start_s" in c and "end_s" in c else 4.0
            if k not in matched_ids and sp is not None and _overlaps(sp, u, 0.5, after):
                hit = k
                break
        ok = False
        got = None
        if hit is not None:
            matched_ids.add(hit)
            c = spans[hit][1]
            if c.get("intent"):
                got = (str(c["intent"]), dict(c.get("slots") or {}))
            else:
                got = parse_command(str(c.get("text", "")))
            ok = got is not None and got[0] == u.get("intent") and _same_slots(
                got[1], u.get("slots"))
        correct += ok
        rows.append({"text": u.get("text"), "want": u.get("intent"), "got": got[0] if got else
                     None, "ok": bool(ok)})
    false_accepts = sum(1 for k in range(len(spans)) if k not in matched_ids)
    hours = duration_s / 3600 if duration_s else 0.0
    return {
        "commands": len(addressed),
        "correct": correct,
        "accuracy": round(correct / len(addressed), 4) if addressed else None,
        "false_accepts": false_accepts,
        "false_accepts_per_hour": round(false_accepts / hours, 2) if hours else None,
        "audio_s": round(duration_s, 2),
        "rows": rows,
    }


def answer_accuracy(utterances: list[dict], answers: list[dict]) -> dict[str, Any]:
    """Answers vs the expected facts of addressed questions (copilot.feeds.fact_in_answer):
    an answer belongs to the utterance whose question text it repeats, else the first answer
    in time from the utterance's start to 15 s after its end."""
    from copilot.feeds import fact_in_answer

    asked = [u for u in utterances if u.get("addressed") and u.get("expected_facts")]
    used: set[int] = set()
    rows = []
    for u in asked:
        pick = None
        for k, a in enumerate(answers):
            q = str(a.get("question", "")).lower().strip(" ?,.")
            if k not in used and q and q in str(u.get("text", "")).lower():
                pick = k
                break
        if pick is None:
            for k, a in enumerate(answers):
                sp = _rec_span(a)
                if k not in used and sp is not None and _overlaps(sp, u, 0.5, 15.0):
                    pick = k
                    break
        text = ""
        if pick is not None:
            used.add(pick)
            text = str(answers[pick].get("text", ""))
        facts = list(u["expected_facts"])
        ok = bool(text) and all(fact_in_answer(f, text) for f in facts)
        rows.append({"question": u.get("text"), "facts": facts, "answer": text[:200],
                     "ok": ok})
    good = sum(r["ok"] for r in rows)
    return {"questions": len(rows), "correct": good,
            "accuracy": round(good / len(rows), 4) if rows else None, "rows": rows}


def session_accuracy(session: list[dict], truth: dict) -> dict[str, Any]:
    """Accuracy of one run's session log against the feed's truth (tolerant of missing
    record types: a metric without data is None)."""
    fps = float(truth.get("fps", 30.0))
    fl = truth.get("frame_labels", {})
    n = int(truth.get("n_frames", 0))
    phase_names = list(truth.get("phase_names", []))
    regions = list(truth.get("regions", []))
    out: dict[str, Any] = {"session_records": len(session)}
    by_type: dict[str, list[dict]] = defaultdict(list)
    for r in session:
        by_type[str(r.get("type"))].append(r)

    def frame_of(o: dict) -> int | None:
        f = o.get("frame_id")
        if not isinstance(f, int):
            t = o.get("t_s", o.get("media_t_s"))
            f = int(round(float(t) * fps)) if isinstance(t, int | float) else None
        return f if f is not None and 0 <= f < n else None

    ph_ok = ph_n = seg_ok = seg_n = 0
    seg_names = set(regions) - {"abdominal_cavity", "out_of_body"}
    for o in by_type.get("obs", []):
        f = frame_of(o)
        if f is None:
            continue
        if o.get("kind") == "phase" and fl.get("phase") and fl["phase"][f] >= 0:
            ph_n += 1
            ph_ok += phase_names and o.get("name") == phase_names[fl["phase"][f]]
        if o.get("kind") == "region" and fl.get("region") and regions:
            true = regions[fl["region"][f]]
            if true in seg_names:
                seg_n += 1
                seg_ok += o.get("name") == true
    out["phase_accuracy"] = round(ph_ok / ph_n, 4) if ph_n else None
    out["phase_observations"] = ph_n
    out["bowel_segment_accuracy"] = round(seg_ok / seg_n, 4) if seg_n else None
    out["segment_observations"] = seg_n

    utts = truth.get("utterances", [])
    cmds = [r for r in by_type.get("transcript", []) if r.get("addressed", True) is not False]
    out["commands"] = command_accuracy(utts, cmds, float(truth.get("duration_s", 0.0)))
    out["answers"] = answer_accuracy(utts, by_type.get("answer", []))
    m = match_alerts(scripted_events(truth), by_type.get("alert", []), fps)
    out["alerts"] = {k: v for k, v in m.items() if k != "pairs"}
    out["chatter_triggered"] = sum(
        1 for u in utts if not u.get("addressed") for c in cmds
        if (sp := _rec_span(c)) is not None and _overlaps(sp, u, 0.0, 0.5))
    return out
