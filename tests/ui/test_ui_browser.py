"""The web UI in headless Chromium: page, live video, a spoken question through the fake
microphone, alert + acknowledge, and video that keeps moving while an answer is slow."""

from __future__ import annotations

import io
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from tests.ui.conftest import QUESTION, frame_changes, start_ui

pytestmark = pytest.mark.browser

DOCS_SHOT = Path(__file__).resolve().parents[2] / "docs" / "ui.png"


@pytest.fixture(scope="module")
def page(ui, browser):  # noqa: ANN001, ANN201
    """One page on the UI for the module (loading it costs seconds on a busy machine)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.requested = []  # every URL the page asked for
    pg.on("request", lambda r: pg.requested.append(r.url))
    t0 = time.monotonic()
    pg.goto(ui.url, wait_until="domcontentloaded")
    pg.wait_for_selector("#video", timeout=90_000)
    pg.wait_for_selector("#status-main[data-state='running']", timeout=60_000)
    pg.load_s = time.monotonic() - t0
    yield pg
    ctx.close()


def _shoot(pg, artifacts: Path, name: str) -> Path:  # noqa: ANN001
    p = artifacts / f"{name}.png"
    pg.screenshot(path=str(p), full_page=True)
    return p


def test_page_loads_with_status_and_no_outside_hosts(page, ui, artifacts) -> None:  # noqa: ANN001
    assert page.title() == "Surgical copilot"
    status = page.inner_text("#status")
    assert "fps" in status and "latency" in status
    # stage health from copilot.health() is on the page
    states = page.eval_on_selector_all("#health [data-stage]",
                                       "els => els.map(e => e.dataset.stage)")
    assert {"decode", "overlay", "writer", "vision"} <= set(states)
    assert "audio consent off" in status
    # the page came from this server only (no CDN, no analytics, no font hosts)
    hosts = {re.sub(r"^(?:blob:)?(\w+://[^/]+).*$", r"\1", u) for u in page.requested
             if not u.startswith("data:")}
    assert hosts == {ui.base.rstrip("/")}, hosts
    _shoot(page, artifacts, "01-loaded")


def test_video_frames_advance(page, ui, artifacts) -> None:  # noqa: ANN001
    vid = page.locator("#video")
    page.wait_for_function("() => document.querySelector('#video').naturalWidth > 0",
                           timeout=30_000)
    assert page.eval_on_selector("#video", "e => e.naturalWidth") == 426
    seq0 = ui.ctrl.seq
    shots = []
    for _ in range(6):
        shots.append(vid.screenshot())
        time.sleep(0.4)
    changed = frame_changes(shots)
    assert changed >= 4, f"the picture changed only {changed} times in 5 screenshots"
    assert ui.ctrl.seq > seq0
    assert ui.ctrl.frame_rate() >= 5.0  # the feed is 15 fps
    s0 = int(page.get_attribute("#status-main", "data-seq"))
    page.wait_for_function(f"() => +document.querySelector('#status-main').dataset.seq > {s0}",
                           timeout=10_000)


def test_overlay_toggles_and_consent_switch(page, ui) -> None:  # noqa: ANN001
    page.click("#layers-acc >> text=Overlays")
    page.click("#layers label:has-text('segmentation')")
    _until(lambda: "vision" in ui.ctrl.copilot.store.hidden, "segmentation not hidden")
    page.click("#layers label:has-text('copilot drawings')")
    _until(lambda: {"vision", "brain"} <= ui.ctrl.copilot.store.hidden, "brain not hidden")
    page.click("#layers label:has-text('segmentation')")
    page.click("#layers label:has-text('copilot drawings')")
    _until(lambda: not ui.ctrl.copilot.store.hidden, "drawings not shown again")
    assert not ui.ctrl.consent
    page.click("#consent input")
    _until(lambda: ui.ctrl.consent, "consent switch did not reach the server")
    page.wait_for_selector("#status:has-text('audio consent ON')", timeout=10_000)
    page.click("#consent input")
    _until(lambda: not ui.ctrl.consent, "consent switch did not turn off")


def _until(cond, what: str, timeout_s: float = 10.0) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < end, what
        time.sleep(0.1)


def test_spoken_question_gets_answer_steps_and_voice(page, ui, artifacts,  # noqa: ANN001
                                                     needs_brain) -> None:  # noqa: ANN001
    page.click("#ptt button.record-button")
    time.sleep(5.5)  # the fake-mic file (4 s) plays once from the start of the capture
    page.click("#ptt button.stop-button")
    page.wait_for_selector("#heard-box li:has-text('[mic]')", timeout=60_000)
    heard = page.inner_text("#heard-box")
    assert "what phase are we in" in heard, heard
    page.wait_for_selector("#answer-box .q:has-text('mic')", timeout=60_000)
    # the question was answered (a spurious later command from the noise may be newer on
    # the page: the recogniser is the speech issue's, not the UI's)
    _until(lambda: any(i.origin == "mic" and "what phase are we in" in (i.question or "")
                       for i in ui.ctrl.state.snapshot()["items"]), "question not answered")
    text = page.inner_text("#answer-text").strip()
    assert len(text) > 5
    uid = int(page.get_attribute("#answer", "data-uid"))
    item = next(i for i in ui.ctrl.state.snapshot()["items"] if i.uid == uid)
    assert item.origin == "mic" and item.kind == "answer" and item.text == text
    # its reasoning steps are listed
    n_steps = page.locator("#steps-box ol.steps li").count()
    assert n_steps == len(item.steps) >= 1
    first_claim = str(item.steps[0].get("claim", ""))[:30]
    assert first_claim and first_claim in page.inner_text("#steps-box")
    # the reply is spoken: the player gets a WAV of this answer (or a later message)
    page.wait_for_function(
        "uid => { const a = document.querySelector('#reply a[href*=\"reply-\"]');"
        " if (!a) return false; const m = a.href.match(/reply-(\\d+)\\.wav/);"
        " return m && +m[1] >= uid; }", arg=uid, timeout=60_000)
    href = page.get_attribute("#reply a[href*='reply-']", "href")
    resp = page.request.get(href)
    assert resp.ok
    import soundfile as sf

    audio, rate = sf.read(io.BytesIO(resp.body()), dtype="float32")
    assert len(audio) / rate > 0.5 and float(np.sqrt(np.mean(audio ** 2))) > 0.01
    page.wait_for_function("() => { const d = document.querySelector('#reply #duration');"
                           " return d && d.textContent.trim() !== '0:00'; }", timeout=20_000)
    # without consent no microphone audio was kept
    assert not (ui.ctrl.workdir / "recordings").exists()
    left = [p for p in Path(os.environ["GRADIO_TEMP_DIR"]).rglob("*")
            if p.is_file() and p.suffix in (".wav", ".webm", ".ogg") and "reply-" not in p.name]
    assert not left, left
    _shoot(page, artifacts, "02-answer")


def test_hands_free_wake_word(page, ui, artifacts) -> None:  # noqa: ANN001
    def mic_commands() -> int:
        return sum(h.origin == "mic" and h.accepted for h in ui.ctrl.state.snapshot()["heard"])

    n0, s0 = mic_commands(), ui.ctrl.hf_seconds
    page.click("#mode label:has-text('hands-free')")
    page.wait_for_selector("#hf-start", state="visible", timeout=20_000)
    assert not page.is_visible("#ptt button.record-button")
    # The fake microphone plays the question once per capture. The recogniser misses a
    # command now and then (benchmarks/results/speech.md: ~92 % at 15 dB), and the browser's
    # capture path varies from run to run: up to three captures, each a full real pass.
    heard: list = []
    for _attempt in range(3):
        page.click("#hf-start")
        page.wait_for_selector("#hf-state[data-state='listening']", timeout=20_000)
        time.sleep(6.0)  # the fake-mic file (4 s) plays once
        page.click("#hf-stop")
        page.wait_for_selector("#hf-state[data-state='off']", timeout=60_000)
        heard = [h for h in ui.ctrl.state.snapshot()["heard"] if h.origin == "mic"]
        if any(h.accepted and "what phase are we in" in h.text for h in heard[-3:]):
            break
    assert ui.ctrl.hf_seconds - s0 > 4.0  # the page streamed the microphone
    assert mic_commands() > n0, [(h.text, h.reason) for h in heard[-4:]]
    assert any(h.accepted and "what phase are we in" in h.text for h in heard[-3:]), \
        [(h.text, h.accepted, h.reason) for h in heard[-4:]]
    page.click("#mode label:has-text('push-to-talk')")
    page.wait_for_selector("#ptt button.record-button", state="visible", timeout=20_000)


def test_alert_appears_and_is_acknowledged(page, ui, artifacts,  # noqa: ANN001
                                           needs_brain) -> None:  # noqa: ANN001
    # the feed bleeds at 5 s (and the replay loops): an open alert comes within one replay
    page.wait_for_selector("#alerts-box .alert.open", timeout=60_000)
    uid = page.get_attribute("#alerts-box .alert.open", "data-uid")
    item = next(i for i in ui.ctrl.state.snapshot()["items"] if str(i.uid) == uid)
    assert item.kind == "alert" and item.rule and item.text
    assert item.text in page.inner_text(f"#alerts-box .alert[data-uid='{uid}']")
    rules = {i.rule for i in ui.ctrl.state.snapshot()["items"] if i.kind == "alert"}
    print(f"alerts raised so far: {sorted(rules)}")
    _shoot(page, artifacts, "03-alert")
    if os.environ.get("COPILOT_UPDATE_DOCS_SCREENSHOT"):
        DOCS_SHOT.parent.mkdir(exist_ok=True)
        shutil.copy(artifacts / "03-alert.png", DOCS_SHOT)
    page.click("#ack")
    page.wait_for_selector(f"#alerts-box .alert.ack[data-uid='{uid}']", timeout=30_000)
    assert "acknowledged" in page.inner_text("#ack-out")
    heard = [h for h in ui.ctrl.state.snapshot()["heard"] if h.origin == "ack"]
    assert heard and heard[-1].text == "copilot acknowledge"
    _shoot(page, artifacts, "04-acknowledged")


def test_video_keeps_moving_while_an_answer_is_slow(ui_feed, browser, artifacts,  # noqa: ANN001
                                                   needs_brain) -> None:  # noqa: ANN001
    # a slow vision stage, an overlay step that fails every 20th frame, an 8 s answer
    r = start_ui(ui_feed, speech="off", faults=["vision:slow", "overlay:raise"], loop=True)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        pg = ctx.new_page()
        pg.goto(r.url, wait_until="domcontentloaded")
        pg.wait_for_selector("#status-main[data-state='running']", timeout=90_000)
        pg.wait_for_function("() => document.querySelector('#video').naturalWidth > 0",
                             timeout=30_000)
        brain = r.ctrl.copilot.brain
        assert brain is not None
        inner = brain.on_transcript
        entered: list[float] = []
        answered: list[float] = []

        def slow(tr, addressed):  # noqa: ANN001, ANN202 - an 8 s answer (runtime timing)
            entered.append(time.monotonic())
            time.sleep(8.0)
            answered.append(time.monotonic())
            return inner(tr, addressed)

        brain.on_transcript = slow
        pg.fill("#question textarea", QUESTION)
        pg.click("#ask")
        t_end = time.monotonic() + 10
        while not entered and time.monotonic() < t_end:
            time.sleep(0.05)
        assert entered, "the question never reached the brain"
        seq0, t0 = r.ctrl.seq, time.monotonic()
        shots = []
        for _ in range(5):  # ~3 s inside the 8 s the answer takes
            shots.append(pg.locator("#video").screenshot())
            time.sleep(0.4)
        rate = (r.ctrl.seq - seq0) / (time.monotonic() - t0)
        s_page = int(pg.get_attribute("#status-main", "data-seq"))
        assert not answered, "the checks took longer than the slow answer"
        print(f"while the answer was pending: {rate:.1f} fps composited, "
              f"{frame_changes(shots)}/4 screenshot changes")
        assert rate >= 8.0, f"video at {rate:.1f} fps while an answer was pending (feed 15)"
        assert frame_changes(shots) >= 3
        # the status panel (gradio events) keeps updating too
        pg.wait_for_function(
            f"() => +document.querySelector('#status-main').dataset.seq > {s_page}",
            timeout=5_000)
        assert not answered
        health = r.ctrl.status()["health"]
        assert health["vision"]["state"] in ("ok", "restarting", "hung")
        assert health["overlay"]["errors"] >= 1
        # the failing step shows on the page, marked bad, while the video plays on
        pg.wait_for_selector("#health span.bad[data-stage='overlay']", timeout=10_000)
        pg.wait_for_selector("#answer-box .q:has-text('typed')", timeout=60_000)
        assert "what phase are we in" in pg.inner_text("#answer-box .q")
        _shoot(pg, artifacts, "05-slow-answer")
    finally:
        ctx.close()
        r.server.stop()
        r.ctrl.stop()
