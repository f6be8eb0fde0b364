"""The web UI's page assets: the head script (raw microphone audio, hands-free streaming, the
video worker and canvas, the history's open turns, "what you can ask" clicks), the CSS and
the HTML of the video and hands-free blocks (``copilot.ui_page`` lays the page out)."""

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
// The history is redrawn as answers arrive: keep the turns the user opened or closed so.
(function () {
  const want = new Map();  // uid -> open (set by the user's clicks only)
  document.addEventListener('click', (ev) => {
    const s = ev.target && ev.target.closest && ev.target.closest('#history summary');
    if (s) want.set(s.parentElement.dataset.uid, !s.parentElement.open);
  }, true);
  new MutationObserver(() => {
    for (const d of document.querySelectorAll('#history details.turn')) {
      const w = want.get(d.dataset.uid);
      if (w !== undefined && d.open !== w) d.open = w;
    }
  }).observe(document.documentElement, {childList: true, subtree: true});
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
// fetch() in a worker that also decodes (createImageBitmap) and draws the newest frame on
// the page's canvas (an OffscreenCanvas: the page's own thread does no video work; a busy
// worker skips frames, never queues them). This viewer's overlay layers and fills go in the
// query. window.copilotVideo.stats() gives what the browser received (frames drawn, fps);
// copilotVideo.snapshot() the canvas as shown ([sequence number, PNG data URL]).
const COPILOT_VIDEO_WORKER = `
let ctl = null, gen = 0, arrived = 0, drawn = 0, pending = null, busy = false, canvas = null;
let lastSeq = -1, times = [];
onmessage = async (e) => {
  const m = e.data;
  if (m.canvas) canvas = m.canvas;
  if (m.url) start(m.url);
  if (m.stats) {
    const n = times.length, fps = n < 2 ? 0 : (n - 1) * 1000 / (times[n - 1] - times[0]);
    postMessage({stats: {frames: drawn, arrived, fps, seq: lastSeq, w: canvas ? canvas.width : 0}});
  }
  if (m.snapshot && canvas) {
    const blob = await canvas.convertToBlob({type: 'image/png'});
    const url = await new Promise((ok) => { const r = new FileReader();
      r.onload = () => ok(r.result); r.readAsDataURL(blob); });
    postMessage({snapshot: [lastSeq, url], id: m.id});
  }
};
async function pump() {
  if (busy || !pending || !canvas) return;
  busy = true;
  while (pending) {
    const [jpg, seq] = pending; pending = null;
    try {
      const bmp = await createImageBitmap(new Blob([jpg], {type: 'image/jpeg'}));
      if (canvas.width !== bmp.width || canvas.height !== bmp.height) {
        canvas.width = bmp.width; canvas.height = bmp.height; }
      canvas.getContext('2d').drawImage(bmp, 0, 0);
      bmp.close(); drawn++; lastSeq = seq;
      const now = performance.now(); times.push(now);
      while (times.length && now - times[0] > 2000) times.shift();
    } catch (err) { /* a damaged frame: skip it */ }
  }
  busy = false;
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
  let opts = {layers: ['vision', 'brain'], fill: false}, started = false, worker = null;
  let last = {frames: 0, arrived: 0, fps: 0, seq: -1, w: 0}, asks = 0;
  const waiting = new Map();
  const el = () => document.getElementById('video');
  function restart() {
    if (!worker) {
      worker = new Worker(URL.createObjectURL(new Blob([COPILOT_VIDEO_WORKER],
                                                       {type: 'text/javascript'})));
      worker.onmessage = (e) => {
        if (e.data.stats) last = e.data.stats;
        if (e.data.snapshot) { const ok = waiting.get(e.data.id); waiting.delete(e.data.id);
                               if (ok) ok(e.data.snapshot); }
      };
      const off = el().transferControlToOffscreen();
      worker.postMessage({canvas: off}, [off]);
    }
    const q = 'video.bin?layers=' + opts.layers.join(',') + '&fill=' + (opts.fill ? 1 : 0);
    worker.postMessage({url: new URL(q, document.baseURI).href});
  }
  function set(o) { opts = Object.assign({}, opts, o); restart(); }
  function snapshot() {
    const id = ++asks;
    return new Promise((ok) => { waiting.set(id, ok); worker.postMessage({snapshot: 1, id}); });
  }
  function readBar() {
    const on = (id) => { const e = document.getElementById(id); return !e || e.checked; };
    const layers = ['vision', 'brain'].filter((l) => on('lay-' + l));
    const f = document.getElementById('lay-fill');
    set({layers, fill: !!(f && f.checked)});
  }
  function tick() {
    if (worker) worker.postMessage({stats: 1});
    const r = document.getElementById('rx-fps');
    if (r) { r.textContent = 'received ' + last.fps.toFixed(1) + ' fps';
             r.dataset.fps = last.fps.toFixed(2); r.dataset.frames = last.frames; }
    const c = el();
    if (c) { c.dataset.seq = last.seq; c.dataset.w = last.w; }
    if (!started && c) { started = true; restart(); }
  }
  setInterval(tick, 250);
  document.addEventListener('change', (ev) => {
    if (ev.target && ev.target.closest && ev.target.closest('#video-bar')) readBar(); });
  // teaching by example: a name in #teach-name, then a click on the live frame
  document.addEventListener('click', async (ev) => {
    const c = ev.target && ev.target.closest && ev.target.closest('#video');
    const n = document.getElementById('teach-name');
    if (!c || !n || !n.value.trim()) return;
    const r = c.getBoundingClientRect(), st = document.getElementById('teach-status');
    const body = {name: n.value, x: (ev.clientX - r.left) / r.width,
                  y: (ev.clientY - r.top) / r.height,
                  positive: !document.getElementById('teach-not').checked};
    const res = await fetch('api/teach', {method: 'POST', body: JSON.stringify(body),
                                          headers: {'content-type': 'application/json'}});
    const j = await res.json();
    if (st) { st.textContent = j.text || j.error || ''; st.dataset.done = '1'; }
  });
  document.addEventListener('click', (ev) => {
    const a = ev.target && ev.target.closest && ev.target.closest('.ask-example');
    if (!a) return;
    ev.preventDefault();
    const t = document.querySelector('#question textarea');
    if (t) { t.value = a.textContent; t.dispatchEvent(new Event('input', {bubbles: true}));
             t.focus(); }
  });
  return {set, stats: () => Object.assign({}, last, {opts}), snapshot,
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
#alerts-box {height:150px; border:1px solid #dee2e6; border-radius:6px; padding:2px 4px}
#alerts {max-height:140px; overflow-y:auto}
.alerts .alert {padding:4px 8px; margin:3px 0; border-radius:4px; font-size:13px}
.alerts .open {background:#ffe3e3; color:#a11; border-left:5px solid #e03131}
.alerts .open.warning {background:#fff3bf; color:#7a4b00; border-left-color:#f08c00}
.alerts .ack {background:#f1f3f5; color:#555; border-left:5px solid #adb5bd}
.alerts .count {background:#e03131; color:#fff; border-radius:8px; padding:0 6px}
#history {max-height:420px; overflow-y:auto}
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
<div id='teach-bar'><label>teach by click: <input id='teach-name' size='18'
  placeholder='name, then click it'></label>
  <label><input type='checkbox' id='teach-not'> that is not it</label>
  <span id='teach-status' class='muted'></span></div>
"""
