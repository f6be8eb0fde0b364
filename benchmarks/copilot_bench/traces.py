"""Trace statistics of one run: latency per stage and end-to-end path (ms), resources."""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.copilot_bench.scoring import _last_spoken_ns, match_alerts, scripted_events

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

# ----------------------------------------------------------------------------- statistics
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
