"""Teaching by example in the web UI (headless Chromium): a name typed in the teach box and a
click on the live frame teach a concept; the answer says it is taught, not validated; the
concept is then outlined on later frames, and "that is not it" adds a counter-example."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.ui.conftest import start_ui

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def teach_feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 s cholecystectomy at 320x240 / 15 fps (seed 5193, this test only)."""
    from copilot.feeds import make_feed

    return make_feed(tmp_path_factory.mktemp("teach-feed"), "cholecystectomy", 30.0,
                     seed=5193, size=(320, 240), fps=15.0, audio=False)


def test_click_on_the_live_frame_teaches(teach_feed, browser, needs_brain) -> None:  # noqa: ANN001
    r = start_ui(teach_feed, speech="off", loop=False)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        pg = ctx.new_page()
        pg.goto(r.url, wait_until="domcontentloaded")
        pg.wait_for_function("() => Number(document.getElementById('video')?.dataset.seq) > 5",
                             timeout=90_000)
        pg.fill("#teach-name", "landmark two")
        box = pg.locator("#video").bounding_box()
        pg.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.5)
        pg.wait_for_selector("#teach-status[data-done='1']", timeout=30_000)
        said = pg.inner_text("#teach-status")
        assert said.startswith("Learned an example of the landmark two")
        assert "not part of my validated knowledge" in said
        teaching = r.ctrl.copilot.brain.teaching
        assert teaching.book.names() == ["landmark two"]
        pg.wait_for_function(
            "() => Array.from(document.querySelectorAll('#history details.turn .a'))"
            ".some(a => a.textContent.startsWith('Learned an example of the landmark two'))",
            timeout=30_000)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not teaching.shown.get("landmark two"):
            time.sleep(0.2)
        assert teaching.shown["landmark two"]["frames"] > 0  # outlined on later frames
        pg.check("#teach-not")
        pg.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.1)
        pg.wait_for_function("() => document.getElementById('teach-status').textContent"
                             ".startsWith('Noted: that is not the landmark two')",
                             timeout=30_000)
        assert teaching.book.describe("landmark two")["negatives"] == 1
    finally:
        ctx.close()
        r.server.stop()
        r.ctrl.stop()
