"""Shared check for a backend that falls back (the recogniser, the voice): the copilot says
which one runs and why, in its status line, the run result, the session start record and
the report (issue 19: no silent fallback)."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.conftest import start_record


def run_and_check_fallback(feed: Path, out: Path, kind: str, runs: str, said: str,
                           why: str) -> object:
    """Compose and run ``feed`` (no vision, 1 s); ``{kind}_backend`` is ``runs`` and its reason
    holds ``said`` (in the app, status line and report) and ``why`` (result, start record).
    Returns the composed app."""
    from copilot.app import Copilot, RunConfig

    app = Copilot(RunConfig(source=str(feed), out=out, vision="none", max_seconds=1.0))
    app.compose()
    assert getattr(app, f"{kind}_backend") == runs
    assert said in getattr(app, f"{kind}_backend_reason")
    assert said in app.status().extra
    res = app.run()
    assert getattr(res, f"{kind}_backend") == runs
    assert why in getattr(res, f"{kind}_backend_reason")
    assert why in start_record(out)[f"{kind}_backend_reason"]
    assert said in (out / "report.html").read_text()
    return app
