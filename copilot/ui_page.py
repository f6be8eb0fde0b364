"""The gradio page of ``copilot ui`` (layout and event wiring; logic lives in copilot.ui)."""

from __future__ import annotations

import html
import logging
import time
from typing import Any

from copilot.errors import CopilotError
from copilot.ui_state import alerts_html, answer_html, heard_html, steps_html

log = logging.getLogger(__name__)

#: Hands-free listening: the page captures the microphone itself (Web Audio) and posts
#: 0.5 s blocks of 16-bit PCM to ``api/handsfree`` (no file, no gradio upload); the copilot
#: listens for the wake word. ``HEAD_JS`` defines ``window.copilotHandsFree``.
HANDS_FREE_HTML = """
<div id='hf-box'>
  <button id='hf-start' class='lg secondary' onclick='window.copilotHandsFree.start()'>
    Start listening</button>
  <button id='hf-stop' class='lg secondary' onclick='window.copilotHandsFree.stop()'>
    Stop listening</button>
  <span id='hf-state' data-state='off'>off</span>
  <div class='muted'>say "copilot, ..." then the question; audio is not stored without
  consent</div>
</div>
"""

HEAD_JS = """
<script>
// Raw microphone audio for the copilot's own VAD / denoiser / recogniser: the browser's
// automatic gain, noise suppression and echo cancellation distort commands in OR noise.
(function () {
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia || md.__copilotRaw) return;
  const orig = md.getUserMedia.bind(md);
  md.getUserMedia = (c) => {
    if (c && c.audio) {
      const raw = {echoCancellation: false, noiseSuppression: false, autoGainControl: false};
      c = Object.assign({}, c, {audio: Object.assign(typeof c.audio === 'object' ? c.audio : {},
                                                      raw)});
    }
    return orig(c);
  };
  md.__copilotRaw = true;
})();
window.copilotHandsFree = (function () {
  let ctx = null, stream = null, proc = null, parts = [], n = 0, sent = 0;
  const show = (s) => { const e = document.getElementById('hf-state');
    if (e) { e.textContent = s; e.dataset.state = s.split(' ')[0]; } };
  function flush() {
    if (!n) return;
    const all = new Int16Array(n); let o = 0;
    for (const p of parts) { for (let i = 0; i < p.length; i++) {
      const v = Math.max(-1, Math.min(1, p[i])); all[o++] = v < 0 ? v * 32768 : v * 32767; } }
    parts = []; n = 0; sent += all.length;
    fetch('api/handsfree?rate=' + ctx.sampleRate, {method: 'POST', body: all.buffer,
      headers: {'Content-Type': 'application/octet-stream'}}).catch(() => show('error'));
    show('listening ' + (sent / ctx.sampleRate).toFixed(1) + ' s');
  }
  async function start() {
    if (ctx) return;
    try {
      stream = await navigator.mediaDevices.getUserMedia({audio: {channelCount: 1,
        echoCancellation: false, noiseSuppression: false, autoGainControl: false}});
    } catch (e) { show('no microphone'); return; }
    ctx = new AudioContext(); sent = 0;
    const src = ctx.createMediaStreamSource(stream);
    proc = ctx.createScriptProcessor(4096, 1, 1);
    proc.onaudioprocess = (ev) => {
      const x = ev.inputBuffer.getChannelData(0);
      parts.push(new Float32Array(x)); n += x.length;
      if (n >= ctx.sampleRate / 2) flush();
    };
    src.connect(proc); proc.connect(ctx.destination);
    show('listening 0.0 s');
  }
  async function stop() {
    if (!ctx) return;
    flush();
    proc.disconnect(); stream.getTracks().forEach((t) => t.stop());
    await ctx.close(); ctx = null;
    await fetch('api/handsfree/stop', {method: 'POST',
      headers: {'Content-Type': 'application/octet-stream'}});
    show('off');
  }
  return {start, stop};
})();
</script>
"""

CSS = """
#video-box {background:#000; border-radius:6px; overflow:hidden; text-align:center}
#video-box img {width:100%; height:auto; display:block; image-rendering:auto}
#status {font-family:ui-monospace,monospace; font-size:13px; line-height:1.35}
#status .bad {color:#e5484d; font-weight:600}
#status .ok {color:#2f9e44}
.alerts .alert {padding:6px 8px; margin:4px 0; border-radius:4px}
.alerts .open {background:#ffe3e3; color:#a11; border-left:5px solid #e03131}
.alerts .ack {background:#f1f3f5; color:#555; border-left:5px solid #adb5bd}
.answer .q {color:#555; font-size:13px}
.answer .a {font-size:18px; font-weight:600; margin:4px 0}
.muted {color:#777; font-size:12px}
ol.steps li {margin:3px 0}
ol.steps li.no b {color:#e03131}
ol.steps li.ok b {color:#2f9e44}
ol.steps .ev {color:#666; font-size:12px}
"""


def theme() -> Any:
    """A gradio theme whose fonts are local / system fonts (nothing from a font CDN)."""
    import gradio as gr

    return gr.themes.Default(
        primary_hue="blue",
        font=[gr.themes.Font("system-ui"), gr.themes.Font("Segoe UI"), "sans-serif"],
        font_mono=[gr.themes.Font("ui-monospace"), gr.themes.Font("DejaVu Sans Mono"),
                   "monospace"],
    )


def status_html(s: dict[str, Any]) -> str:
    """The always-visible status block: fps, latency, frames, stage health, status line."""
    e = html.escape
    if not s.get("running") and s.get("seq", 0) == 0:
        state = "starting" if not s.get("error") else "stopped"
    else:
        state = "running" if s.get("running") else "ended"
    lat = s.get("latency_ms")
    rows = [
        f"<div id='status-main' data-seq='{s.get('seq', 0)}' data-fps='{s.get('page_fps', 0)}' "
        f"data-state='{state}'><b>{state}</b> &middot; video {s.get('page_fps', 0):.1f} fps "
        f"&middot; latency "
        f"{'-' if lat is None else f'{lat:.0f} ms'} &middot; t={s.get('media_t_s', 0):.1f} s "
        f"&middot; frames {s.get('frames_out', 0)} (dropped {s.get('dropped', 0)}) "
        f"&middot; run {s.get('runs', 0)}</div>"
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
    if s.get("status_line"):
        rows.append(f"<div class='muted'>overlay: {e(s['status_line'])}</div>")
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


def build_blocks(ctrl: Any) -> Any:
    """The page: video + status + timeline on the left, talk / answers / alerts on the right."""
    import gradio as gr

    from copilot.ui import LAYERS
    from copilot.ui_plot import timeline_figure

    with gr.Blocks(title="Surgical copilot", analytics_enabled=False) as demo:
        session = gr.State({"v": -1, "played": 0, "plot_t": 0.0})
        timer = gr.Timer(1.0)
        plot_timer = gr.Timer(4.0)
        with gr.Row():
            with gr.Column(scale=3, min_width=480):
                gr.HTML("<div id='video-box'><img id='video' src='video.mjpg' "
                        "alt='annotated video'></div>")
                status = gr.HTML(status_html(ctrl.status()), elem_id="status")
                plot = gr.Plot(label="phase / view timeline", elem_id="timeline")
                with gr.Accordion("Overlays", open=False, elem_id="layers-acc"):
                    layers = gr.CheckboxGroup(
                        list(LAYERS), value=[v for _, v in LAYERS], label="drawings shown",
                        elem_id="layers")
            with gr.Column(scale=2, min_width=360):
                alerts = gr.HTML(alerts_html([]), elem_id="alerts-box")
                ack = gr.Button("Acknowledge alert", variant="stop", elem_id="ack")
                ack_out = gr.Markdown("", elem_id="ack-out")
                mode = gr.Radio(["push-to-talk", "hands-free (say 'copilot, ...')"],
                                value="push-to-talk", label="microphone", elem_id="mode")
                ptt = gr.Audio(sources=["microphone"], type="filepath", label="push to talk: "
                               "record, ask, stop", elem_id="ptt", format=None)
                with gr.Column(visible=False, elem_id="handsfree") as hf:
                    gr.HTML(HANDS_FREE_HTML)
                consent = gr.Checkbox(value=ctrl.consent, label="consent: store microphone "
                                      "audio (off: processed in memory, discarded)",
                                      elem_id="consent")
                with gr.Row():
                    question = gr.Textbox(placeholder="copilot, what phase are we in?",
                                          show_label=False, scale=4, elem_id="question")
                    ask = gr.Button("Ask", scale=1, elem_id="ask")
                heard = gr.HTML(heard_html([], 0), elem_id="heard-box")
                answer = gr.HTML(answer_html(None), elem_id="answer-box")
                steps = gr.HTML(steps_html([]), elem_id="steps-box", label="reasoning steps")
                reply = gr.Audio(label="copilot's voice", autoplay=True, interactive=False,
                                 type="filepath", elem_id="reply")
                with gr.Accordion("Voice enrolment", open=False, elem_id="enrol-acc"):
                    enrol_audio = gr.Audio(sources=["microphone", "upload"], type="filepath",
                                           label="10-30 s of the surgeon's voice",
                                           elem_id="enrol-audio")
                    enrol_name = gr.Textbox(label="name", elem_id="enrol-name")
                    enrol_btn = gr.Button("Enrol", elem_id="enrol")
                    enrol_out = gr.Markdown("", elem_id="enrol-out")

        def refresh(sess: dict) -> tuple:
            snap = ctrl.state.snapshot()
            st = status_html(ctrl.status())
            if snap["version"] == sess["v"]:
                return (st, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), sess)
            sess = dict(sess, v=snap["version"])
            items = snap["items"]
            last_answer = next((i for i in reversed(items) if i.kind == "answer"), None)
            last_any = items[-1] if items else None
            shown_steps = last_any.steps if last_any is not None else []
            voiced = [i for i in items if i.audio is not None and i.uid > sess["played"]]
            audio_out: Any = gr.skip()
            if voiced:
                newest = voiced[-1]
                sess["played"] = newest.uid
                if newest.audio is not None and newest.audio.exists():
                    audio_out = str(newest.audio)
            return (st, alerts_html(items), answer_html(last_answer), steps_html(shown_steps),
                    heard_html(snap["heard"], snap["chatter"]), audio_out, sess)

        timer.tick(refresh, inputs=[session],
                   outputs=[status, alerts, answer, steps, heard, reply, session],
                   show_progress="hidden", queue=True, concurrency_limit=4)

        def draw(sess: dict) -> Any:
            snap = ctrl.state.snapshot()
            app = ctrl.copilot
            now = float(getattr(app, "media_t_s", 0.0) or 0.0)
            coverage = None
            engine = getattr(getattr(app, "brain", None), "engine", None)
            if engine is not None and hasattr(engine, "coverage"):
                try:
                    coverage = dict(engine.coverage())
                except Exception as exc:  # noqa: BLE001 - the plot is optional
                    log.debug("no coverage: %s", exc)
            return timeline_figure(snap, now, coverage=coverage)

        plot_timer.tick(draw, inputs=[session], outputs=[plot], show_progress="hidden")

        def on_ptt(path: str | None) -> tuple:
            if not path:
                return gr.skip(), None
            try:
                heard_now = ctrl.push_to_talk(path)
            except CopilotError as exc:
                gr.Warning(str(exc))
                return gr.skip(), None
            except Exception as exc:  # noqa: BLE001 - the page must stay up
                log.exception("push-to-talk failed")
                gr.Warning(f"could not process the recording: {exc}")
                return gr.skip(), None
            snap = ctrl.state.snapshot()
            if not any(h.accepted for h in heard_now):
                gr.Info("no command recognised")
            return heard_html(snap["heard"], snap["chatter"]), None

        ptt.stop_recording(on_ptt, inputs=[ptt], outputs=[heard, ptt])
        ptt.upload(on_ptt, inputs=[ptt], outputs=[heard, ptt])

        def on_mode(m: str) -> tuple:
            free = m.startswith("hands-free")
            if free:
                ctrl.prepare_hands_free()
            return gr.update(visible=not free), gr.update(visible=free)

        mode.change(on_mode, inputs=[mode], outputs=[ptt, hf])

        def on_consent(v: bool) -> None:
            ctrl.consent = bool(v)

        consent.change(on_consent, inputs=[consent])

        def on_ask(text: str) -> str:
            try:
                ctrl.ask(text)
            except CopilotError as exc:
                gr.Warning(str(exc))
                return text
            return ""

        ask.click(on_ask, inputs=[question], outputs=[question])
        question.submit(on_ask, inputs=[question], outputs=[question])

        def on_ack() -> str:
            return ctrl.acknowledge()

        ack.click(on_ack, outputs=[ack_out])

        def on_layers(shown: list[str]) -> None:
            ctrl.set_hidden([v for _, v in LAYERS if v not in (shown or [])])

        layers.change(on_layers, inputs=[layers])

        def on_enrol(path: str | None, name: str) -> str:
            if not path:
                return "record or upload the speaker's voice first"
            try:
                t0 = time.perf_counter()
                msg = ctrl.enrol(path, name)
                return f"{msg} ({time.perf_counter() - t0:.1f} s)"
            except CopilotError as exc:
                return f"not enrolled: {exc}"
            except Exception as exc:  # noqa: BLE001
                log.exception("enrolment failed")
                return f"not enrolled: {exc}"

        enrol_btn.click(on_enrol, inputs=[enrol_audio, enrol_name], outputs=[enrol_out])
    return demo
