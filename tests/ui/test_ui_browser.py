"""The web UI in headless Chromium: the page and its header, live video received at the feed's
rate, the picture true to the source (outlines, the tissue keeps its colour), a spoken
question through the fake microphone, the conversation history, the alarm panel, the mute
badge, the layout, and video that keeps moving while an answer is slow."""

from __future__ import annotations

import base64
import io
import os
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from copilot.messages import Alert
from tests.ui.conftest import QUESTION, frame_changes, start_ui

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(ui, browser):  # noqa: ANN001, ANN201
    """One page on the UI for the module (loading it costs seconds on a busy machine)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.requested = []  # every URL the page asked for
    pg.on("request", lambda r: pg.requested.append(r.url))
    pg.goto(ui.url, wait_until="domcontentloaded")
    _ready(pg)
    yield pg
    ctx.close()


def _ready(pg) -> None:  # noqa: ANN001
    pg.wait_for_selector("#video", timeout=90_000)
    pg.wait_for_selector("#status-main[data-state='running']", timeout=60_000)
    pg.wait_for_function("() => window.copilotVideo && window.copilotVideo.stats().frames > 2",
                         timeout=60_000)


def _shoot(pg, artifacts: Path, name: str) -> Path:  # noqa: ANN001
    p = artifacts / f"{name}.png"
    pg.screenshot(path=str(p), full_page=True)
    return p


def _until(cond, what: str, timeout_s: float = 10.0) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < end, what
        time.sleep(0.1)


def _canvas(pg) -> tuple[int, np.ndarray]:  # noqa: ANN001
    """(sequence number, RGB pixels) of what the page's canvas shows now."""
    import cv2

    seq, url = pg.evaluate("() => window.copilotVideo.snapshot()")
    png = base64.b64decode(url.split(",", 1)[1])
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    return int(seq), img


class RawFrames:
    """The source frames as decoded (before any drawing), by the UI's sequence number."""

    def __init__(self, ctrl) -> None:  # noqa: ANN001
        self.ctrl = ctrl
        self.by_seq: dict[int, np.ndarray] = {}
        ctrl.frames.listeners.append(self._on)

    def _on(self, frame_id: int, rgb: np.ndarray) -> None:
        seq = self.ctrl._latest[0]  # the number the frame streams under (set as it arrived)
        self.by_seq[seq] = rgb.copy()
        for k in [k for k in self.by_seq if k < seq - 60]:
            del self.by_seq[k]

    def close(self) -> None:
        self.ctrl.frames.listeners.remove(self._on)


def _kept(pg, raw: RawFrames) -> tuple[float, float, float]:  # noqa: ANN001
    """How the page's canvas keeps the source frame it shows, away from what was drawn:
    (share of the picture that is more than 10 px from any drawn pixel, median and p95 of
    the colour difference there, 0-255). Drawn pixels: differ by > 40 (lines, labels)."""
    import cv2

    for _ in range(20):
        seq, img = _canvas(pg)
        src = raw.by_seq.get(seq)
        if src is not None and src.shape == img.shape:
            d = np.abs(img.astype(int) - src.astype(int)).max(axis=2)
            drawn = cv2.dilate((d > 40).astype(np.uint8), np.ones((21, 21), np.uint8)) > 0
            rest = d[~drawn]
            if rest.size == 0:
                return 0.0, 255.0, 255.0
            return float(rest.size / d.size), float(np.median(rest)), \
                float(np.percentile(rest, 95))
        time.sleep(0.1)
    raise AssertionError("no source frame for what the canvas shows")


def test_page_header_assumptions_and_no_outside_hosts(page, ui, artifacts) -> None:  # noqa: ANN001
    assert page.title() == "Surgical copilot"
    head = page.inner_text("#header")
    assert "procedure: cholecystectomy" in head
    assert "model validated on:" in head and ("on-label" in head or "OFF-LABEL" in head)
    assert "vision:" in head and "session" in head
    status = page.inner_text("#status")
    assert "latency" in status and "audio consent off" in status
    states = page.eval_on_selector_all("#health [data-stage]",
                                       "els => els.map(e => e.dataset.stage)")
    assert {"decode", "overlay", "writer", "vision"} <= set(states)
    # "what you can ask": one example per intent of the command catalogue, then teaching
    from kg_reasoning.catalogue import load_catalogue
    from kg_reasoning.teaching import load_teaching

    listed = page.eval_on_selector_all("#asks li", "els => els.map(e => e.dataset.intent)")
    assert set(listed) == set(load_catalogue().intents) | set(load_teaching().templates)
    page.click("#asks li[data-intent='current_phase'] a")
    assert page.input_value("#question textarea").startswith("copilot, ")
    page.fill("#question textarea", "")
    # the page came from this server only (no CDN, no analytics, no font hosts)
    hosts = {re.sub(r"^(?:blob:)?(\w+://[^/]+).*$", r"\1", u) for u in page.requested
             if not u.startswith("data:")}
    assert hosts == {ui.base.rstrip("/")}, hosts
    _shoot(page, artifacts, "01-loaded")


def test_video_arrives_at_the_feed_rate_and_is_true_to_the_picture(page, ui) -> None:  # noqa: ANN001
    s0, q0, t0 = page.evaluate("window.copilotVideo.stats()"), ui.ctrl.seq, time.monotonic()
    shots = []
    for _ in range(6):
        shots.append(page.locator("#video").screenshot())
        time.sleep(0.5)
    s1, q1, t1 = page.evaluate("window.copilotVideo.stats()"), ui.ctrl.seq, time.monotonic()
    rate, made = (s1["frames"] - s0["frames"]) / (t1 - t0), (q1 - q0) / (t1 - t0)
    print(f"page received {rate:.1f} fps of the {made:.1f} fps the server made (15 fps feed)")
    # side by side in one run: the page receives most frames the server made, whatever the
    # machine's load (8 of 15 fps before; the benchmark measures 25 fps over 30 s)
    assert q1 > q0 and rate >= 0.5 * made
    assert frame_changes(shots) >= 4
    shown = float(page.get_attribute("#rx-fps", "data-fps"))
    assert shown > made / 3 and "received" in page.inner_text("#rx-fps")  # 5 of 15 before
    assert page.evaluate("window.copilotVideo.stats().w") == 426  # the source's size
    # the picture: outlines over the source, no tint, no status strip burned in
    raw = RawFrames(ui.ctrl)
    try:
        share, median, p95 = _kept(page, raw)
    finally:
        raw.close()
    print(f"tissue away from the drawings: {share:.1%} of the picture, colour difference "
          f"median {median}, p95 {p95} (of 255; JPEG)")
    # (how much lies away from the outlines depends on the scene; >= 15 % of 426x240)
    assert share >= 0.15 and median <= 3 and p95 <= 10  # a tint would move it by tens


def test_two_viewers_overlay_settings_are_independent(ui, browser) -> None:  # noqa: ANN001
    ctxs = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(2)]
    raw = RawFrames(ui.ctrl)
    try:
        a, b = (c.new_page() for c in ctxs)
        for pg in (a, b):
            pg.goto(ui.url, wait_until="domcontentloaded")
            _ready(pg)
        a.uncheck("#lay-vision")
        a.uncheck("#lay-brain")
        _until(lambda: a.evaluate("window.copilotVideo.options().layers.length") == 0,
               "viewer A's layers did not change")
        assert b.is_checked("#lay-vision") and b.is_checked("#lay-brain")
        assert b.evaluate("window.copilotVideo.options().layers") == ["vision", "brain"]
        seen: list[float] = []

        def a_sees_the_source() -> bool:  # A's stream reconnects with its settings
            seen.append(_kept(a, raw)[0])
            return seen[-1] >= 0.95  # A sees the source as is (JPEG only)

        _until(a_sees_the_source, f"viewer A still sees drawings: {seen[-5:]}", 30)
        kept_a = seen[-1]
        kept_b, _, _ = _kept(b, raw)
        print(f"picture away from drawings: A (none) {kept_a:.3f}, B (outlines) {kept_b:.3f}")
        assert kept_b < kept_a - 0.1  # B still sees the outlines
        b.check("#lay-fill")  # B asks for fills: A is not affected
        time.sleep(1.5)
        seen.clear()
        _until(a_sees_the_source, f"B's fills reached viewer A: {seen[-5:]}", 30)
        assert not a.is_checked("#lay-fill")
    finally:
        raw.close()
        for c in ctxs:
            c.close()


def test_each_typed_question_has_its_own_answer_and_steps(page, ui, needs_brain) -> None:  # noqa: ANN001
    asked = [QUESTION, "copilot, outline the gallbladder in green"]
    for q in asked:
        page.fill("#question textarea", q)
        page.click("#ask")
        _until(lambda q=q: any(i.origin == "typed" and i.question == q
                               for i in ui.ctrl.state.snapshot()["items"]),
               f"{q!r} not answered", 60)
        page.wait_for_function("() => document.querySelector('#question textarea').value"
                               " === ''", timeout=30_000)  # Ask's reply has reached the page
    # the session's UI has earlier typed turns: wait for these two questions' own turns
    page.wait_for_function(
        "qs => qs.every(q => Array.from(document.querySelectorAll("
        "'#history details.turn[data-origin=\"typed\"] .q')).some(e => e.textContent.includes(q)))",
        arg=asked, timeout=30_000)
    items = {i.uid: i for i in ui.ctrl.state.snapshot()["items"]}
    turns = page.eval_on_selector_all(
        "#history details.turn", "els => els.map(e => [+e.dataset.uid,"
        " e.querySelector('.q').textContent, e.querySelector('.a').textContent,"
        " Array.from(e.querySelectorAll('.turn-steps li')).map(l => l.textContent)])")
    uids = [t[0] for t in turns]
    assert uids == sorted(uids, reverse=True)  # newest first
    for uid, q, a, steps in turns:
        it = items[uid]
        assert it.text == a and (it.question or "") in q
        assert len(steps) == len(it.steps)  # its own steps, not another message's
        for claim, shown in zip([s.get("claim", "") for s in it.steps], steps, strict=True):
            assert str(claim)[:30] in shown
    outline = next(t for t in turns if "outline the gallbladder" in t[1])
    assert outline[2].startswith(("Outlined the gallbladder in green, detection 0.",
                                  "I do not see the gallbladder now"))
    meta = page.inner_text(f"#history details[data-uid='{outline[0]}'] .meta")
    assert "command understood" in meta
    # only the newest is open; the others collapse
    opened = page.eval_on_selector_all("#history details.turn", "els => els.map(e => e.open)")
    assert opened[0] and not any(opened[1:])


def test_spoken_question_gets_answer_steps_and_voice(page, ui, artifacts,  # noqa: ANN001
                                                     needs_brain) -> None:  # noqa: ANN001
    page.click("#ptt button.record-button")
    time.sleep(5.5)  # the fake-mic file (4 s) plays once from the start of the capture
    page.click("#ptt button.stop-button")
    page.wait_for_selector("#heard-box li:has-text('[mic]')", timeout=60_000)
    heard = page.inner_text("#heard-box")
    assert "what phase are we in" in heard, heard
    _until(lambda: any(i.origin == "mic" and "what phase are we in" in (i.question or "")
                       for i in ui.ctrl.state.snapshot()["items"]), "question not answered",
           60)
    item = next(i for i in ui.ctrl.state.snapshot()["items"] if i.origin == "mic"
                and "what phase are we in" in (i.question or ""))
    sel = f"#history details.turn[data-uid='{item.uid}']"
    page.wait_for_selector(sel, timeout=30_000)
    assert page.inner_text(f"{sel} .a").strip() == item.text
    assert page.locator(f"{sel} .turn-steps li").count() == len(item.steps) >= 1
    # the reply is spoken: the player gets a WAV of this answer (or a later message)
    page.wait_for_function(
        "uid => { const a = document.querySelector('#reply a[href*=\"reply-\"]');"
        " if (!a) return false; const m = a.href.match(/reply-(\\d+)\\.wav/);"
        " return m && +m[1] >= uid; }", arg=item.uid, timeout=60_000)
    href = page.get_attribute("#reply a[href*='reply-']", "href")
    resp = page.request.get(href)
    assert resp.ok
    import soundfile as sf

    audio, rate = sf.read(io.BytesIO(resp.body()), dtype="float32")
    assert len(audio) / rate > 0.5 and float(np.sqrt(np.mean(audio ** 2))) > 0.01
    # without consent no microphone audio was kept
    assert not (ui.ctrl.workdir / "recordings").exists()
    left = [p for p in Path(os.environ["GRADIO_TEMP_DIR"]).rglob("*")
            if p.is_file() and p.suffix in (".wav", ".webm", ".ogg") and "reply-" not in p.name]
    assert not left, left
    _shoot(page, artifacts, "02-answer")


def test_hands_free_wake_word(page, ui) -> None:  # noqa: ANN001
    def mic_commands() -> int:
        return sum(h.origin == "mic" and h.accepted for h in ui.ctrl.state.snapshot()["heard"])

    n0, s0 = mic_commands(), ui.ctrl.hf_seconds
    page.click("#mode label:has-text('hands-free')")
    page.wait_for_selector("#hf-start", state="visible", timeout=20_000)
    assert not page.is_visible("#ptt button.record-button")
    # The fake microphone plays the question once per capture; the recogniser misses a
    # command now and then (benchmarks/results/speech.md): up to three real captures.
    heard: list = []
    for _attempt in range(3):
        page.click("#hf-start")
        page.wait_for_selector("#hf-state[data-state='listening']", timeout=20_000)
        s_try = ui.ctrl.hf_seconds  # the fake-mic file (4 s) plays once: all of it streamed
        _until(lambda s_try=s_try: ui.ctrl.hf_seconds - s_try >= 5.0,
               "the page did not stream the microphone", 60)
        page.click("#hf-stop")
        page.wait_for_selector("#hf-state[data-state='off']", timeout=60_000)
        heard = [h for h in ui.ctrl.state.snapshot()["heard"] if h.origin == "mic"]
        if any(h.accepted and "what phase are we in" in h.text for h in heard[-3:]):
            break
    assert ui.ctrl.hf_seconds - s0 > 4.0  # the page streamed the microphone
    assert mic_commands() > n0, [(h.text, h.reason) for h in heard[-4:]]
    page.click("#mode label:has-text('push-to-talk')")
    page.wait_for_selector("#ptt button.record-button", state="visible", timeout=20_000)


def test_replayed_alert_is_one_row_with_a_count_and_one_ack_clears_it(  # noqa: ANN201
        page, ui, artifacts, needs_brain):  # noqa: ANN001
    # the 24 s feed bleeds at 5 s and loops: its second replay raises the same alert again
    sel = "#alerts-box .alert[data-rule='bleeding']"
    page.wait_for_selector(sel, timeout=90_000)
    page.wait_for_function(f"() => +document.querySelector(\"{sel}\").dataset.count >= 2",
                           timeout=120_000)
    assert page.locator(sel).count() == 1  # one row, with its count
    assert "×" in page.inner_text(sel) and "first" in page.inner_text(sel)
    assert page.locator("#header #session").inner_text() != "session 1"  # a new session
    _shoot(page, artifacts, "03-alert")
    heard0 = len(ui.ctrl.state.snapshot()["heard"])
    while page.locator("#alerts-box .alert.open").count():
        assert page.is_enabled("#ack")
        n_open = page.locator("#alerts-box .alert.open").count()
        page.click("#ack")
        page.wait_for_function(
            f"() => document.querySelectorAll('#alerts-box .alert.open').length < {n_open}",
            timeout=30_000)
        assert "acknowledged" in page.inner_text("#ack-out")
    assert page.locator(sel + ".ack").count() == 1  # one click cleared the whole row
    page.wait_for_selector("#ack:disabled", timeout=10_000)  # nothing open: disabled
    # the button is not a voice: nothing was heard
    assert not [h for h in ui.ctrl.state.snapshot()["heard"][heard0:] if h.origin == "ack"]
    assert "[ack]" not in page.inner_text("#heard-box")
    _shoot(page, artifacts, "04-acknowledged")


def test_mute_badge_counts_down_and_unmutes(page, ui, needs_brain) -> None:  # noqa: ANN001
    page.fill("#question textarea", "copilot, mute alerts for five minutes")
    page.click("#ask")
    page.wait_for_selector("#mute-badge", timeout=30_000)
    left0 = int(page.get_attribute("#mute-badge", "data-left"))
    assert 240 < left0 <= 300 and "alerts muted" in page.inner_text("#mute-badge")
    assert re.search(r"\d:\d\d left", page.inner_text("#mute-badge"))
    page.wait_for_function(f"() => {{ const b = document.querySelector('#mute-badge');"
                           f" return b && +b.dataset.left <= {left0 - 2}; }}", timeout=20_000)
    page.click("#unmute")
    page.wait_for_selector("#mute-badge", state="detached", timeout=20_000)


def test_question_box_in_view_at_1280x720_with_ten_alerts(ui, browser) -> None:  # noqa: ANN001
    for k in range(10):
        ui.ctrl.state.on_message(Alert(t_ns=k, trace_id=f"t{k}", media_t_s=float(k),
                                       rule=f"test_rule_{k}", text=f"Test alert number {k}"))
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        pg = ctx.new_page()
        pg.goto(ui.url, wait_until="domcontentloaded")
        _ready(pg)
        pg.wait_for_function("() => document.querySelectorAll('#alerts-box .alert').length"
                             " >= 10", timeout=30_000)
        box = pg.locator("#question textarea").bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 720, box
        panel = pg.locator("#alerts-box").bounding_box()
        assert panel["height"] <= 170  # a fixed-height panel (it scrolls)
        assert pg.is_enabled("#ack")
    finally:
        ctx.close()
        while ui.ctrl.state.acknowledge() is not None:
            pass


def test_video_is_the_main_view_at_1920(ui, browser) -> None:  # noqa: ANN001
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        pg = ctx.new_page()
        pg.goto(ui.url, wait_until="domcontentloaded")
        _ready(pg)
        w = pg.locator("#video").bounding_box()["width"]
        print(f"video {w:.0f} px of 1920 ({w / 1920:.1%})")
        assert w / 1920 >= 0.70
    finally:
        ctx.close()


def test_acknowledge_is_disabled_with_no_alert(ui_feed, browser) -> None:  # noqa: ANN001
    r = start_ui(ui_feed, speech="off", vision="none", loop=True)  # nothing can raise one
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        pg = ctx.new_page()
        pg.goto(r.url, wait_until="domcontentloaded")
        _ready(pg)
        assert pg.is_disabled("#ack")
        assert "No alerts" in pg.inner_text("#alerts-box")
    finally:
        ctx.close()
        r.server.stop()
        r.ctrl.stop()


def test_video_keeps_moving_while_an_answer_is_slow(ui_feed, browser, artifacts,  # noqa: ANN001
                                                   needs_brain) -> None:  # noqa: ANN001
    # a slow vision stage, an overlay step that fails every 20th frame, a 15 s answer
    r = start_ui(ui_feed, speech="off", faults=["vision:slow", "overlay:raise"], loop=True)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        pg = ctx.new_page()
        pg.goto(r.url, wait_until="domcontentloaded")
        _ready(pg)
        brain = r.ctrl.copilot.brain
        assert brain is not None
        inner = brain.on_transcript
        entered: list[float] = []
        answered: list[float] = []
        release = threading.Event()  # the answer is pending until the checks are done

        def slow(tr, addressed):  # noqa: ANN001, ANN202 - a slow answer (runtime timing)
            entered.append(time.monotonic())
            release.wait(60.0)
            answered.append(time.monotonic())
            return inner(tr, addressed)

        brain.on_transcript = slow
        qa, ta = r.ctrl.seq, time.monotonic()
        time.sleep(1.6)  # the server's frame rate before the question, in this run
        before = (r.ctrl.seq - qa) / (time.monotonic() - ta)
        pg.fill("#question textarea", QUESTION)
        pg.click("#ask")
        _until(lambda: bool(entered), "the question never reached the brain")
        f0, q0, t0 = pg.evaluate("window.copilotVideo.stats().frames"), r.ctrl.seq, \
            time.monotonic()
        shots = []
        for _ in range(4):  # a few s while the answer is pending
            shots.append(pg.locator("#video").screenshot())
            time.sleep(0.4)
        dt = time.monotonic() - t0
        rate = (pg.evaluate("window.copilotVideo.stats().frames") - f0) / dt
        made = (r.ctrl.seq - q0) / dt
        s_page = int(pg.get_attribute("#status-main", "data-seq"))
        assert not answered, "the checks took longer than the slow answer"
        print(f"while the answer was pending: the server made {made:.1f} fps ({before:.1f} "
              f"before), the page received {rate:.1f} fps, {frame_changes(shots)}/3 "
              "screenshot changes")
        # it keeps moving, side by side in this run: the server keeps its pace and the page
        # receives a share of it (the rate itself is the benchmark's: bench_ui; on a loaded
        # machine this test saw 5-10 of 15 fps here, and asserted >= 3 fps before)
        assert made >= 0.5 * before and rate >= 0.2 * made, \
            f"video at {rate:.1f} fps of {made:.1f} ({before:.1f} before) while an answer " \
            "was pending"
        assert frame_changes(shots) >= 2
        pg.wait_for_function(
            f"() => +document.querySelector('#status-main').dataset.seq > {s_page}",
            timeout=5_000)
        assert not answered
        release.set()
        health = r.ctrl.status()["health"]
        assert health["vision"]["state"] in ("ok", "restarting", "hung")
        assert health["overlay"]["errors"] >= 1
        pg.wait_for_selector("#health span.bad[data-stage='overlay']", timeout=10_000)
        pg.wait_for_selector("#history details.turn[data-origin='typed']", timeout=60_000)
        assert "what phase are we in" in pg.inner_text("#history details.turn .q")
        _shoot(pg, artifacts, "05-slow-answer")
    finally:
        release.set()
        ctx.close()
        r.server.stop()
        r.ctrl.stop()


REAL_CLIPS = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "cholect50-clips"


def test_real_clip_page_is_true_to_the_picture(browser, artifacts) -> None:  # noqa: ANN001
    """The same page on a real clip (the screenshot stays in the test's temporary folder:
    images of the real clips never enter the repository)."""
    clips = sorted(REAL_CLIPS.glob("*.mp4")) if REAL_CLIPS.is_dir() else []
    if not clips:
        pytest.skip(f"needs the real clips under {REAL_CLIPS} (../shared data)")
    r = start_ui(clips[0], speech="off", loop=False)
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
    raw = RawFrames(r.ctrl)
    try:
        pg = ctx.new_page()
        pg.goto(r.url, wait_until="domcontentloaded")
        _ready(pg)
        time.sleep(2.0)
        share, median, p95 = _kept(pg, raw)
        print(f"real clip {clips[0].name}: tissue away from the drawings {share:.1%}, "
              f"colour difference median {median}, p95 {p95}")
        assert share >= 0.35 and median <= 3 and p95 <= 10
        assert "procedure:" in pg.inner_text("#header")
        assert "no alert from: " in pg.inner_text("#withheld-badge")  # real video
        _shoot(pg, artifacts, "06-real-clip-not-committed")
    finally:
        raw.close()
        ctx.close()
        r.server.stop()
        r.ctrl.stop()
