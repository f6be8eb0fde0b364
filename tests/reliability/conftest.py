"""Shared fixtures: one tiny real feed per session (seed 5010: used by nothing else)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FEED_SECONDS = 4.0
FEED_FPS = 10.0
FEED_SIZE = (320, 240)
N_FRAMES = int(FEED_SECONDS * FEED_FPS)
LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")


@pytest.fixture(scope="session")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s cholecystectomy feed folder (320x240, 10 fps, speech in audio.wav)."""
    from copilot.feeds import make_feed

    return make_feed(tmp_path_factory.mktemp("feed") / "chole", "cholecystectomy",
                     FEED_SECONDS, 5010, size=FEED_SIZE, fps=FEED_FPS)


@pytest.fixture(scope="session")
def alert_feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s feed with bleeding at 1 s (seed 5011): the model raises spoken alerts, so the
    copilot's TTS really runs."""
    from copilot.feeds import make_feed

    return make_feed(tmp_path_factory.mktemp("feed") / "bleed", "cholecystectomy",
                     FEED_SECONDS, 5011, size=FEED_SIZE, fps=FEED_FPS, events=["bleeding@1.0"])


@pytest.fixture(scope="session")
def short_audio(feed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 0.5 s of the feed's audio (16 chunks: keeps slow-speech cells short)."""
    import soundfile as sf

    x, rate = sf.read(str(feed / "audio.wav"), dtype="float32")
    p = tmp_path_factory.mktemp("audio") / "short.wav"
    sf.write(str(p), x[: rate // 2], rate)
    return p


def cli(*args: str, timeout: float = 120.0, **kw) -> subprocess.CompletedProcess:
    """Run the ``copilot`` console entry point; text output captured."""
    env = {**os.environ, "COPILOT_LOG": "WARNING", "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "copilot.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=kw.pop("cwd", REPO), env=env, **kw)


def assert_clean_error(r: subprocess.CompletedProcess, *must: str) -> str:
    """Exit code 2, a one-line ``error: ...`` on stderr naming ``must``; no traceback."""
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.returncode == 2, (r.returncode, r.stdout[-800:], r.stderr[-800:])
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, r.stderr
    # besides log records ("WARNING name: ..."), the error is the only thing on stderr
    other = [ln for ln in r.stderr.splitlines()
             if ln.strip() and not ln.startswith("error:") and not LOG_LINE.match(ln)]
    assert not other, f"more than one line of error: {other[:5]}"
    for m in must:
        assert m in errors[0], (m, errors[0])
    return errors[0]


class CliResult:
    """What an in-process ``copilot`` call printed and returned (like CompletedProcess)."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


@pytest.fixture
def run_main(capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Call ``copilot.cli.main()`` in this process (saves the ~2 s import of a subprocess).

    An exception escaping ``main()`` is what would print a traceback: it is turned into
    "Traceback" text on stderr, so ``assert_clean_error`` catches it."""
    import traceback

    from copilot import cli as cli_mod

    def call(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["copilot", *args])
        capfd.readouterr()
        code = 0
        tb = ""
        try:
            cli_mod.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - exactly what the test looks for
            tb = traceback.format_exc()
            code = 1
        out, err = capfd.readouterr()
        return CliResult(code, out, err + tb)

    return call


def start_record(out: Path) -> dict:
    """The ``start`` record of the session log in run folder ``out``."""
    import json

    for line in (out / "session.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["type"] == "start":
            return rec
    raise AssertionError("no start record")
