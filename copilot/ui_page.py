"""The gradio page of ``copilot ui``: layout and event wiring (logic in copilot.ui, HTML in
copilot.ui_render). The video takes most of the width; beside it the alarm panel, the
question box, the conversation history, the microphone and "what you can ask"; the header
says what the copilot assumes."""

from __future__ import annotations

import logging
import time
from typing import Any

from copilot.errors import CopilotError
from copilot.ui_render import (
    alarms_html,
    asks_html,
    header_html,
    heard_html,
    history_html,
    status_html,
)

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
// The video: a binary stream of JPEGs (">II" length, sequence number, JPEG) read with
// fetch() in a worker, which also decodes (createImageBitmap) and hands the newest decoded
// frame to the page (one in flight: a busy page skips frames, never queues them); the page
// only draws it on the canvas. This viewer's overlay layers and fills go in the query.
// window.copilotVideo.stats() gives what the browser received (frames drawn, fps).
const COPILOT_VIDEO_WORKER = `
let ctl = null, gen = 0, arrived = 0, pending = null, busy = false, inflight = false;
onmessage = (e) => {
  if (e.data.url) start(e.data.url);
  if (e.data.drawn !== undefined) { inflight = false; pump(); }
};
async function pump() {
  if (busy || inflight || !pending) return;
  busy = true;
  const [jpg, seq] = pending; pending = null;
  try {
    const bmp = await createImageBitmap(new Blob([jpg], {type: 'image/jpeg'}));
    inflight = true;
    postMessage({bmp, seq, arrived}, [bmp]);
  } catch (err) { /* a damaged frame: skip it */ }
  busy = false;
  pump();
}
async function start(url) {
  const my = ++gen;
  if (ctl) ctl.abort();
  while (my === gen) {
    ctl = new AbortController();
    try {
      const r = await fetch(url, {signal: ctl.signal, cache: 'no-store'});
      const rd = r.body.getReader();
      let buf = new Uint8Array(0);
      for (;;) {
        const {value, done} = await rd.read();
        if (done) break;
        const nb = new Uint8Array(buf.length + value.length);
        nb.set(buf); nb.set(value, buf.length); buf = nb;
        while (buf.length >= 8) {
          const dv = new DataView(buf.buffer, buf.byteOffset, 8);
          const n = dv.getUint32(0), seq = dv.getUint32(4);
          if (buf.length < 8 + n) break;
          pending = [buf.slice(8, 8 + n), seq]; buf = buf.slice(8 + n); arrived++;
          pump();
        }
      }
    } catch (err) { /* aborted (new settings) or the server went away */ }
    if (my === gen) await new Promise((ok) => setTimeout(ok, 500));
  }
}
`;
window.copilotVideo = (function () {
  let opts = {layers: ['vision', 'brain'], fill: false}, drawn = 0, arrived = 0, times = [];
  let lastSeq = -1, started = false, worker = null;
  const el = () => document.getElementById('video');
  function draw(m) {
    const c = el(), bmp = m.bmp;
    if (c) {
      if (c.width !== bmp.width || c.height !== bmp.height) {
        c.width = bmp.width; c.height = bmp.height; }
      c.getContext('2d').drawImage(bmp, 0, 0);
      c.dataset.seq = m.seq;
    }
    bmp.close(); drawn++; lastSeq = m.seq; arrived = m.arrived;
    const now = performance.now(); times.push(now);
    while (times.length && now - times[0] > 2000) times.shift();
    worker.postMessage({drawn: m.seq});
  }
  function fps() {
    if (times.length < 2) return 0;
    return (times.length - 1) * 1000 / (times[times.length - 1] - times[0]);
  }
  function restart() {
    if (!worker) {
      worker = new Worker(URL.createObjectURL(new Blob([COPILOT_VIDEO_WORKER],
                                                       {type: 'text/javascript'})));
      worker.onmessage = (e) => draw(e.data);
    }
    const q = 'video.bin?layers=' + opts.layers.join(',') + '&fill=' + (opts.fill ? 1 : 0);
    worker.postMessage({url: new URL(q, document.baseURI).href});
  }
  function set(o) { opts = Object.assign({}, opts, o); restart(); }
  function readBar() {
    const on = (id) => { const e = document.getElementById(id); return !e || e.checked; };
    const layers = ['vision', 'brain'].filter((l) => on('lay-' + l));
    const f = document.getElementById('lay-fill');
    set({layers, fill: !!(f && f.checked)});
  }
  function tick() {
    const r = document.getElementById('rx-fps');
    if (r) { const f = fps(); r.textContent = 'received ' + f.toFixed(1) + ' fps';
             r.dataset.fps = f.toFixed(2); r.dataset.frames = drawn; }
    if (!started && el()) { started = true; restart(); }
  }
  setInterval(tick, 250);
  document.addEventListener('change', (ev) => {
    if (ev.target && ev.target.closest && ev.target.closest('#video-bar')) readBar(); });
  document.addEventListener('click', (ev) => {
    const a = ev.target && ev.target.closest && ev.target.closest('.ask-example');
    if (!a) return;
    ev.preventDefault();
    const t = document.querySelector('#question textarea');
    if (t) { t.value = a.textContent; t.dispatchEvent(new Event('input', {bubbles: true}));
             t.focus(); }
  });
  return {set, stats: () => ({frames: drawn, arrived, fps: fps(), seq: lastSeq, opts}),
          options: () => opts};
})();
</script>
"""

CSS = """
#header {margin-bottom:2px}
#assumes {display:flex; flex-wrap:wrap; gap:6px; align-items:center; font-size:13px}
#assumes .badge {padding:3px 8px; border-radius:10px; background:#e7f5ff; color:#1c3d5a}
#assumes .badge.ok {background:#ebfbee; color:#2b8a3e}
#assumes .badge.warn {background:#fff3bf; color:#8a5a00; font-weight:600}
#assumes #validated {flex-basis:100%}
#video-box {background:#000; border-radius:6px; overflow:hidden; text-align:center}
#video-box canvas {width:100%; height:auto; display:block}
#video-bar {display:flex; gap:14px; align-items:center; font-size:13px; padding:4px 2px}
#video-bar #rx-fps {font-family:ui-monospace,monospace; font-weight:600}
#status {font-family:ui-monospace,monospace; font-size:12px; line-height:1.35}
#status .bad {color:#e5484d; font-weight:600}
#status .ok {color:#2f9e44}
#alerts-box {height:150px; overflow-y:auto; border:1px solid #dee2e6; border-radius:6px;
  padding:2px 4px}
.alerts .alert {padding:4px 8px; margin:3px 0; border-radius:4px; font-size:13px}
.alerts .open {background:#ffe3e3; color:#a11; border-left:5px solid #e03131}
.alerts .open.warning {background:#fff3bf; color:#7a4b00; border-left-color:#f08c00}
.alerts .ack {background:#f1f3f5; color:#555; border-left:5px solid #adb5bd}
.alerts .count {background:#e03131; color:#fff; border-radius:8px; padding:0 6px}
#history-box {max-height:420px; overflow-y:auto}
#history details.turn {border-bottom:1px solid #eee; padding:4px 2px}
#history .q {color:#555; font-size:12px}
#history .a {font-size:16px; font-weight:600; margin:2px 0}
#history .sep {color:#868e96; font-size:11px; text-align:center; border-top:1px dashed #ced4da}
.muted {color:#777; font-size:12px}
ol.steps li {margin:3px 0}
ol.steps li.no b {color:#e03131}
ol.steps li.ok b {color:#2f9e44}
ol.steps .ev {color:#666; font-size:12px}
#asks ul {margin:2px 0 6px 16px; font-size:13px}
"""

VIDEO_HTML = """
<div id='video-box'><canvas id='video' width='854' height='480'
  aria-label='annotated video'></canvas></div>
<div id='video-bar'><span id='rx-fps' data-fps='0'>received - fps</span>
  <span class='muted'>my display:</span>
  <label><input type='checkbox' id='lay-vision' checked> segmentation outlines</label>
  <label><input type='checkbox' id='lay-brain' checked> copilot drawings</label>
  <label><input type='checkbox' id='lay-fill'> fill (translucent)</label></div>
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


def _catalogue() -> Any:
    """The command catalogue (kg_reasoning's), None when it cannot load."""
    try:
        from kg_reasoning.catalogue import load_catalogue

        return load_catalogue()
    except Exception as exc:  # noqa: BLE001 - the panel says it is not available
        log.warning("no command catalogue: %s", exc)
        return None


def build_blocks(ctrl: Any) -> Any:
    """The page: header badge; video (>= 70 % of the width), its strip and timeline on the
    left; alarms, question, history, microphone and "what you can ask" on the right."""
    import gradio as gr

    from copilot.ui_plot import timeline_figure

    def alarms() -> tuple[str, bool]:
        rows = ctrl.state.alarm_rows()
        return alarms_html(rows), any(r.open for r in rows)

    with gr.Blocks(title="Surgical copilot", analytics_enabled=False, fill_width=True) as demo:
        session = gr.State({"v": -1, "played": 0})
        timer = gr.Timer(0.5)
        plot_timer = gr.Timer(2.0)
        with gr.Row(equal_height=False, elem_id="header-row"):
            header = gr.HTML(header_html(ctrl.assumptions()), elem_id="header")
            unmute = gr.Button("Unmute alerts", size="sm", visible=False, elem_id="unmute",
                               scale=0, min_width=140)
        with gr.Row(equal_height=False):
            with gr.Column(scale=10, min_width=480):
                gr.HTML(VIDEO_HTML, elem_id="video-html")
                status = gr.HTML(status_html(ctrl.status()), elem_id="status")
                plot = gr.Plot(label="phase / view timeline (bars: phase or view over media "
                               "time; o: answers, v: alerts)", elem_id="timeline")
            with gr.Column(scale=3, min_width=340):
                html0, open0 = alarms()
                alerts = gr.HTML(html0, elem_id="alerts-box")
                with gr.Row():
                    ack = gr.Button("Acknowledge alert", variant="stop", elem_id="ack",
                                    interactive=open0, size="sm")
                    ack_out = gr.Markdown("", elem_id="ack-out")
                with gr.Row():
                    question = gr.Textbox(placeholder="copilot, what phase are we in?",
                                          show_label=False, scale=4, elem_id="question")
                    ask = gr.Button("Ask", scale=1, elem_id="ask", min_width=60)
                history = gr.HTML(history_html([]), elem_id="history-box")
                reply = gr.Audio(label="copilot's voice", autoplay=True, interactive=False,
                                 type="filepath", elem_id="reply")
                mode = gr.Radio(["push-to-talk", "hands-free (say 'copilot, ...')"],
                                value="push-to-talk", label="microphone", elem_id="mode")
                ptt = gr.Audio(sources=["microphone"], type="filepath", label="push to talk: "
                               "record, ask, stop", elem_id="ptt", format=None)
                with gr.Column(visible=False, elem_id="handsfree") as hf:
                    gr.HTML(HANDS_FREE_HTML)
                heard = gr.HTML(heard_html([], 0), elem_id="heard-box")
                consent = gr.Checkbox(value=ctrl.consent, label="consent: store microphone "
                                      "audio (off: processed in memory, discarded)",
                                      elem_id="consent")
                with gr.Accordion("What you can ask", open=True, elem_id="asks-acc"):
                    gr.HTML(asks_html(_catalogue()), elem_id="asks-box")
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
            assumed = ctrl.assumptions()
            head = header_html(assumed)
            mute_btn = gr.update(visible=bool(assumed.get("muted_left_s")))
            if snap["version"] == sess["v"]:
                return (st, head, mute_btn, gr.skip(), gr.skip(), gr.skip(), gr.skip(),
                        gr.skip(), sess)
            sess = dict(sess, v=snap["version"])
            items = snap["items"]
            voiced = [i for i in items if i.audio is not None and i.uid > sess["played"]]
            audio_out: Any = gr.skip()
            if voiced:
                newest = voiced[-1]
                sess["played"] = newest.uid
                if newest.audio is not None and newest.audio.exists():
                    audio_out = str(newest.audio)
            html_alerts, any_open = alarms()
            return (st, head, mute_btn, html_alerts, gr.update(interactive=any_open),
                    history_html(items), heard_html(snap["heard"], snap["chatter"]),
                    audio_out, sess)

        timer.tick(refresh, inputs=[session],
                   outputs=[status, header, unmute, alerts, ack, history, heard, reply,
                            session],
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

        def on_ask(text: str) -> tuple:
            try:
                ctrl.ask(text)  # the answer is in the state when this returns
            except CopilotError as exc:
                gr.Warning(str(exc))
                return text, gr.skip()
            return "", history_html(ctrl.state.snapshot()["items"])

        ask.click(on_ask, inputs=[question], outputs=[question, history])
        question.submit(on_ask, inputs=[question], outputs=[question, history])

        def on_ack() -> tuple:
            msg = ctrl.acknowledge()
            html_alerts, any_open = alarms()
            return msg, html_alerts, gr.update(interactive=any_open)

        ack.click(on_ack, outputs=[ack_out, alerts, ack])

        def on_unmute() -> tuple:
            gr.Info(ctrl.unmute())
            return header_html(ctrl.assumptions()), gr.update(visible=False)

        unmute.click(on_unmute, outputs=[header, unmute])

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
