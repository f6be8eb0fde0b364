"""The post-operative report: one self-contained HTML page built from session.jsonl.

``build_report(session_path, out_html, trace_path=None)`` writes a page with: the run's
header, the phase / region timeline plot (matplotlib Agg, PNG embedded as base64) with
alerts and bookmarks marked, the alerts with their reasoning steps, the questions with answers
and steps, bookmarks, controls, health / faults, and a latency summary (from the trace when
given, else from the session's ``end`` line). Non-addressed speech never has words in the
session, so it cannot appear here: only its count.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from copilot.errors import CopilotError
from copilot.session import Session, read_session
from copilot.stats import percentile
from copilot.teaching import taught_html
from vision.labels import PHASES, SEGMENTS

PHASE_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1"]
LEVEL_CSS = {"alert": "#c62828", "warning": "#ef6c00", "info": "#1565c0"}


def _esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _t(t: Any) -> str:
    try:
        s = max(0, int(round(float(t))))
    except (TypeError, ValueError):
        return "-"
    return f"{s // 60}:{s % 60:02d}"


def _runs(points: list[tuple[float, str]], gap_s: float = 2.0) -> list[tuple[str, float, float]]:
    """(time, label) samples -> (label, start, end) runs; a gap over ``gap_s`` ends a run."""
    runs: list[tuple[str, float, float]] = []
    for t, name in sorted(points):
        if runs and runs[-1][0] == name and t - runs[-1][2] <= gap_s:
            runs[-1] = (name, runs[-1][1], t)
        else:
            if runs and t - runs[-1][2] <= gap_s:
                runs[-1] = (runs[-1][0], runs[-1][1], t)
            runs.append((name, t, t))
    return runs


def timeline_png(s: Session) -> bytes:
    """The timeline plot: phase and region lanes, alerts and bookmarks, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phase_pts: list[tuple[float, str]] = []
    region_pts: list[tuple[float, str]] = []
    for r in s.of("obs", "observation"):
        if r.get("score", 0) < 0.5:
            continue
        if r.get("kind") == "phase":
            phase_pts.append((float(r["t_s"]), r["name"]))
        elif r.get("kind") == "region":
            region_pts.append((float(r["t_s"]), r["name"]))
    end = s.first("end") or {}
    times = [t for t, _ in phase_pts + region_pts]
    t_max = max([*times, float(end.get("duration_s") or 0.0), 1.0])
    fig, ax = plt.subplots(figsize=(11, 3.2), dpi=100)
    lanes = [("phase", phase_pts, list(PHASES)), ("region", region_pts,
                                                  ["abdominal_cavity", *SEGMENTS, "out_of_body"])]
    yticks, ylabels = [], []
    handles: dict[str, Any] = {}
    for li, (lane, pts, names) in enumerate(lanes):
        y = len(lanes) - li
        yticks.append(y)
        ylabels.append(lane)
        for name, t0, t1 in _runs(pts):
            idx = names.index(name) if name in names else 0
            colour = PHASE_COLOURS[idx % len(PHASE_COLOURS)] if lane == "phase" else \
                plt.cm.tab20(idx % 20)
            bar = ax.broken_barh([(t0, max(t1 - t0, t_max / 400))], (y - 0.35, 0.7),
                                 facecolors=colour)
            handles.setdefault(name, bar)
            if t1 - t0 > t_max / 12:
                ax.text((t0 + t1) / 2, y, name.replace("_", " ")[:28], ha="center",
                        va="center", fontsize=7, color="white")
    for a in s.of("alert"):
        t = a.get("media_t_s")
        if t is not None:
            ax.axvline(float(t), color=LEVEL_CSS.get(a.get("level"), "#c62828"), lw=1.5)
            ax.text(float(t), len(lanes) + 0.55, a.get("rule", "").replace("_", " "),
                    rotation=30, fontsize=7, color="#c62828", ha="left", va="bottom")
    for b in s.of("bookmark"):
        t = b.get("media_t_s")
        if t is not None:
            ax.plot([float(t)], [0.45], marker="v", color="#1565c0", ms=9)
    for q in s.of("answer"):
        t = q.get("media_t_s")
        if t is not None:
            ax.plot([float(t)], [0.2], marker="o", color="#2e7d32", ms=5)
    phase_handles = [(handles[p], p) for p in PHASES if p in handles]
    if phase_handles:
        ax.legend([h for h, _ in phase_handles], [n for _, n in phase_handles], fontsize=7,
                  ncol=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False)
    ax.set_xlim(0, t_max * 1.02)
    ax.set_ylim(0, len(lanes) + 1.4)
    ax.set_yticks(yticks, ylabels)
    ax.set_xlabel("feed time (s)   ▼ bookmark   ● question   | alert")
    ax.set_title("Phase and region timeline")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _thumb_html(rec: dict[str, Any]) -> str:
    th = rec.get("thumbnail")
    if not isinstance(th, dict) or not th.get("jpeg_b64"):
        return ""
    return (f"<br><img class='thumb' alt='frame {_esc(th.get('frame_id'))}' "
            f"title='frame {_esc(th.get('frame_id'))} at {_t(th.get('t_s'))}' "
            f"src='data:image/jpeg;base64,{_esc(th['jpeg_b64'])}'>")


def _steps_html(steps: list[dict[str, Any]] | None) -> str:
    if not steps:
        return ""
    items = []
    for st in steps:
        ok = "" if st.get("ok", True) else " <b>(failed)</b>"
        ev = st.get("evidence") or {}
        detail = []
        if ev.get("observations"):
            obs = ev["observations"][:4]
            detail.append("frames " + ", ".join(
                f"#{o.get('frame_id')} @{_t(o.get('t_s'))} {_esc(o.get('name'))} "
                f"{float(o.get('score', 0)):.2f}" for o in obs))
        if ev.get("triples"):
            tr = ev["triples"][:3]
            detail.append("facts " + "; ".join(
                _esc(f"{x.get('s')} {x.get('p')} {x.get('o')}") for x in tr))
        if ev.get("rule"):
            detail.append("rule: " + _esc(ev["rule"]))
        extra = f"<div class='ev'>{' | '.join(detail)}</div>" if detail else ""
        items.append(f"<li>{_esc(st.get('claim'))}{ok}{extra}</li>")
    return "<details><summary>reasoning steps</summary><ol>" + "".join(items) + \
        "</ol></details>"


def latency_summary(trace_path: str | Path | None, s: Session) -> dict[str, Any]:
    """Latency numbers (ms): per span percentiles from the trace plus the two key latencies.

    ``speech_end->answer_audio``: ``tts.first_audio`` minus the end of ``speech.utterance``
    with the same trace id; ``event->alert_audio``: ``tts.first_audio`` of an alert minus the
    ``decode.frame`` end of the alert's frame. Without a trace, the session's ``end`` line.
    """
    import numpy as np

    if trace_path is None or not Path(trace_path).is_file():
        end = s.first("end") or {}
        return {"source": "session", "latency": end.get("latency") or {}}
    from copilot.tracing import read_trace

    spans = read_trace(Path(trace_path))
    durs: dict[str, list[float]] = defaultdict(list)
    utt_end: dict[str, int] = {}
    first_audio: dict[str, int] = {}
    frame_end: dict[int, int] = {}
    alert_frame: dict[str, int] = {}
    for sp in spans:
        key = f"{sp.get('stage')}.{sp.get('name')}"
        if sp.get("dur_ms") is not None and sp.get("t1_ns") != sp.get("t0_ns"):
            durs[key].append(float(sp["dur_ms"]))
        tid = sp.get("trace_id")
        if key == "speech.utterance":
            utt_end[tid] = int(sp["t1_ns"])
        elif key == "tts.first_audio":
            first_audio.setdefault(tid, int(sp["t0_ns"]))
        elif key == "decode.frame" and sp.get("frame_id") is not None:
            frame_end[int(sp["frame_id"])] = int(sp["t1_ns"])
        elif key == "alert.raise" and sp.get("frame_id") is not None:
            alert_frame[tid] = int(sp["frame_id"])

    def pct(vals: list[float]) -> dict[str, float]:
        a = np.asarray(vals, np.float64)
        return {"n": int(a.size), "p50": round(percentile(a, 50), 2),
                "p95": round(percentile(a, 95), 2), "max": round(float(a.max()), 2)}

    out: dict[str, Any] = {"source": str(trace_path),
                           "spans": {k: pct(v) for k, v in sorted(durs.items()) if v}}
    ans = [(first_audio[t] - utt_end[t]) / 1e6 for t in utt_end if t in first_audio]
    if ans:
        out["speech_end->answer_audio"] = pct(ans)
    al = [(first_audio[t] - frame_end[f]) / 1e6 for t, f in alert_frame.items()
          if t in first_audio and f in frame_end]
    if al:
        out["event->alert_audio"] = pct(al)
    return out


CSS = """
body{font-family:system-ui,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;
max-width:1200px}h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{border:1px solid #ddd;
padding:4px 6px;vertical-align:top;text-align:left}th{background:#f4f4f4}
.ev{color:#555;font-size:12px}.lvl{color:white;border-radius:3px;padding:1px 5px}
img{max-width:100%;border:1px solid #ddd}img.thumb{width:192px;margin-top:4px}.muted{color:#888}
"""


def privacy_html(start: dict[str, Any], spans: list[dict[str, Any]],
                 opened: list[dict[str, Any]] | None = None) -> str:
    """The header's privacy line and the hidden spans ("0:41-0:52 hidden: out of body");
    ``opened``: "hiding" records, shown when their span never closed (a cut run)."""
    if start.get("anonymise") is False:
        return ("<p id='privacy'><b>Not anonymised</b> (--no-anonymise: a research recording "
                "of already de-identified data); out-of-body frames and text are kept.</p>")
    if "anonymise" not in start:
        return "<p id='privacy'>Anonymisation: not recorded.</p>"
    items = "".join(f"<li>{_t(h.get('start_s'))}-{_t(h.get('end_s'))} hidden: "
                    f"{_esc(h.get('reason'))} ({_esc(h.get('frames'))} frames)</li>"
                    for h in spans)
    starts = {round(float(h.get("start_s") or 0), 3) for h in spans}
    for o in opened or ():
        if round(float(o.get("media_t_s") or 0), 3) not in starts:
            spans = [*spans, o]
            items += (f"<li>{_t(o.get('media_t_s'))}- hidden: {_esc(o.get('reason'))} (the "
                      "run ended while hidden)</li>")
    return ("<p id='privacy'>Anonymised: out-of-body frames are hidden and everything outside "
            f"the field of view is blacked out; {len(spans)} hidden span(s)"
            f"{':' if spans else '.'}</p>" + (f"<ul id='hidden'>{items}</ul>" if spans else ""))


def _why(reason: str | None) -> str:
    """' (reason)' escaped, or '' when there is none."""
    return f" ({_esc(reason)})" if reason else ""


def validity_html(s: Session) -> str:
    """What the copilot assumed: the stated procedure, who called the CVS, the surgeon's
    CVS statements and the off-label spans (vision alerts withheld)."""
    start = s.first("start") or {}
    out = [f"<p id='assumed'>Procedure: {_esc(start.get('procedure', 'not recorded'))}. "
           f"Critical view of safety called by: {_esc(start.get('cvs_source', 'the vision'))}"
           f"{_why(start.get('cvs_why'))}.</p>"]
    withheld = start.get("alerts_withheld") or {}
    if withheld:
        out.append("<p id='withheld'>Alerts not raised on this video (real video; each rests on "
                   "an output no real label has taught): " + "; ".join(
                       f"{_esc(r)} ({_esc(why)})" for r, why in withheld.items()) + ".</p>")
    conf = s.of("cvs_confirmation")
    if conf:
        out.append("<ul id='cvs_confirmations'>" + "".join(
            f"<li>{_t(c.get('media_t_s'))} surgeon: critical view "
            f"{'confirmed' if c.get('confirmed') else 'not confirmed'}</li>" for c in conf)
            + "</ul>")
    spans: dict[Any, dict[str, Any]] = {}
    for r in s.of("off_label"):  # start and end records of each span, keyed by start
        spans[r.get("start_s")] = r
    if spans:
        out.append(f"<h2>Off-label spans ({len(spans)})</h2><ul id='off_label'>" + "".join(
            f"<li>{_t(r.get('start_s'))}-"
            f"{_t(r.get('end_s')) if r.get('end_s') is not None else 'end'} off-label: "
            f"{_esc(r.get('reason'))} (vision alerts withheld)</li>"
            for r in spans.values()) + "</ul>")
    return "".join(out)


def build_report(session_path: str | Path, out_html: str | Path,
                 trace_path: str | Path | None = None) -> Path:
    """Write the report for ``session_path`` to ``out_html`` (atomically); returns its path.

    CopilotError when the session is missing or empty (a cut last line is tolerated).
    """
    s = read_session(session_path)
    start = s.first("start") or {}
    end = s.first("end") or {}
    png = timeline_png(s)
    b64 = base64.b64encode(png).decode("ascii")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Copilot report"
             f"</title><style>{CSS}</style></head><body>",
             "<h1>Surgical copilot: post-operative report</h1>",
             "<table><tr><th>source</th><th>scenario</th><th>mode</th><th>frames</th>"
             "<th>duration</th><th>exit</th></tr>",
             f"<tr><td>{_esc(start.get('source'))}</td><td>{_esc(start.get('scenario'))}</td>"
             f"<td>{_esc(start.get('mode'))}</td><td>{_esc(end.get('frames_out'))} / "
             f"{_esc(end.get('frames_in'))}</td><td>{_esc(end.get('duration_s'))} s</td>"
             f"<td>{_esc(end.get('exit_code'))} {_esc(end.get('error') or '')}</td></tr>"
             "</table>",
             f"<p>Vision: {_esc(start.get('vision_backend', 'not recorded'))}"
             f"{_why(start.get('vision_backend_reason'))}</p>",
             f"<p id='asr'>Speech recogniser: {_esc(start.get('asr_backend', 'not recorded'))}"
             f"{_why(start.get('asr_backend_reason'))}</p>",
             f"<p id='voice'>Voice: {_esc(start.get('voice_backend', 'not recorded'))}"
             f"{_why(start.get('voice_backend_reason'))}</p>", validity_html(s),
             privacy_html(start, s.of("hidden"), s.of("hiding")),
             taught_html(s.of("taught"), s.of("taught_summary"))]
    if not end:
        parts.append("<p class='muted'>The session has no end record (the run was cut "
                     "short); this report shows what was recorded.</p>")
    if s.skipped:
        parts.append(f"<p class='muted'>{s.skipped} unreadable line(s) skipped.</p>")
    parts.append("<h2>Timeline</h2>")
    parts.append(f"<img id='timeline' alt='phase and region timeline' "
                 f"src='data:image/png;base64,{b64}'>")
    alerts = s.of("alert")
    parts.append(f"<h2>Alerts ({len(alerts)})</h2>")
    if alerts:
        parts.append("<table id='alerts'><tr><th>time</th><th>rule</th><th>alert</th>"
                     "<th>spoken</th></tr>")
        for a in alerts:
            colour = LEVEL_CSS.get(a.get("level"), "#c62828")
            parts.append(
                f"<tr><td>{_t(a.get('media_t_s'))}</td><td><span class='lvl' "
                f"style='background:{colour}'>{_esc(a.get('rule'))}</span></td>"
                f"<td>{_esc(a.get('text'))}{_thumb_html(a)}{_steps_html(a.get('steps'))}</td>"
                f"<td>{'muted' if a.get('muted') else 'yes'}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>No alerts.</p>")
    answers = s.of("answer")
    parts.append(f"<h2>Questions and answers ({len(answers)})</h2>")
    if answers:
        parts.append("<table id='answers'><tr><th>time</th><th>question</th><th>intent</th>"
                     "<th>answer</th><th>confidence</th></tr>")
        for q in answers:
            parts.append(
                f"<tr><td>{_t(q.get('media_t_s'))}</td><td>{_esc(q.get('question'))}</td>"
                f"<td>{_esc(q.get('intent'))}</td><td>{_esc(q.get('text'))}"
                f"{' <i>(abstained)</i>' if q.get('abstained') else ''}"
                f"{_steps_html(q.get('steps'))}</td>"
                f"<td>{float(q.get('confidence') or 0):.2f}</td></tr>")
        parts.append("</table>")
    bms = s.of("bookmark")
    parts.append(f"<h2>Bookmarks ({len(bms)})</h2>")
    if bms:
        parts.append("<ul id='bookmarks'>" + "".join(
            f"<li>{_t(b.get('media_t_s'))} (frame {_esc(b.get('frame_id'))}){_thumb_html(b)}</li>"
            for b in bms) + "</ul>")
    ctl = s.of("control")
    if ctl:
        parts.append(f"<h2>Commands ({len(ctl)})</h2><ul>" + "".join(
            f"<li>{_t(c.get('media_t_s'))} {_esc(c.get('command'))} "
            f"{_esc(json.dumps(c.get('args') or {}))}</li>" for c in ctl) + "</ul>")
    chatter = len(s.of("speech"))
    parts.append(f"<p class='muted'>{chatter} utterance(s) not addressed to the copilot "
                 "(not recorded).</p>")
    faults = s.of("fault", "health")
    if faults:
        parts.append(f"<h2>Health and faults ({len(faults)})</h2><ul>" + "".join(
            f"<li>{_t(f.get('media_t_s'))} {_esc(f.get('type'))}: "
            f"{_esc(json.dumps({k: v for k, v in f.items() if k not in ('type', 't_ns')}))}"
            "</li>" for f in faults[:200]) + "</ul>")
    lat = latency_summary(trace_path, s)
    parts.append("<h2>Latency</h2>")
    rows = []
    for key in ("speech_end->answer_audio", "event->alert_audio"):
        if key in lat:
            v = lat[key]
            rows.append(f"<tr><td><b>{_esc(key)}</b></td><td>{v['n']}</td><td>{v['p50']}</td>"
                        f"<td>{v['p95']}</td><td>{v['max']}</td></tr>")
    for k, v in (lat.get("spans") or {}).items():
        rows.append(f"<tr><td>{_esc(k)}</td><td>{v['n']}</td><td>{v['p50']}</td>"
                    f"<td>{v['p95']}</td><td>{v['max']}</td></tr>")
    if rows:
        parts.append("<table id='latency'><tr><th>ms</th><th>n</th><th>p50</th><th>p95</th>"
                     "<th>max</th></tr>" + "".join(rows) + "</table>")
    elif lat.get("latency"):
        parts.append(f"<pre id='latency'>{_esc(json.dumps(lat['latency'], indent=1))}</pre>")
    else:
        parts.append("<p>No latency data (run with --trace).</p>")
    parts.append("</body></html>")
    out = Path(out_html)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".report-", suffix=".html")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(parts))
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except OSError as exc:
        raise CopilotError(f"cannot write the report {out}: {exc}") from None
    return out
