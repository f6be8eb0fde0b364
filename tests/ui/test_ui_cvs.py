"""The surgeon's critical-view call in the web UI (headless Chromium): with ``--cvs surgeon``
the header says the call is the surgeon's, the clip applier entering the view raises the
"confirm the critical view" prompt in the alarm panel, and a typed "copilot, critical view
confirmed" is answered, logged in the session and shown in the header with its time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.conftest import start_ui

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def clip_feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 s cholecystectomy at 320x240 / 15 fps, the clip applier in view from 9 s
    (seed 5181, this test only): 20 s left to confirm before the replay ends."""
    from copilot.feeds import make_feed

    return make_feed(tmp_path_factory.mktemp("cvs-feed"), "cholecystectomy", 30.0, seed=5181,
                     size=(320, 240), fps=15.0, events=["clip_before_cvs@9"], audio=False)


def test_cvs_is_the_surgeons_call_in_the_ui(clip_feed, browser, needs_brain) -> None:  # noqa: ANN001
    r = start_ui(clip_feed, speech="off", cvs="surgeon", loop=False)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        pg = ctx.new_page()
        pg.goto(r.url, wait_until="domcontentloaded")
        pg.wait_for_selector("#cvs-badge[data-state='unstated']", timeout=90_000)
        assert "your call" in pg.inner_text("#cvs-badge")
        prompt = "#alerts-box .alert[data-rule='cvs_confirm_prompt']"
        pg.wait_for_selector(prompt, timeout=120_000)
        assert "critical view" in pg.inner_text(prompt).lower()
        assert not pg.locator("#alerts-box .alert[data-rule='clip_before_cvs']").count()
        pg.fill("#question textarea", "copilot, critical view confirmed")
        pg.click("#ask")
        pg.wait_for_selector("#cvs-badge[data-state='confirmed']", timeout=60_000)
        badge = pg.inner_text("#cvs-badge")
        assert badge.startswith("CVS confirmed by you at ")
        pg.wait_for_function(
            "() => Array.from(document.querySelectorAll('#history details.turn .a'))"
            ".some(a => a.textContent.startsWith('Noted: critical view of safety confirmed'))",
            timeout=30_000)
        policy = r.ctrl.copilot.cvs_policy
        assert policy.confirmations and policy.state is True  # recorded where alerts read it
        t = int(policy.stated_at)
        assert badge.endswith(f"{t // 60}:{t % 60:02d}")  # the media time it was said
    finally:
        ctx.close()
        r.server.stop()
        r.ctrl.stop()
