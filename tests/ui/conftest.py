"""Fixtures for the web UI tests: a short recorded feed with a bleed at 5 s, a question WAV cut
from the feed's own audio, the UI server on a free port, headless Chromium with a fake mic."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

# before gradio is imported anywhere: no analytics, uploads in a folder the tests can inspect
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
GRADIO_TMP = Path(tempfile.mkdtemp(prefix="copilot-ui-gradio-"))
os.environ["GRADIO_TEMP_DIR"] = str(GRADIO_TMP)

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
TOKEN = "test-token-5101"
QUESTION = "copilot, what phase are we in?"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests need gradio, Playwright and Chromium; skip them (with why) otherwise."""
    why = ""
    try:
        import gradio  # noqa: F401
        import playwright  # noqa: F401
    except ImportError as exc:
        why = f"needs the ui + dev extras ({exc.name})"
    if not why and not Path(CHROMIUM).exists():
        why = f"needs Chromium at {CHROMIUM} (apt-get install chromium)"
    if not why and shutil.which("espeak-ng") is None:
        why = "needs espeak-ng"
    if why:
        for it in items:
            if "browser" in it.keywords:
                it.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(scope="session")
def needs_brain() -> None:
    """Answers and alerts come from copilot.brain; skip (saying so) in a build without it."""
    try:
        import copilot.brain  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"the copilot brain is not in this build ({exc})")


@pytest.fixture(scope="session")
def ui_feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 s cholecystectomy at 426x240 / 15 fps, a bleed at 5 s (seed 5101, UI tests only)."""
    from copilot.feeds import make_feed

    return make_feed(tmp_path_factory.mktemp("ui-feed"), "cholecystectomy", 24.0, seed=5101,
                     size=(426, 240), fps=15.0, events=["bleeding@5"])


@pytest.fixture(scope="session")
def question_wav(ui_feed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The feed's own "copilot, what phase are we in?" (with its OR noise), cut from
    audio.wav with 0.6 s before and 1.5 s after, as a 16 kHz WAV for the fake microphone."""
    from speech.audio import load_audio, write_wav

    truth = json.loads((ui_feed / "truth.json").read_text())
    utt = next(u for u in truth["utterances"] if u["intent"] == "current_phase")
    x = load_audio(ui_feed / "audio.wav")
    a = int(max(0.0, utt["start_s"] - 0.6) * 16000)
    b = int(min(len(x) / 16000, utt["end_s"] + 1.5) * 16000)
    out = tmp_path_factory.mktemp("ui-audio") / "question.wav"
    write_wav(out, x[a:b])
    return out


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests save screenshots (printed at the end of the session)."""
    d = tmp_path_factory.mktemp("ui-screenshots")
    print(f"\nUI screenshots: {d}")
    return d


class Running:
    """A started UI: controller, server and URL (with the token)."""

    def __init__(self, ctrl, server, url: str) -> None:  # noqa: ANN001
        self.ctrl = ctrl
        self.server = server
        self.url = url
        self.base = url.split("?")[0]


def start_ui(source: Path, **kw) -> Running:  # noqa: ANN003 - UIConfig fields
    """Start the copilot and its UI on a free loopback port."""
    from copilot.ui import UIConfig, UIController, UIServer, free_port

    cfg = UIConfig(source=str(source), port=free_port(), **kw)
    ctrl = UIController(cfg)
    ctrl.start()
    server = UIServer(ctrl)
    url = server.start(timeout_s=120)
    return Running(ctrl, server, url)


@pytest.fixture(scope="session")
def ui(ui_feed: Path) -> Iterator[Running]:
    """The UI on the feed, token-protected, the feed's own audio off (the page's mic asks)."""
    r = start_ui(ui_feed, token=TOKEN, speech="off", loop=True)
    yield r
    r.server.stop()
    r.ctrl.stop()


@pytest.fixture(scope="session")
def browser(question_wav: Path) -> Iterator:
    """Headless Chromium whose fake microphone plays the question WAV once per capture."""
    from playwright.sync_api import sync_playwright

    args = [*BROWSER_ARGS, "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={question_wav}%noloop"]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield b
        b.close()


def frame_changes(shots: list[bytes]) -> int:
    """How many consecutive screenshots (PNG bytes) differ in their pixels."""
    import cv2

    imgs = [cv2.imdecode(np.frombuffer(s, np.uint8), cv2.IMREAD_GRAYSCALE) for s in shots]
    return sum(int(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))) > 0.5)
               for a, b in zip(imgs, imgs[1:], strict=False))
