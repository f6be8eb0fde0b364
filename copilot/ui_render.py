"""HTML of the web UI's panels (no gradio here): header badge, alarm panel, conversation
history, what was heard, "what you can ask", the engineering strip. Times: media seconds
(``m:ss``) and wall clock (``HH:MM:SS``)."""

from __future__ import annotations

import html
import time
from typing import Any

from copilot.ui_state import AlarmRow, Heard, Item

#: The model's validation when its config.json says nothing (``validated_on``).
UNVALIDATED = "trained on synthetic scenes only; not validated on real surgery"


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def fmt_t(t: float | None) -> str:
    """Media time as m:ss.s ("--:--" when unknown)."""
    if t is None:
        return "--:--"
    t = max(0.0, float(t))
    return f"{int(t // 60):02d}:{t % 60:04.1f}"


def fmt_left(s: float) -> str:
    """Seconds left as m:ss."""
    s = max(0, int(s + 0.999))
    return f"{s // 60}:{s % 60:02d}"


def _clock(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall))


def evidence_text(ev: dict[str, Any]) -> str:
    """A short one-line summary of a step's evidence dict."""
    parts = []
    for key, val in ev.items():
        if key == "triples" and isinstance(val, list):
            tr = []
            for t in val[:3]:
                if isinstance(t, dict):
                    tr.append(" ".join(str(t.get(k, "")) for k in ("s", "p", "o")
                                       if t.get(k) is not None) or str(t)[:80])
                else:
                    tr.append(" ".join(map(str, t)) if isinstance(t, list | tuple) else str(t))
            parts.append("facts: " + "; ".join(tr) + (" ..." if len(val) > 3 else ""))
        elif key == "observations" and isinstance(val, list):
            obs = [f"{o.get('name')}@{float(o.get('t_s', 0)):.1f}s ({float(o.get('score', 0)):.2f})"
                   if isinstance(o, dict) else str(o) for o in val[:3]]
            parts.append("seen: " + ", ".join(obs) + (" ..." if len(val) > 3 else ""))
        elif key == "scores" and isinstance(val, dict):
            parts.append(", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in list(val.items())[:4]))
        else:
            parts.append(f"{key}: {str(val)[:80]}")
    return " | ".join(parts)


def steps_html(steps: list[dict[str, Any]]) -> str:
    """The reasoning steps as an ordered HTML list (claim, held or not, evidence)."""
    if not steps:
        return "<p class='muted'>no reasoning steps</p>"
    rows = []
    for s in steps:
        claim = s.get("claim") or s.get("text") or s.get("rule") or str(s)[:120]
        ok = s.get("ok", True)
        ev = s.get("evidence") if isinstance(s.get("evidence"), dict) else {
            k: v for k, v in s.items() if k not in ("claim", "ok")}
        mark = "&#10003;" if ok else "&#10007;"
        rows.append(f"<li class='step {'ok' if ok else 'no'}'><b>{mark}</b> {_e(claim)}"
                    f"<div class='ev'>{_e(evidence_text(ev or {}))}</div></li>")
    return "<ol class='steps'>" + "".join(rows) + "</ol>"


ORIGINS = {"typed": "you typed", "mic": "you said", "feed": "from the feed",
           "ack": "Acknowledge button", "vision": "vision"}


def turn_html(item: Item, open_: bool) -> str:
    """One question with its own answer, confidences, steps and evidence (collapsible)."""
    meta = []
    parse = next((st["evidence"]["scores"].get("parse") for st in item.steps
                  if isinstance(st.get("evidence"), dict)
                  and isinstance(st["evidence"].get("scores"), dict)
                  and "parse" in st["evidence"]["scores"]), None)
    if parse is not None:  # a command: how well it was understood, apart from what was seen
        meta.append(f"command understood {float(parse):.2f}")
    elif item.confidence is not None:
        meta.append(f"answer confidence {item.confidence:.2f}")
    if item.detection is not None:
        meta.append(f"detection {item.detection:.2f}")
    if item.abstained:
        meta.append("<b>abstained</b>")
    reason = f"<div class='muted'>{_e(item.reason)}</div>" if item.abstained and item.reason \
        else ""
    q = item.question or ("(Acknowledge button)" if item.origin == "ack" else "(not shown)")
    return (f"<details class='turn {_e(item.origin)}' data-uid='{item.uid}' "
            f"data-origin='{_e(item.origin)}'{' open' if open_ else ''}>"
            f"<summary><span class='q'>{_e(ORIGINS.get(item.origin, item.origin))} at "
            f"{fmt_t(item.media_t_s)}: {_e(q)}</span>"
            f"<div class='a'>{_e(item.text)}</div>"
            f"<div class='muted meta'>{' &middot; '.join(meta)}</div></summary>"
            f"{reason}<div class='turn-steps'>{steps_html(item.steps)}</div></details>")


def history_html(items: list[Item], limit: int = 40) -> str:
    """Every question with its own answer, newest first; replays are separated."""
    answers = [i for i in items if i.kind == "answer"][::-1][:limit]
    if not answers:
        return "<div id='history' class='empty'>No questions yet: ask with the microphone " \
               "or type a question.</div>"
    rows, session = [], None
    for k, it in enumerate(answers):
        if session is not None and it.session != session:
            rows.append(f"<div class='sep'>replay {session} started</div>")
        session = it.session
        rows.append(turn_html(it, open_=k == 0))
    return f"<div id='history' data-n='{len(answers)}'>" + "".join(rows) + "</div>"


def alarms_html(rows: list[AlarmRow]) -> str:
    """The alarm panel: one row per alert kind and place with count and first / last."""
    if not rows:
        return "<div id='alerts' class='alerts empty' data-open='0'>No alerts.</div>"
    out = []
    n_open = 0
    for r in rows:
        first, last = r.items[0], r.last
        state = "OPEN" if r.open else "acknowledged"
        n_open += r.open
        count = f"<span class='count'>&times;{r.count}</span>" if r.count > 1 else ""
        muted = " <i>(muted)</i>" if last.silent else ""
        when = (f"first {_clock(first.wall_s)} ({fmt_t(first.media_t_s)})" if r.count > 1
                else "")
        out.append(
            f"<div class='alert {'open' if r.open else 'ack'} {_e(last.level)}' "
            f"data-uid='{last.uid}' data-rule='{_e(last.rule)}' data-count='{r.count}'>"
            f"<b>{state}</b> {count} <span class='rule'>{_e(last.rule.replace('_', ' '))}"
            f"</span>: {_e(last.text)}{muted}<div class='muted'>last {_clock(last.wall_s)} "
            f"({fmt_t(last.media_t_s)}) {when}</div></div>")
    return f"<div id='alerts' class='alerts' data-open='{n_open}' data-rows='{len(rows)}'>" \
        + "".join(out) + "</div>"


def heard_html(heard: list[Heard], chatter: int) -> str:
    """The last utterances recognised (commands) and the chatter count."""
    rows = [f"<li class='{'ok' if h.accepted else 'no'}'>[{_e(h.origin)}] {_e(h.text or '-')}"
            + ("" if h.accepted else f" <i>({_e(h.reason)})</i>")
            + ("" if h.speaker_score is None else f" <i>voice {h.speaker_score:.2f}</i>")
            + "</li>" for h in heard[-6:][::-1]]
    return (f"<div id='heard'><ul>{''.join(rows) or '<li>nothing yet</li>'}</ul>"
            f"<div class='muted'>{chatter} utterance(s) of chatter ignored</div></div>")


def header_html(a: dict[str, Any]) -> str:
    """The header badge: what the copilot assumes (procedure, the model's validation, the
    off-label state, the vision backend), the session, and the alerts-muted badge."""
    off = a.get("off_label")
    off_txt = "unknown" if off is None else ("OFF-LABEL: alerts withheld" if off
                                             else "on-label")
    backend = a.get("vision_backend") or "unknown"
    why = a.get("vision_backend_reason")
    muted = ""
    if a.get("muted_left_s"):
        muted = (f"<span id='mute-badge' class='badge warn' data-left='"
                 f"{int(a['muted_left_s'])}'>alerts muted, {fmt_left(a['muted_left_s'])} left"
                 f"</span>")
    return (
        f"<div id='assumes' data-procedure='{_e(a.get('procedure') or 'unknown')}' "
        f"data-off-label='{_e(off)}'>"
        f"<span class='badge proc'>procedure: <b>{_e(a.get('procedure') or 'unknown')}</b>"
        f"</span><span class='badge {'warn' if off else 'ok'}' id='off-label'>{off_txt}</span>"
        f"<span class='badge' id='backend' title='{_e(why or '')}'>vision: {_e(backend)}"
        f"{' (' + _e(why) + ')' if why else ''}</span>{asr_badge(a)}{voice_badge(a)}"
        f"<span class='badge' id='session'>session {int(a.get('session') or 1)}</span>"
        f"{cvs_badge(a.get('cvs'))}{withheld_badge(a.get('alerts_withheld'))}{muted}"
        f"<div id='validated' class='muted'>model validated on: "
        f"{_e(a.get('validated_on') or UNVALIDATED)}</div></div>")


def _backend_badge(bid: str, label: str, name: str, why: str | None) -> str:
    """A header badge naming the backend that runs, warning with why when it is a fallback."""
    return (f"<span class='badge{' warn' if why else ''}' id='{bid}' title='{_e(why or '')}'>"
            f"{label}: {_e(name)}{' (' + _e(why) + ')' if why else ''}</span>")


def asr_badge(a: dict[str, Any]) -> str:
    """The recogniser that listens, with why when it is a fallback ('' when not listening)."""
    asr = a.get("asr_backend")
    if not asr or asr == "none":
        return ""
    return _backend_badge("asr-badge", "speech", asr, a.get("asr_backend_reason"))


def voice_badge(a: dict[str, Any]) -> str:
    """The copilot's voice, with why when it is a fallback or off ('' when nothing speaks
    and nothing is wrong)."""
    voice, why = a.get("voice_backend"), a.get("voice_backend_reason")
    if not voice or (voice == "none" and not why):
        return ""
    return _backend_badge("voice-badge", "voice", voice, why)


def withheld_badge(withheld: dict[str, str] | None) -> str:
    """The alert rules that do not run on this (real) video, with why in the title."""
    if not withheld:
        return ""
    why = "; ".join(f"{r}: {w}" for r, w in withheld.items())
    return (f"<span class='badge warn' id='withheld-badge' title='{_e(why)}'>not validated on "
            f"real video, no alert from: {_e(', '.join(r.replace('_', ' ') for r in withheld))}"
            "</span>")


def cvs_badge(cvs: dict[str, Any] | None) -> str:
    """Who calls the critical view of safety; when it is the surgeon, their latest statement
    and its media time ("CVS confirmed by you at 00:12")."""
    if not cvs:
        return ""
    state, why = cvs.get("state"), _e(cvs.get("why") or "")
    if cvs.get("source") != "surgeon":
        return (f"<span class='badge' id='cvs-badge' data-state='vision' title='{why}'>"
                "CVS: vision's call</span>")
    if state is None:
        return (f"<span class='badge warn' id='cvs-badge' data-state='unstated' title='{why}'>"
                "CVS: your call, not confirmed yet</span>")
    t = int(float(cvs.get("stated_at_s") or 0.0))
    at = f"{t // 60}:{t % 60:02d}"
    said = "confirmed" if state else "NOT confirmed"
    return (f"<span class='badge {'ok' if state else 'warn'}' id='cvs-badge' "
            f"data-state='{'confirmed' if state else 'denied'}' title='{why}'>"
            f"CVS {said} by you at {at}</span>")


def asks_html(cat: Any, teach: list[tuple[str, str]] | None = None) -> str:
    """"What you can ask", from the command catalogue: one example per intent, questions
    and commands apart, then the teaching commands (``teach``: (intent, sentence) pairs);
    a click puts the example in the question box."""
    if cat is None:
        return "<div id='asks' class='muted'>the command catalogue is not available</div>"
    groups: dict[bool, list[str]] = {False: [], True: []}
    for name, intent in cat.intents.items():
        example = ""
        for tpl in intent.template_specs:
            sentences = cat.template_sentences(tpl)
            if sentences:  # a middle slot value reads better than the first ("one minutes")
                example = sentences[len(sentences) // 2][0]
                break
        if example:
            groups[intent.state_changing].append(
                f"<li data-intent='{_e(name)}'><a href='#' class='ask-example'>"
                f"{_e(cat.wake_word)}, {_e(example)}</a></li>")
    taught = "".join(f"<li data-intent='{_e(i)}'><a href='#' class='ask-example'>"
                     f"{_e(cat.wake_word)}, {_e(t)}</a></li>" for i, t in teach or [])
    teach_html = ("<b>Teach (point with an instrument, or click the video)</b><ul>" + taught
                  + "</ul>") if taught else ""
    return ("<div id='asks'><b>Questions</b><ul>" + "".join(groups[False]) + "</ul>"
            "<b>Commands</b><ul>" + "".join(groups[True]) + "</ul>" + teach_html +
            "<div class='muted'>say or type them; the wake word is needed when speaking "
            "hands-free</div></div>")


def status_html(s: dict[str, Any]) -> str:
    """The engineering strip under the video: state, composited fps, latency, frames,
    stage health (the picture itself carries none of it)."""
    e = _e
    if not s.get("running") and s.get("seq", 0) == 0:
        state = "starting" if not s.get("error") else "stopped"
    else:
        state = "running" if s.get("running") else "ended"
    lat = s.get("latency_ms")
    rows = [
        f"<div id='status-main' data-seq='{s.get('seq', 0)}' data-fps='{s.get('page_fps', 0)}' "
        f"data-state='{state}'><b>{state}</b> &middot; composited {s.get('page_fps', 0):.1f} "
        f"fps (source {s.get('source_fps') or 0:.1f}) &middot; latency "
        f"{'-' if lat is None else f'{lat:.0f} ms'} &middot; t={s.get('media_t_s', 0):.1f} s "
        f"&middot; frame {s.get('frames_out', 0)} (dropped {s.get('dropped', 0)}) "
        f"&middot; session {s.get('runs', 0)}</div>"
    ]
    stages = []
    for name, h in sorted((s.get("health") or {}).items()):
        st = h.get("state", "?")
        bad = st not in ("ok", "starting", "stopped") or h.get("errors") or h.get("hangs")
        tip = e(str(h.get("last_error") or ""))
        extra = ""
        if h.get("errors") or h.get("hangs"):
            extra = f" ({h.get('errors', 0)} err, {h.get('hangs', 0)} hang, " \
                    f"{h.get('restarts', 0)} restart)"
        stages.append(f"<span class='{'bad' if bad else 'ok'}' title='{tip}' "
                      f"data-stage='{e(name)}' data-state='{e(st)}'>{e(name)}:{e(st)}"
                      f"{extra}</span>")
    if stages:
        rows.append("<div id='health'>stages: " + " &middot; ".join(stages) + "</div>")
    if not s.get("brain", True):
        rows.append("<div class='muted'>no copilot brain in this build: video and speech "
                    "only</div>")
    if s.get("error"):
        rows.append(f"<div class='bad'>{e(s['error'])}</div>")
    if s.get("voice_error"):
        rows.append(f"<div class='bad'>{e(s['voice_error'])}</div>")
    consent = "ON: microphone clips are stored" if s.get("consent") else \
        "off: microphone audio is processed in memory and discarded"
    rows.append(f"<div class='muted'>audio consent {consent}</div>")
    return "<div id='status-box'>" + "".join(rows) + "</div>"
