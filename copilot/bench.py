"""``copilot bench``: how fast and how right the copilot is on recorded feeds.

For every feed (a folder made by ``copilot feed make``; a plain video file works too, without
accuracy) the benchmark

1. runs the whole copilot (``copilot.app.run_copilot``) once per *variant* and repeat, the
   variants alternated round by round (order rotating) so machine noise hits all alike. A
   variant is one (vision backend, decoder, ASR backend); the first of each list is the
   baseline and each other name is tried with the baseline's other two choices;
2. reads each run's ``trace.jsonl`` (one monotonic clock) into latency statistics per stage
   and per end-to-end path (min / p50 / p95 / p99 / max, ms), throughput, dropped frames,
   CPU % and peak RSS (psutil, sampled in a thread), and its ``session.jsonl`` against the
   feed's ``truth.json`` (phase / bowel-segment accuracy, command accuracy, wake false
   accepts per hour, alert precision / recall / latency, answer correctness);
3. runs side-by-side component comparisons in the same process: vision backends frame by
   frame (preprocess / inference / post-process times, segmentation mIoU, phase and
   bowel-segment accuracy, CVS F1 against the masks), decoders round by round, ASR
   backends on the feed's audio (real-time factor, command accuracy, false accepts), and
   the video loop (``--fast`` passthrough + overlay) against the raw decoder.

Comparisons are reported as ratios (median of per-round / per-frame ratios). Feeds fan out
to a local process pool, or to Ray with ``ray_address``. Output: ``report.json`` (schema
``copilot/schemas/bench_report.schema.json``, documented in docs/bench_report.md),
``report.md`` and PNG plots.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from copilot.errors import CopilotError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "bench_report.schema.json"
BACKENDS = ("onnxruntime", "torch", "tensorrt")
DECODERS = ("pyav", "decord", "opencv")
ASR_BACKENDS = ("pocketsphinx", "faster-whisper")
MODES = ("fast", "realtime")

#: Per-stage spans of the trace (``stage.name``) and what the report calls them.
STAGE_SPANS: dict[str, str] = {
    "decode": "decode.frame",
    "preprocess": "vision.preprocess",
    "inference": "vision.inference",
    "postprocess": "vision.postprocess",
    "vision": "vision.process",
    "overlay": "overlay.compose",
    "sink": "sink.write",
    "frame_to_overlay": "video.frame_to_overlay",
    "vad": "speech.vad",
    "wake": "speech.wake",
    "asr": "speech.asr",
    "speech_chunk": "speech.process",
    "speech_end_to_transcript": "speech.final",
    "intent": "brain.intent",
    "reasoning": "brain.answer",
    "brain_findings": "brain.findings",
}
#: Video-path stages stacked per frame in the stage plot (ms per frame).
FRAME_STAGES = ("decode", "vision", "overlay", "sink")
#: End-to-end paths computed by joining spans on trace ids / frame ids.
JOINED_PATHS = ("tts_first_audio", "speech_end_to_answer_audio", "event_to_alert",
                "event_to_alert_audio", "end_of_speech_wait", "vad_end_to_answer_audio",
                "last_sample_to_transcript")
#: Truth event kinds a scripted event produces, and words an alert rule for it may contain.
ALERT_EVENTS: dict[str, tuple[str, ...]] = {
    "bleeding_onset": ("bleed", "blood", "haemorrh", "hemorrh"),
    "large_vessel": ("vessel", "fistula", "pulsat"),
    "clip_applied": ("clip", "cvs", "critical", "safety"),
    "phase_skipped": ("skip", "phase", "step"),
    "segment_missed": ("segment", "miss", "skip"),
    "segment_brief": ("segment", "brief", "short"),
}
EVENT_GROUP_S = 5.0  # same-kind truth events closer than this are one scripted event
ALERT_WINDOW_S = (-1.0, 15.0)  # an alert within this of an event (media s) can match it


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class Variant:
    """One configuration of the copilot: vision backend, decoder, ASR backend."""

    backend: str
    decoder: str
    asr: str

    @property
    def key(self) -> str:
        """``backend/decoder/asr``."""
        return f"{self.backend}/{self.decoder}/{self.asr}"


@dataclass
class BenchConfig:
    """What ``copilot bench`` runs (see the module docstring); times in seconds."""

    feeds: list[Path]
    out: Path
    backends: list[str] = field(default_factory=lambda: ["onnxruntime"])
    decoders: list[str] = field(default_factory=lambda: ["pyav"])
    asr: list[str] = field(default_factory=lambda: ["pocketsphinx"])
    repeat: int = 1
    mode: str = "realtime"
    ray: str | None = None
    workers: int | None = None
    asr_model_dir: Path | None = None
    max_seconds: float | None = None
    components: bool = True
    loop_check: bool = True
    vision_frames: int = 240
    decoder_rounds: int = 3
    progress: bool = True
    command: str = ""

    def check(self) -> None:
        """CopilotError (one line) on bad names, counts or missing feeds."""
        if not self.feeds:
            raise CopilotError("copilot bench needs at least one FEED")
        for f in self.feeds:
            if not Path(f).exists():
                raise CopilotError(f"feed not found: {f}")
            if Path(f).is_dir() and not (Path(f) / "video.mp4").is_file():
                raise CopilotError(f"{f} has no video.mp4 (not a feed folder?)")
        for names, allowed, what in ((self.backends, BACKENDS, "--backends"),
                                     (self.decoders, DECODERS, "--decoders"),
                                     (self.asr, ASR_BACKENDS, "--asr")):
            if not names:
                raise CopilotError(f"{what} is empty")
            bad = [n for n in names if n not in allowed]
            if bad:
                raise CopilotError(f"unknown {what} {', '.join(bad)}; choose from "
                                   f"{', '.join(allowed)}")
            if len(set(names)) != len(names):
                raise CopilotError(f"{what} lists a name twice")
        if self.repeat < 1:
            raise CopilotError("--repeat must be >= 1")
        if self.mode not in MODES:
            raise CopilotError(f"--mode must be fast or realtime, not {self.mode!r}")
        if self.workers is not None and self.workers < 0:
            raise CopilotError("--workers must be >= 0")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise CopilotError("--max-seconds must be > 0")
        if self.decoder_rounds < 1 or self.vision_frames < 1:
            raise CopilotError("--rounds and --vision-frames must be >= 1")

    def variants(self) -> list[Variant]:
        """Baseline first, then each other name on one axis with the baseline's others."""
        base = Variant(self.backends[0], self.decoders[0], self.asr[0])
        out = [base]
        out += [Variant(b, base.decoder, base.asr) for b in self.backends[1:]]
        out += [Variant(base.backend, d, base.asr) for d in self.decoders[1:]]
        out += [Variant(base.backend, base.decoder, a) for a in self.asr[1:]]
        return out


def parse_list(text: str | None, allowed: Iterable[str], what: str) -> list[str]:
    """``"a,b"`` -> ["a", "b"] (CopilotError for names outside ``allowed``)."""
    names = [x.strip() for x in (text or "").split(",") if x.strip()]
    bad = [n for n in names if n not in allowed]
    if bad:
        raise CopilotError(f"unknown {what} {', '.join(bad)}; choose from {', '.join(allowed)}")
    return names


# ----------------------------------------------------------------------------- statistics
def stats_ms(xs: Iterable[float]) -> dict[str, float] | None:
    """n, min, p50, p95, p99, max, mean of millisecond samples (None when empty)."""
    a = np.asarray([x for x in xs if x is not None and math.isfinite(x)], dtype=np.float64)
    if a.size == 0:
        return None
    q = np.percentile(a, [50, 95, 99])
    return {"n": int(a.size), "min": round(float(a.min()), 3), "p50": round(float(q[0]), 3),
            "p95": round(float(q[1]), 3), "p99": round(float(q[2]), 3),
            "max": round(float(a.max()), 3), "mean": round(float(a.mean()), 3)}


def median_ratio(a: list[float], b: list[float]) -> float | None:
    """Median of element-wise ``a[i] / b[i]`` (paired samples: same round / frame)."""
    r = [x / y for x, y in zip(a, b, strict=False) if y and x is not None and y is not None]
    return round(float(statistics.median(r)), 4) if r else None


class ResourceSampler:
    """CPU % (process CPU time / wall) and peak RSS (MiB) of this process while running."""

    def __init__(self, interval_s: float = 0.05) -> None:
        import psutil

        self.proc = psutil.Process()
        self.interval_s = interval_s
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)
            except Exception:  # noqa: BLE001 - sampling must never break a run
                pass
            self._stop.wait(self.interval_s)

    def __enter__(self) -> ResourceSampler:
        self.wall0 = time.perf_counter()
        t = self.proc.cpu_times()
        self.cpu0 = t.user + t.system
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)
        t = self.proc.cpu_times()
        self.wall_s = time.perf_counter() - self.wall0
        self.cpu_s = t.user + t.system - self.cpu0

    def as_dict(self) -> dict[str, float]:
        """cpu_percent (100 = one core busy), cpu_s, peak_rss_mb."""
        return {"cpu_percent": round(100 * self.cpu_s / self.wall_s, 1) if self.wall_s else 0.0,
                "cpu_s": round(self.cpu_s, 3), "peak_rss_mb": round(self.peak_rss / 2**20, 1)}


# ----------------------------------------------------------------------------- trace
def read_jsonl(path: Path | None) -> list[dict[str, Any]]:
    """Records of a JSONL file (missing file: []; a line cut by a crash is skipped)."""
    if path is None or not Path(path).is_file():
        return []
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
    return out


def trace_latencies(trace: list[dict[str, Any]], truth: dict | None = None, speed: float = 1.0
                    ) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Millisecond samples per named stage / path from trace records, plus join details.

    Stages: the ``dur_ms`` of the spans in STAGE_SPANS (vision sub-steps also from
    ``preprocess_ms`` / ``inference_ms`` / ``postprocess_ms`` attributes of vision.process).
    Joined paths (same clock): ``tts_first_audio`` (alert.raise / brain.answer end ->
    tts.first_audio of the same trace id), ``speech_end_to_answer_audio`` (the LAST SPOKEN
    SAMPLE of the command -> first audio of the answer; the last sample is the end of the
    truth utterance's voice on the audio clock, so the end-of-speech wait of the VAD /
    recogniser is inside it; without a truth, or in --fast runs where the audio has no
    clock, the utterance's end as the VAD closed it), ``end_of_speech_wait`` (last spoken
    sample -> the VAD / recogniser closing the utterance), ``vad_end_to_answer_audio``
    (utterance closed -> first audio of the answer: same trace id, else the first non-alert
    audio within 10 s after an accepted utterance), ``event_to_alert`` /
    ``event_to_alert_audio`` (decode of the truth event's frame -> alert.raise / its first
    audio; alerts matched to events as in :func:`match_alerts`), ``last_sample_to_transcript``
    (last spoken sample -> the final transcript; ``speech_end_to_transcript`` starts at the
    VAD's close).
    """
    samples: dict[str, list[float]] = defaultdict(list)
    by_key: dict[str, list[dict]] = defaultdict(list)
    for r in trace:
        by_key[f"{r.get('stage')}.{r.get('name')}"].append(r)
    for label, key in STAGE_SPANS.items():
        for r in by_key.get(key, ()):
            if r.get("t1_ns") != r.get("t0_ns") or r.get("dur_ms"):
                # a realtime decode span may include the pacing wait (attribute wait_ms)
                samples[label].append(float(r.get("dur_ms", 0.0)) - float(r.get("wait_ms", 0)))
    for r in by_key.get("vision.process", ()):
        for sub in ("preprocess", "inference", "postprocess"):
            if f"{sub}_ms" in r and "vision." + sub not in by_key:
                samples[sub].append(float(r[f"{sub}_ms"]))

    first_audio: dict[str, int] = {}
    for r in by_key.get("tts.first_audio", ()):
        first_audio.setdefault(str(r.get("trace_id")), int(r["t0_ns"]))
    alerts = by_key.get("alert.raise", [])
    alert_ids = {str(a.get("trace_id")) for a in alerts}
    for a in alerts:
        fa = first_audio.get(str(a.get("trace_id")))
        if fa is not None:
            samples["tts_first_audio"].append((fa - int(a["t1_ns"])) / 1e6)
    answers = by_key.get("brain.answer", [])
    answer_end = {str(a.get("trace_id")): int(a["t1_ns"]) for a in answers}

    # speech end -> first audio of the answer
    utts = sorted((u for u in by_key.get("speech.utterance", ()) if u.get("accepted", True)),
                  key=lambda u: u["t1_ns"])
    audio_other = sorted((t, tid) for tid, t in first_audio.items() if tid not in alert_ids)
    used: set[str] = set()
    final_end = {str(r.get("trace_id")): int(r["t1_ns"]) for r in by_key.get("speech.final", ())}
    for u in utts:
        tid = str(u.get("trace_id"))
        end = int(u["t1_ns"])
        last0 = _last_spoken_ns(u, truth, speed)
        if last0 is not None and tid in final_end:
            samples["last_sample_to_transcript"].append((final_end[tid] - last0) / 1e6)
        t = first_audio.get(tid)
        if t is not None and tid not in alert_ids:
            used.add(tid)
        else:
            t = None
            for ta, aid in audio_other:
                if aid not in used and end <= ta <= end + 10_000_000_000:
                    t = ta
                    used.add(aid)
                    break
        if t is not None:
            samples["vad_end_to_answer_audio"].append((t - end) / 1e6)
            last = _last_spoken_ns(u, truth, speed)
            if last is not None:
                samples["end_of_speech_wait"].append((end - last) / 1e6)
            samples["speech_end_to_answer_audio"].append((t - (last or end)) / 1e6)
    for tid, t in first_audio.items():
        if tid in answer_end and tid not in alert_ids:
            samples["tts_first_audio"].append((t - answer_end[tid]) / 1e6)

    # scripted event frame decoded -> alert raised / alert audio
    detail: dict[str, Any] = {"alerts_in_trace": len(alerts)}
    if truth is not None and alerts:
        decoded = {int(r["frame_id"]): int(r["t1_ns"]) for r in by_key.get("decode.frame", ())
                   if r.get("frame_id") is not None}
        recs = [{"rule": a.get("rule", ""), "media_t_s": a.get("media_t_s"),
                 "frame_id": a.get("frame_id"), "trace_id": a.get("trace_id"),
                 "t0_ns": a["t0_ns"]} for a in alerts]
        m = match_alerts(scripted_events(truth), recs, float(truth.get("fps", 30.0)))
        for ev, al in m["pairs"]:
            t_ev = decoded.get(int(ev["frame"]))
            if t_ev is None:
                continue
            samples["event_to_alert"].append((int(al["t0_ns"]) - t_ev) / 1e6)
            fa = first_audio.get(str(al.get("trace_id")))
            if fa is not None:
                samples["event_to_alert_audio"].append((fa - t_ev) / 1e6)
        detail["alert_matches"] = len(m["pairs"])
    return dict(samples), detail


# ----------------------------------------------------------------------------- truth matching
def scripted_events(truth: dict) -> list[dict[str, Any]]:
    """Truth events that should raise an alert (clips only before the CVS), grouped:
    same-kind events within EVENT_GROUP_S count once, at the first one."""
    out: list[dict[str, Any]] = []
    last: dict[str, float] = {}
    for e in sorted(truth.get("events", []), key=lambda e: e.get("time_s", 0.0)):
        kind = e.get("kind")
        if kind not in ALERT_EVENTS:
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


def _rule_fits(rule: str, kind: str) -> bool | None:
    """True / False when the rule names a known kind, None when it names none."""
    rule = (rule or "").lower()
    hits = {k for k, words in ALERT_EVENTS.items() if any(w in rule for w in words)}
    return (kind in hits) if hits else None


def match_alerts(events: list[dict], alerts: list[dict], fps: float) -> dict[str, Any]:
    """Greedy one-to-one matching of alerts to scripted events in time order.

    An alert matches an event when its media time is within ALERT_WINDOW_S of the event and
    its rule fits the event kind (a rule naming no known kind fits any). Returns pairs,
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
            if _rule_fits(str(alerts[i].get("rule", "")), ev["kind"]) is False:
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


def _overlaps(span: tuple[float, float], u: dict, before: float = 0.5, after: float = 4.0
              ) -> bool:
    return span[1] >= float(u["start_s"]) - before and span[0] <= float(u["end_s"]) + after


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


# ----------------------------------------------------------------------------- one app run
_AVAILABLE: dict[str, str | None] = {}


def load_pipeline(backend: str) -> Any:
    """The vision pipeline on ``backend``, without the silent TensorRT -> ONNX Runtime
    fallback (a benchmark must not time one backend under another's name)."""
    from vision.pipeline import VisionPipeline

    kwargs = {"fallback": False} if backend == "tensorrt" else {}
    return VisionPipeline.load(runtime=backend, threads=1, **kwargs)


def backend_unavailable(backend: str) -> str | None:
    """Why ``backend`` cannot run here (None: it can); cached per process."""
    if backend not in _AVAILABLE:
        try:
            load_pipeline(backend)
            _AVAILABLE[backend] = None
        except Exception as exc:  # noqa: BLE001 - the reason is the result
            _AVAILABLE[backend] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    return _AVAILABLE[backend]


def run_app(feed: Path, variant: Variant, run_dir: Path, mode: str,
            max_seconds: float | None, asr_model_dir: Path | None,
            truth: dict | None) -> dict[str, Any]:
    """One ``run_copilot`` on ``feed`` with ``variant``; returns measurements and accuracy."""
    from copilot.app import RunConfig, run_copilot

    run_dir.mkdir(parents=True, exist_ok=True)
    trace_path = run_dir / "trace.jsonl"
    cfg = RunConfig(source=str(feed), out=run_dir, mode=mode, decoder=variant.decoder,
                    vision="model", runtime=variant.backend, asr=variant.asr,
                    asr_model_dir=asr_model_dir, trace=trace_path, faults=[],
                    max_seconds=max_seconds)
    rec: dict[str, Any] = {"variant": variant.key, "mode": mode, "dir": str(run_dir)}
    why = backend_unavailable(variant.backend)
    if why is not None:
        rec.update(ok=False, available=False, error=f"{variant.backend} not available: {why}")
        return rec
    try:
        with ResourceSampler() as rs:
            res = run_copilot(cfg)
    except Exception as exc:  # noqa: BLE001 - an unavailable backend is a result, not a crash
        rec.update(ok=False, error=f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        return rec
    rec.update(rs.as_dict())
    rec.update(ok=res.exit_code == 0, error=res.error, exit_code=res.exit_code,
               frames_in=res.frames_in, frames_out=res.frames_out, dropped=res.dropped,
               wall_s=round(res.wall_s, 3),
               throughput_fps=round(res.frames_out / res.wall_s, 2) if res.wall_s else 0.0,
               alerts=res.alerts, answers=res.answers,
               outputs={k: str(v) for k, v in res.outputs.items()},
               health={k: {kk: v.get(kk) for kk in ("state", "errors", "hangs", "restarts",
                                                   "processed")}
                       for k, v in res.health.items()})
    dead = [f"{k}: {v.get('last_error')}" for k, v in res.health.items()
            if v.get("errors") and not v.get("processed")]
    if dead:  # a stage that never worked (e.g. an ASR backend without its model)
        rec.update(ok=False, available=False, error="stage never ran: " + "; ".join(dead)[:300])
    src_fps = float(truth["fps"]) if truth else None
    if src_fps and res.wall_s:
        rec["speed_x_realtime"] = round(res.frames_out / src_fps / res.wall_s, 3)
    trace = read_jsonl(trace_path)
    samples, detail = trace_latencies(trace, truth)
    rec["samples_ms"] = {k: [round(x, 3) for x in v] for k, v in samples.items()}
    rec["latency"] = {k: stats_ms(v) for k, v in samples.items()}
    rec["trace_detail"] = detail
    session = read_jsonl(run_dir / "session.jsonl")
    rec["session_records"] = len(session)
    if truth is not None:
        rec["accuracy"] = session_accuracy(session, truth) if session else None
        rec["timeline"] = {
            "alerts": [{"t": _alert_time(a, float(truth["fps"])), "rule": a.get("rule")}
                       for a in session if a.get("type") == "alert"],
            "answers": [{"t": (_rec_span(a) or (None,))[0], "text": str(a.get("text"))[:80]}
                        for a in session if a.get("type") == "answer"],
            "utterances_heard": [
                {"t0": u.get("start_s"), "t1": u.get("end_s"), "accepted": u.get("accepted")}
                for u in trace if u.get("stage") == "speech" and u.get("name") == "utterance"],
        }
    return rec


# ----------------------------------------------------------------------------- components
def compare_vision(feed: Path, truth: dict | None, backends: list[str], max_frames: int,
                   progress: bool = False) -> dict[str, Any]:
    """Vision backends side by side, frame by frame (order rotating): timings per step and,
    with a truth, mIoU / phase / bowel segment / CVS against the feed's masks."""
    import cv2

    from vision.evaluate import MetricAccumulator
    from vision.sources import open_source

    pipes: dict[str, Any] = {}
    out: dict[str, Any] = {"backends": {}}
    for b in backends:
        try:
            pipes[b] = load_pipeline(b)
        except Exception as exc:  # noqa: BLE001 - e.g. tensorrt not installed
            out["backends"][b] = {"available": False,
                                  "reason": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    if not pipes:
        return out
    names = list(pipes)
    src = open_source(feed / "video.mp4" if feed.is_dir() else feed, "pyav")
    fps = src.info.fps
    n_total = truth["n_frames"] if truth else (src.info.n_frames or max_frames)
    every = max(1, math.ceil(n_total / max_frames))
    timings: dict[str, dict[str, list[float]]] = {b: defaultdict(list) for b in names}
    accs = {b: MetricAccumulator() for b in names}
    fl = truth["frame_labels"] if truth else None
    cholec = bool(truth) and truth.get("scenario") == "cholecystectomy"
    masks = feed / "masks" if feed.is_dir() else None
    k = 0
    try:
        for i, _t, rgb in src:
            if i % every:
                continue
            order = names[k % len(names):] + names[:k % len(names)]
            k += 1
            for b in order:
                t0 = time.perf_counter()
                r = pipes[b].process(rgb, frame_id=i, timestamp_s=i / fps)
                wall = (time.perf_counter() - t0) * 1e3
                for step, ms in r.timing_ms.items():
                    timings[b][step].append(ms)
                timings[b]["wall"].append(wall)
                mpath = masks / f"{i:06d}.png" if masks is not None else None
                if fl is None or mpath is None or not mpath.is_file() or i >= len(fl["phase"]):
                    continue
                m = cv2.imread(str(mpath), cv2.IMREAD_UNCHANGED)
                wo, ho = pipes[b].runtime.config.output_size
                bx = r.fov_box
                m = cv2.resize(np.ascontiguousarray(m[bx.y0:bx.y1, bx.x0:bx.x1]), (wo, ho),
                               interpolation=cv2.INTER_NEAREST)
                phases, regions = list(r.phase), list(r.region)
                accs[b].add(r.label_map, m, int(fl["phase"][i]), phases.index(r.phase_name),
                            int(np.argmax(list(r.phase_frame.values()))), int(fl["region"][i]),
                            regions.index(r.region_name),
                            np.array(list(r.cvs.values())) if cholec else None,
                            np.array(fl["cvs"][i]) if cholec else None,
                            np.array(list(r.tools.values())), np.array(fl["tools"][i]))
    finally:
        src.close()
    base = names[0]
    for b in names:
        t = timings[b]
        acc = accs[b].summary() if fl is not None else {}
        rec = {"available": True, "frames": len(t["wall"]), "every": every,
               "runtime": pipes[b].runtime.describe(),
               "input_size": list(pipes[b].input_size),
               "timing": {s: stats_ms(v) for s, v in t.items()},
               "throughput_per_s": round(1000 / statistics.median(t["wall"]), 1)
               if t["wall"] else None,
               "stage_over_inference": median_ratio(t["total"], t["inference"]),
               "accuracy": {k2: acc.get(k2) for k2 in (
                   "anatomy_miou", "phase_acc", "bowel_segment_acc", "cvs_macro_f1",
                   "tools_macro_f1")} if acc else None}
        if b != base:
            rec["ratio_total_to_" + base] = median_ratio(t["total"], timings[base]["total"])
            rec["ratio_inference_to_" + base] = median_ratio(t["inference"],
                                                             timings[base]["inference"])
        out["backends"][b] = rec
    out["baseline"] = base
    return out


def compare_decoders(feed: Path, decoders: list[str], rounds: int) -> dict[str, Any]:
    """Decoders round by round (order rotating) on the feed's video: fps and ratios."""
    from benchmarks.bench_decoders import decode_all

    video = feed / "video.mp4" if feed.is_dir() else feed
    runs: dict[str, list[dict]] = {d: [] for d in decoders}
    for d in decoders:  # untimed warm-up: imports, page cache
        try:
            decode_all(video, d)
        except Exception:  # noqa: BLE001 - reported by the timed rounds
            pass
    for r in range(rounds):
        for d in decoders[r % len(decoders):] + decoders[:r % len(decoders)]:
            try:
                runs[d].append(decode_all(video, d))
            except Exception as exc:  # noqa: BLE001
                runs[d].append({"error": str(exc), "fps": None, "frames": 0})
    base = decoders[0]
    out: dict[str, Any] = {"baseline": base, "rounds": rounds, "decoders": {}}
    for d, rs in runs.items():
        fps = [x["fps"] for x in rs if x.get("fps")]
        rec = {"fps_per_round": [round(x, 1) for x in fps],
               "fps_median": round(statistics.median(fps), 1) if fps else None,
               "frames": rs[0].get("frames"),
               "cpu_ms_per_frame": round(statistics.median(
                   x["cpu_s"] / max(1, x["frames"]) * 1e3 for x in rs if x.get("fps")), 3)
               if fps else None}
        if d != base:
            rec["ratio_to_" + base] = median_ratio([x["fps"] for x in rs],
                                                   [x["fps"] for x in runs[base]])
        out["decoders"][d] = rec
    return out


def compare_asr(feed: Path, truth: dict | None, asrs: list[str], asr_model_dir: Path | None
                ) -> dict[str, Any]:
    """ASR backends on the feed's audio (whole listener: VAD + wake word + ASR), one after
    the other in this process: real-time factor, per-step time, command accuracy, false
    accepts per hour."""
    from copilot.cli_speech import build_listener
    from speech.audio import load_audio

    wav = feed / "audio.wav" if feed.is_dir() else None
    if wav is None or not wav.is_file():
        return {"skipped": "no audio.wav"}
    audio = load_audio(wav)
    dur = len(audio) / 16000
    out: dict[str, Any] = {"audio_s": round(dur, 2), "backends": {}}
    for a in asrs:
        try:
            lis = build_listener(asr=a, model_dir=asr_model_dir)
        except Exception as exc:  # noqa: BLE001 - e.g. no faster-whisper model offline
            out["backends"][a] = {"available": False,
                                  "reason": f"{type(exc).__name__}: {exc}".splitlines()[0]}
            continue
        t0 = time.perf_counter()
        trs = lis.process(audio)
        wall = time.perf_counter() - t0
        st = lis.stats
        chunks = max(1, st.chunks)
        rec: dict[str, Any] = {
            "available": True, "wall_s": round(wall, 3), "rtf": round(wall / dur, 4),
            "vad_ms_per_chunk": round(st.vad_s / chunks * 1e3, 4),
            "wake_s": round(st.wake_s, 3), "asr_s": round(st.asr_s, 3),
            "asr_rtf": round(st.asr_s / dur, 4), "utterances": st.utterances,
            "final_ms": stats_ms(x * 1e3 for x in st.finals),
        }
        if truth is not None:
            cmds = [{"start_s": t.start_s, "end_s": t.end_s, "text": t.text}
                    for t in trs if t.accepted and t.text]
            rec["commands"] = command_accuracy(truth.get("utterances", []), cmds, dur)
        out["backends"][a] = rec
    return out


def compare_loop(feed: Path, decoder: str, rounds: int) -> dict[str, Any]:
    """``--fast`` passthrough + overlay (no analysis, no speech) against the raw decoder,
    alternated round by round; with and without the H.264 output file."""
    import tempfile

    from benchmarks.bench_decoders import decode_all
    from copilot.app import RunConfig, run_copilot

    video = feed / "video.mp4" if feed.is_dir() else feed
    raw, loop, loop_mp4 = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench_loop_") as tmp:
        decode_all(video, decoder)  # untimed warm-up of both arms
        _loop_fps(run_copilot, RunConfig, video, decoder, None)
        for r in range(rounds):
            steps: list[tuple[str, Callable[[], float]]] = [
                ("raw", lambda: decode_all(video, decoder)["fps"]),
                ("loop", lambda: _loop_fps(run_copilot, RunConfig, video, decoder, None)),
                ("loop_mp4", lambda: _loop_fps(run_copilot, RunConfig, video, decoder,
                                               Path(tmp) / "out.mp4")),
            ]
            for name, fn in steps[r % 3:] + steps[:r % 3]:
                {"raw": raw, "loop": loop, "loop_mp4": loop_mp4}[name].append(fn())
    return {"decoder": decoder, "rounds": rounds,
            "raw_fps": [round(x, 1) for x in raw],
            "loop_fps": [round(x, 1) for x in loop],
            "loop_mp4_fps": [round(x, 1) for x in loop_mp4],
            "ratio_loop_to_raw": median_ratio(loop, raw),
            "ratio_loop_mp4_to_raw": median_ratio(loop_mp4, raw)}


def _loop_fps(run_copilot: Any, RunConfig: Any, video: Path, decoder: str,  # noqa: N803
              out: Path | None) -> float:
    kw = {"analyse_every": 0} if "analyse_every" in RunConfig.__dataclass_fields__ else {}
    # analyse_every=0: no lockstep hand-off to an analysis stage that does not exist here
    cfg = RunConfig(source=str(video), out=out, mode="fast", decoder=decoder, vision="none",
                    speech="off", report=False, **kw)
    res = run_copilot(cfg)
    return res.frames_out / res.wall_s if res.wall_s else 0.0


# ----------------------------------------------------------------------------- one feed
def bench_feed(task: dict[str, Any]) -> dict[str, Any]:
    """All runs and comparisons of one feed (picklable in and out: a pool / Ray task)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    feed = Path(task["feed"])
    out_dir = Path(task["out_dir"])
    variants = [Variant(**v) for v in task["variants"]]
    truth = None
    if feed.is_dir() and (feed / "truth.json").is_file():
        from copilot.feeds import load_truth

        truth = load_truth(feed)
    res: dict[str, Any] = {
        "feed": str(feed), "name": feed.name if feed.is_dir() else feed.stem,
        "scenario": truth.get("scenario") if truth else None,
        "seed": truth.get("seed") if truth else None,
        "duration_s": truth.get("duration_s") if truth else None,
        "fps": truth.get("fps") if truth else None,
        "size": [truth["width"], truth["height"]] if truth else None,
        "truth": truth is not None, "runs": [], "host": os.uname().nodename, "pid": os.getpid(),
    }
    if truth is not None:
        res["scripted_events"] = [{"kind": e["kind"], "time_s": e["time_s"]}
                                  for e in scripted_events(truth)]
        res["utterances"] = [{"start_s": u["start_s"], "end_s": u["end_s"],
                              "addressed": u["addressed"], "text": u["text"]}
                             for u in truth.get("utterances", [])]
    from tqdm import tqdm

    steps = task["repeat"] * len(variants)
    bar = tqdm(total=steps, desc=res["name"], disable=not task.get("progress"), leave=False)
    t_start = time.perf_counter()
    for r in range(task["repeat"]):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for v in order:
            d = out_dir / "runs" / res["name"] / f"{v.key.replace('/', '_')}_r{r}"
            rec = run_app(feed, v, d, task["mode"], task.get("max_seconds"),
                          Path(task["asr_model_dir"]) if task.get("asr_model_dir") else None,
                          truth)
            rec["repeat"] = r
            res["runs"].append(rec)
            bar.update(1)
    bar.close()
    comp: dict[str, Any] = {}
    if task.get("components", True):
        comp["vision"] = compare_vision(feed, truth, task["backends"], task["vision_frames"])
        comp["decoders"] = compare_decoders(feed, task["decoders"], task["decoder_rounds"])
        comp["asr"] = compare_asr(feed, truth, task["asr"],
                                  Path(task["asr_model_dir"]) if task.get("asr_model_dir")
                                  else None)
        if task.get("loop_check", True):
            try:
                comp["loop"] = compare_loop(feed, task["decoders"][0],
                                            task["decoder_rounds"])
            except Exception as exc:  # noqa: BLE001
                comp["loop"] = {"error": f"{type(exc).__name__}: {exc}"}
    res["components"] = comp
    res["wall_s"] = round(time.perf_counter() - t_start, 2)
    res["ratios"] = feed_ratios(res, variants)
    return res


def feed_ratios(res: dict[str, Any], variants: list[Variant]) -> list[dict[str, Any]]:
    """Per-repeat paired ratios of each variant's end-to-end numbers to the baseline's."""
    base = variants[0]
    out = []
    by: dict[tuple[str, int], dict] = {(r["variant"], r["repeat"]): r for r in res["runs"]}
    for v in variants[1:]:
        axis = ("backend" if v.backend != base.backend else
                "decoder" if v.decoder != base.decoder else "asr")
        for metric, key in (("throughput_fps", None), ("vision_p50_ms", "vision"),
                            ("decode_p50_ms", "decode"),
                            ("speech_chunk_p50_ms", "speech_chunk")):
            a, b = [], []
            for r in range(max((x["repeat"] for x in res["runs"]), default=-1) + 1):
                ra, rb = by.get((v.key, r)), by.get((base.key, r))
                if not ra or not rb or not ra.get("ok") or not rb.get("ok"):
                    continue
                if key is None:
                    a.append(ra.get(metric))
                    b.append(rb.get(metric))
                else:
                    la, lb = ra["latency"].get(key), rb["latency"].get(key)
                    if la and lb:
                        a.append(la["p50"])
                        b.append(lb["p50"])
            val = median_ratio(a, b)
            if val is not None:
                out.append({"axis": axis, "a": v.key, "b": base.key, "metric": metric,
                            "ratio": val, "pairs": len(a)})
    return out


# ----------------------------------------------------------------------------- many feeds
def _tasks(cfg: BenchConfig) -> list[dict[str, Any]]:
    variants = [asdict(v) for v in cfg.variants()]
    in_process = (cfg.workers or 0) <= 1 and not cfg.ray
    return [{"feed": str(Path(f).resolve()), "out_dir": str(Path(cfg.out).resolve()),
             "variants": variants, "repeat": cfg.repeat, "mode": cfg.mode,
             "max_seconds": cfg.max_seconds,
             "asr_model_dir": str(cfg.asr_model_dir) if cfg.asr_model_dir else None,
             "components": cfg.components, "loop_check": cfg.loop_check,
             "backends": list(cfg.backends), "decoders": list(cfg.decoders),
             "asr": list(cfg.asr), "vision_frames": cfg.vision_frames,
             "decoder_rounds": cfg.decoder_rounds,
             "progress": cfg.progress and in_process} for f in cfg.feeds]


def default_workers(n_feeds: int) -> int:
    """Half the cores (benchmarks need room), at least 1, at most the number of feeds."""
    return max(1, min(n_feeds, (os.cpu_count() or 2) // 2))


def run_local(tasks: list[dict], workers: int, progress: bool) -> list[dict]:
    """Feeds in a spawned process pool (one fresh process per feed); workers 0 = here."""
    from tqdm import tqdm

    if workers == 0:
        return [bench_feed(t) for t in tqdm(tasks, desc="feeds", disable=not progress)]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    results: dict[int, dict] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             max_tasks_per_child=1) as pool:
        futs = {pool.submit(bench_feed, t): i for i, t in enumerate(tasks)}
        for fut in tqdm(as_completed(futs), total=len(futs), desc="feeds",
                        disable=not progress):
            results[futs[fut]] = fut.result()
    return [results[i] for i in range(len(tasks))]


def run_ray(tasks: list[dict], address: str, progress: bool) -> list[dict]:
    """Feeds as Ray tasks (one CPU each) on the cluster at ``address`` ("auto": the running
    cluster, else a local one; "local": always a new local one). Reuses an initialised Ray."""
    try:
        import ray
    except ImportError:
        raise CopilotError("--ray needs Ray: pip install 'surgical-copilot[ray]'") from None
    from tqdm import tqdm

    if not ray.is_initialized():
        if address == "local":
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except ConnectionError:
                if address != "auto":
                    raise CopilotError(f"no Ray cluster at {address}") from None
                log.warning("no running Ray cluster found: starting a local one")
                ray.init(include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=1, max_retries=0)(bench_feed)
    refs = [remote.remote(t) for t in tasks]
    index = {r: i for i, r in enumerate(refs)}
    results: dict[int, dict] = {}
    pending = list(refs)
    with tqdm(total=len(refs), desc="feeds (ray)", disable=not progress) as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for r in done:
                results[index[r]] = ray.get(r)
                bar.update(1)
    return [results[i] for i in range(len(tasks))]


def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    """Run everything, write report.json / report.md / plots into ``cfg.out``; returns the
    report."""
    from benchmarks.machine import machine_info

    cfg.check()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    t0 = time.perf_counter()
    tasks = _tasks(cfg)
    if cfg.ray:
        feeds = run_ray(tasks, cfg.ray, cfg.progress)
        executor = f"ray:{cfg.ray}"
    else:
        workers = cfg.workers if cfg.workers is not None else default_workers(len(tasks))
        feeds = run_local(tasks, workers, cfg.progress)
        executor = f"local:{workers}"
    report = build_report(cfg, feeds, machine, executor, time.perf_counter() - t0)
    report["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["plots"] = make_plots(report, out, feeds)
    write_report(report, out)
    return report


# ----------------------------------------------------------------------------- report
def _pool(feeds: list[dict], variant: str) -> dict[str, list[float]]:
    pooled: dict[str, list[float]] = defaultdict(list)
    for f in feeds:
        for r in f["runs"]:
            if r["variant"] == variant and r.get("ok"):
                for k, v in r.get("samples_ms", {}).items():
                    pooled[k].extend(v)
    return pooled


def _mean(xs: Iterable[float | None]) -> float | None:
    v = [x for x in xs if x is not None]
    return round(float(np.mean(v)), 4) if v else None


def build_report(cfg: BenchConfig, feeds: list[dict], machine: dict, executor: str,
                 wall_s: float) -> dict[str, Any]:
    """The report.json object (see docs/bench_report.md)."""
    variants = cfg.variants()
    base = variants[0].key
    latency = {}
    for v in variants:
        pooled = _pool(feeds, v.key)
        latency[v.key] = {k: stats_ms(x) for k, x in sorted(pooled.items())}
    runs_ok = [r for f in feeds for r in f["runs"] if r.get("ok")]
    base_runs = [r for r in runs_ok if r["variant"] == base]
    throughput = {
        "fps_median": round(statistics.median([r["throughput_fps"] for r in base_runs]), 2)
        if base_runs else None,
        "speed_x_realtime_median": round(statistics.median(
            [r["speed_x_realtime"] for r in base_runs if "speed_x_realtime" in r]), 3)
        if any("speed_x_realtime" in r for r in base_runs) else None,
        "frames_in": sum(r["frames_in"] for r in base_runs),
        "frames_out": sum(r["frames_out"] for r in base_runs),
        "dropped": sum(r["dropped"] for r in base_runs),
        "cpu_percent_median": round(statistics.median([r["cpu_percent"] for r in base_runs]),
                                    1) if base_runs else None,
        "peak_rss_mb_max": max((r["peak_rss_mb"] for r in base_runs), default=None),
    }
    # accuracy (baseline runs, first repeat, mean over feeds) + component accuracy
    acc_rows = []
    for f in feeds:
        row: dict[str, Any] = {"feed": f["name"], "scenario": f["scenario"]}
        r0 = next((r for r in f["runs"] if r["variant"] == base and r.get("ok")), None)
        a = (r0 or {}).get("accuracy") or {}
        row["phase_accuracy"] = a.get("phase_accuracy")
        row["bowel_segment_accuracy"] = a.get("bowel_segment_accuracy")
        row["command_accuracy"] = (a.get("commands") or {}).get("accuracy")
        row["wake_false_accepts_per_hour"] = (a.get("commands") or {}).get(
            "false_accepts_per_hour")
        row["alert_precision"] = (a.get("alerts") or {}).get("precision")
        row["alert_recall"] = (a.get("alerts") or {}).get("recall")
        media_lat = (a.get("alerts") or {}).get("media_latency_s")
        row["alert_latency_p50_s"] = round(media_lat["p50"] / 1000, 3) if media_lat else None
        row["answer_accuracy"] = (a.get("answers") or {}).get("accuracy")
        row["chatter_triggered"] = a.get("chatter_triggered")
        vis = ((f.get("components") or {}).get("vision") or {}).get("backends", {})
        vb = vis.get(cfg.backends[0]) or {}
        va = vb.get("accuracy") or {}
        row["segmentation_miou"] = va.get("anatomy_miou")
        row["vision_phase_accuracy"] = va.get("phase_acc")
        row["vision_bowel_segment_accuracy"] = va.get("bowel_segment_acc")
        row["cvs_macro_f1"] = va.get("cvs_macro_f1")
        asr = ((f.get("components") or {}).get("asr") or {}).get("backends", {})
        ab = (asr.get(cfg.asr[0]) or {}).get("commands") or {}
        row["asr_command_accuracy"] = ab.get("accuracy")
        row["asr_false_accepts_per_hour"] = ab.get("false_accepts_per_hour")
        acc_rows.append(row)
    keys = [k for k in (acc_rows[0] if acc_rows else {}) if k not in ("feed", "scenario")]
    accuracy = {"per_feed": acc_rows,
                "mean": {k: _mean(r.get(k) for r in acc_rows) for k in keys}}
    ratios = comparison_ratios(feeds, cfg)
    report = {
        "schema_version": SCHEMA_VERSION,
        "tool": "copilot bench",
        "command": cfg.command or "copilot bench " + " ".join(map(str, cfg.feeds)),
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_s": round(wall_s, 2),
        "executor": executor,
        "machine": machine,
        "config": {"feeds": [str(f) for f in cfg.feeds], "backends": cfg.backends,
                   "decoders": cfg.decoders, "asr": cfg.asr, "repeat": cfg.repeat,
                   "mode": cfg.mode, "max_seconds": cfg.max_seconds,
                   "components": cfg.components, "vision_frames": cfg.vision_frames,
                   "decoder_rounds": cfg.decoder_rounds},
        "variants": [{"key": v.key, "backend": v.backend, "decoder": v.decoder, "asr": v.asr,
                      "baseline": v.key == base} for v in variants],
        "latency": latency,
        "throughput": throughput,
        "accuracy": accuracy,
        "ratios": ratios,
        "feeds": [_strip_samples(f) for f in feeds],
    }
    report["goals"] = goals(report, cfg)
    return report


def _strip_samples(f: dict) -> dict:
    g = dict(f)
    g["runs"] = [{k: v for k, v in r.items() if k != "samples_ms"} for r in f["runs"]]
    return g


def comparison_ratios(feeds: list[dict], cfg: BenchConfig) -> list[dict[str, Any]]:
    """Every comparison as a ratio: end-to-end (variant vs baseline, per repeat) and the
    side-by-side components (vision backends per frame, decoders and loop per round)."""
    rows: list[dict[str, Any]] = []
    grouped: dict[tuple, list[float]] = defaultdict(list)
    for f in feeds:
        for r in f.get("ratios", []):
            grouped[("run", r["axis"], r["a"], r["b"], r["metric"])].append(r["ratio"])
        comp = f.get("components") or {}
        vis = comp.get("vision") or {}
        vb = vis.get("backends", {})
        for b, rec in vb.items():
            for key in ("ratio_total_to_", "ratio_inference_to_"):
                k = key + str(vis.get("baseline"))
                if rec.get(k) is not None:
                    grouped[("component", "backend", b, vis["baseline"],
                             key.removeprefix("ratio_").removesuffix("_to_") + "_ms")
                            ].append(rec[k])
            if rec.get("stage_over_inference") is not None:
                grouped[("component", "backend", b, b + " session.run",
                         "stage_over_inference")].append(rec["stage_over_inference"])
        dec = comp.get("decoders") or {}
        for d, rec in (dec.get("decoders") or {}).items():
            k = "ratio_to_" + str(dec.get("baseline"))
            if rec.get(k) is not None:
                grouped[("component", "decoder", d, dec["baseline"], "fps")].append(rec[k])
        loop = comp.get("loop") or {}
        for key, a in (("ratio_loop_to_raw", "fast passthrough+overlay"),
                       ("ratio_loop_mp4_to_raw", "fast passthrough+overlay+H.264 out")):
            if loop.get(key) is not None:
                grouped[("component", "loop", a, f"raw {loop['decoder']} decode", "fps")
                        ].append(loop[key])
    for (kind, axis, a, b, metric), vals in grouped.items():
        rows.append({"kind": kind, "axis": axis, "a": a, "b": b, "metric": metric,
                     "ratio": round(float(statistics.median(vals)), 4),
                     "per_feed": [round(x, 4) for x in vals]})
    return rows


def goals(report: dict[str, Any], cfg: BenchConfig) -> list[dict[str, Any]]:
    """The ratio / latency goals of the issues this run can judge, with pass / fail."""
    base = report["variants"][0]["key"]
    lat = report["latency"].get(base, {})
    out: list[dict[str, Any]] = []

    def add(issue: int, name: str, value: float | None, target: str, ok: bool | None,
            unit: str = "") -> None:
        out.append({"issue": issue, "goal": name, "value": value, "unit": unit,
                    "target": target, "pass": ok})

    fps_src = [f["fps"] for f in report["feeds"] if f.get("fps")]
    frame_ms = 1000 / min(fps_src) if fps_src else 1000 / 30
    if cfg.mode == "realtime" and lat.get("overlay"):
        v = lat["overlay"]["p99"]
        add(2, "realtime overlay added latency p99 (overlay.compose)", v,
            f"<= {frame_ms:.1f} ms (one frame)",
            v <= frame_ms, "ms")
    for r in report["ratios"]:
        if r["axis"] == "loop" and r["a"] == "fast passthrough+overlay":
            add(2, "fast passthrough+overlay / raw decoder fps", r["ratio"], ">= 0.9",
                r["ratio"] >= 0.9)
        if r["axis"] == "backend" and r["metric"] == "total_ms" and r["a"] == "onnxruntime" \
                and r["b"] == "torch":
            add(4, "ONNX Runtime / PyTorch eager latency", r["ratio"], "<= 0.5",
                r["ratio"] <= 0.5)
        if r["axis"] == "backend" and r["metric"] == "total_ms" and r["a"] == "torch" \
                and r["b"] == "onnxruntime":
            inv = round(1 / r["ratio"], 4) if r["ratio"] else None
            add(4, "ONNX Runtime / PyTorch eager latency", inv, "<= 0.5",
                inv is not None and inv <= 0.5)
        if r["metric"] == "stage_over_inference" and r["a"] == "onnxruntime":
            add(4, "vision stage time / bare session.run", r["ratio"], "<= 1.15",
                r["ratio"] <= 1.15)
    if lat.get("speech_end_to_answer_audio"):
        v = lat["speech_end_to_answer_audio"]["p95"]
        wait = (lat.get("end_of_speech_wait") or {}).get("p95")
        add(7, "last spoken sample -> answer first audio p95 (end-of-speech wait included"
            + (f"; the wait alone p95 {wait:.0f} ms)" if wait is not None else ")"), v,
            "<= 1000 ms", v <= 1000, "ms")
    if lat.get("event_to_alert_audio"):
        v = lat["event_to_alert_audio"]["p95"]
        add(7, "event frame -> alert first audio p95", v, "<= 500 ms", v <= 500, "ms")
    if lat.get("speech_end_to_transcript"):
        v = lat["speech_end_to_transcript"]["p95"]
        add(5, "speech end -> final transcript p95 (app)", v, "<= 300 ms", v <= 300, "ms")
    m = report["accuracy"]["mean"]
    if m.get("alert_recall") is not None:
        add(7, "scripted events alerted (recall)", m["alert_recall"], "= 1.0",
            m["alert_recall"] >= 1.0)
    if m.get("alert_precision") is not None:
        v = round(1 - m["alert_precision"], 4)
        add(7, "alerts where nothing was scripted (fraction)", v, "<= 0.10", v <= 0.10)
    if m.get("answer_accuracy") is not None:
        add(7, "answers with the expected facts", m["answer_accuracy"], "= 1.0",
            m["answer_accuracy"] >= 1.0)
    return out


def write_report(report: dict[str, Any], out: Path) -> None:
    """report.json and report.md."""
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (out / "report.md").write_text(markdown(report))


def _f(x: Any, nd: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}".rstrip("0").rstrip(".") if abs(x) < 1e6 else f"{x:.3g}"
    return str(x)


def markdown(report: dict[str, Any]) -> str:
    """report.md: headline tables, ratios, accuracy, goals, per-feed notes, plots."""
    from benchmarks.machine import machine_line

    base = report["variants"][0]["key"]
    L = ["# copilot bench report", "",
         f"Command: `{report['command']}`  ",
         "Machine: " + machine_line(report["machine"]) + "  ",
         f"Load average at the end {report.get('load_avg_at_end')} (a shared machine: "
         "absolute times are inflated by other work; ratios are paired).  ",
         f"Created {report['created_utc']}, {report['wall_s']} s, executor "
         f"{report['executor']}, mode {report['config']['mode']}, repeat "
         f"{report['config']['repeat']}.", "",
         "Feeds: " + ", ".join(f"{f['name']} ({f['scenario'] or 'video'}, "
                               f"{f['duration_s']} s, {f['size']})" for f in report["feeds"]),
         "", "## Latency (ms, baseline variant " + f"`{base}`, all feeds and repeats)", "",
         "| path | n | min | p50 | p95 | p99 | max |", "| --- " * 7 + "|"]
    for k, s in report["latency"].get(base, {}).items():
        if s:
            L.append(f"| {k} | {s['n']} | {_f(s['min'])} | {_f(s['p50'])} | {_f(s['p95'])} | "
                     f"{_f(s['p99'])} | {_f(s['max'])} |")
    t = report["throughput"]
    L += ["", f"Throughput: {_f(t['fps_median'])} frames/s median "
          f"({_f(t['speed_x_realtime_median'])}x real time), {t['frames_out']} of "
          f"{t['frames_in']} frames out, {t['dropped']} dropped, CPU "
          f"{_f(t['cpu_percent_median'])} % (100 = one core), peak RSS "
          f"{_f(t['peak_rss_mb_max'])} MiB.", "",
          "## Ratios (median of paired per-round / per-frame ratios)", "",
          "| kind | axis | a | b | metric | a / b | per feed |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["ratios"]:
        L.append(f"| {r['kind']} | {r['axis']} | {r['a']} | {r['b']} | {r['metric']} | "
                 f"{_f(r['ratio'])} | {', '.join(_f(x) for x in r['per_feed'])} |")
    acc = report["accuracy"]
    if acc["per_feed"]:
        keys = list(acc["mean"])
        L += ["", "## Accuracy against truth.json", "",
              "| feed | " + " | ".join(keys) + " |", "| --- " * (len(keys) + 1) + "|"]
        for row in acc["per_feed"]:
            L.append(f"| {row['feed']} | " + " | ".join(_f(row.get(k)) for k in keys) + " |")
        L.append("| **mean** | " + " | ".join(_f(acc["mean"][k]) for k in keys) + " |")
    if report["goals"]:
        L += ["", "## Goals", "", "| issue | goal | measured | target | pass |",
              "| --- | --- | --- | --- | --- |"]
        for g in report["goals"]:
            L.append(f"| {g['issue']} | {g['goal']} | {_f(g['value'])} {g['unit']} | "
                     f"{g['target']} | {'yes' if g['pass'] else 'NO'} |")
    L += ["", "## Runs", "", "| feed | variant | repeat | ok | frames in/out | dropped | fps | "
          "CPU % | peak RSS MiB | error |", "| --- " * 10 + "|"]
    for f in report["feeds"]:
        for r in f["runs"]:
            L.append(f"| {f['name']} | {r['variant']} | {r['repeat']} | "
                     f"{'yes' if r.get('ok') else 'NO'} | {r.get('frames_in', '-')}/"
                     f"{r.get('frames_out', '-')} | {r.get('dropped', '-')} | "
                     f"{_f(r.get('throughput_fps'))} | {_f(r.get('cpu_percent'))} | "
                     f"{_f(r.get('peak_rss_mb'))} | {(r.get('error') or '')[:80]} |")
    skipped = [(f["name"], kind, name, rec.get("reason")) for f in report["feeds"]
               for kind in ("vision", "asr")
               for name, rec in (((f.get("components") or {}).get(kind) or {})
                                 .get("backends") or {}).items() if not rec.get("available")]
    if skipped:
        L += ["", "Not available here: " + "; ".join(
            f"{k} {n} ({why})" for _, k, n, why in dict.fromkeys(skipped))]
    if report.get("plots"):
        L += ["", "## Plots", ""] + [f"![{k}]({v})" for k, v in report["plots"].items()]
    return "\n".join(L) + "\n"


# ----------------------------------------------------------------------------- plots
def make_plots(report: dict[str, Any], out: Path, feeds_raw: list[dict]) -> dict[str, str]:
    """latency_cdf.png, stage_bars.png, timeline.png (matplotlib Agg) from the report and the
    feed results with their latency samples; returns name -> file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = report["variants"][0]["key"]
    pooled = _pool(feeds_raw, base)
    files: dict[str, str] = {}

    # 1. latency CDFs per path (baseline), video paths and speech / alert paths
    groups = {"video path": ("decode", "vision", "overlay", "sink", "frame_to_overlay",
                             "preprocess", "inference", "postprocess"),
              "speech / alerts": ("speech_chunk", "speech_end_to_transcript", "reasoning",
                                  "tts_first_audio", "speech_end_to_answer_audio",
                                  "end_of_speech_wait", "last_sample_to_transcript",
                                  "event_to_alert", "event_to_alert_audio", "brain_findings")}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, (title, keys) in zip(axes, groups.items(), strict=True):
        drawn = 0
        for k in keys:
            xs = pooled.get(k)
            if not xs:
                continue
            a = np.sort(np.asarray(xs))
            ax.plot(np.maximum(a, 1e-3), np.arange(1, a.size + 1) / a.size, label=k)
            drawn += 1
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log)")
        ax.set_ylabel("fraction <= x")
        ax.set_title(f"{title} ({base})")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no samples", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(out / "latency_cdf.png", dpi=90)
    plt.close(fig)
    files["latency_cdf"] = "latency_cdf.png"

    # 2. per-stage stacked bars: mean ms per frame per variant (app) and per vision backend
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    names = [v["key"] for v in report["variants"]]
    bottom = np.zeros(len(names))
    for st in FRAME_STAGES:
        vals = np.array([((report["latency"].get(n) or {}).get(st) or {}).get("mean", 0.0)
                         for n in names])
        ax.bar(range(len(names)), vals, bottom=bottom, label=st)
        bottom += vals
    ax.set_xticks(range(len(names)), [n.replace("/", "\n") for n in names], fontsize=7)
    ax.set_ylabel("mean ms per frame")
    ax.set_title("copilot run: per-stage time per frame")
    ax.legend(fontsize=7)
    ax = axes[1]
    vis: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for f in report["feeds"]:
        for b, rec in (((f.get("components") or {}).get("vision") or {}).get("backends")
                       or {}).items():
            for st in ("preprocess", "inference", "postprocess"):
                s = (rec.get("timing") or {}).get(st)
                if s:
                    vis[b][st].append(s["p50"])
    bnames = list(vis)
    bottom = np.zeros(len(bnames))
    for st in ("preprocess", "inference", "postprocess"):
        vals = np.array([float(np.mean(vis[b][st])) if vis[b][st] else 0.0 for b in bnames])
        ax.bar(range(len(bnames)), vals, bottom=bottom, label=st)
        bottom += vals
    ax.set_xticks(range(len(bnames)), bnames, fontsize=8)
    ax.set_ylabel("median ms per frame")
    ax.set_title("vision backends side by side")
    if bnames:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "stage_bars.png", dpi=90)
    plt.close(fig)
    files["stage_bars"] = "stage_bars.png"

    # 3. timeline: scripted events, utterances, alerts and answers per feed (baseline run)
    feeds = report["feeds"]
    fig, axes = plt.subplots(len(feeds), 1, figsize=(12, 1.9 * len(feeds) + 0.6),
                             squeeze=False)
    for ax, f in zip(axes[:, 0], feeds, strict=True):
        r0 = next((r for r in f["runs"] if r["variant"] == base and r.get("ok")), {})
        tl = r0.get("timeline") or {}
        for u in f.get("utterances", []):
            ax.barh(2, u["end_s"] - u["start_s"], left=u["start_s"], height=0.5,
                    color="tab:blue" if u["addressed"] else "lightgray")
        for u in tl.get("utterances_heard", []):
            if u.get("t0") is not None:
                ax.barh(1.5, (u["t1"] or u["t0"]) - u["t0"], left=u["t0"], height=0.3,
                        color="tab:cyan" if u.get("accepted") else "silver")
        for e in f.get("scripted_events", []):
            ax.plot(e["time_s"], 1, "v", color="tab:red", ms=9)
            ax.annotate(e["kind"], (e["time_s"], 1.15), fontsize=6, ha="center")
        for a in tl.get("alerts", []):
            if a.get("t") is not None:
                ax.plot(a["t"], 0.5, "^", color="tab:orange", ms=9)
        for a in tl.get("answers", []):
            if a.get("t") is not None:
                ax.plot(a["t"], 0.5, "o", color="tab:green", ms=6)
        ax.set_yticks([0.5, 1, 1.5, 2], ["alerts ^ / answers o", "scripted events",
                                         "heard", "utterances"], fontsize=7)
        ax.set_ylim(0.1, 2.5)
        ax.set_xlim(0, f.get("duration_s") or 1)
        ax.set_title(f"{f['name']} ({f['scenario']})", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("media time (s)")
    fig.tight_layout()
    fig.savefig(out / "timeline.png", dpi=90)
    plt.close(fig)
    files["timeline"] = "timeline.png"
    return files


def validate_report(report: dict[str, Any]) -> None:
    """Validate against copilot/schemas/bench_report.schema.json (CopilotError if not)."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    try:
        jsonschema.validate(report, schema)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(x) for x in exc.absolute_path)
        raise CopilotError(f"report.json invalid at {path or '(root)'}: {exc.message}"
                           ) from None


def command_line() -> str:
    """This process's command line, as it would be typed."""
    prog = Path(sys.argv[0]).name
    return " ".join([prog if prog != "__main__.py" else "copilot", *sys.argv[1:]])
