"""``copilot report SESSION [--out report.html] [--trace trace.jsonl]``: rebuild the report."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to the ``copilot`` CLI."""

    @app.command("report")
    def report(
        session: Path = typer.Argument(..., help="session.jsonl (or the run's --out folder)"),
        out: Path | None = typer.Option(None, "--out", help="HTML file (default: "
                                        "report.html next to the session)"),
        trace: Path | None = typer.Option(None, "--trace", help="trace.jsonl for latencies "
                                          "(default: trace.jsonl next to the session)"),
    ) -> None:
        """Build the post-operative report (self-contained HTML) from a session log."""
        from copilot.errors import CopilotError
        from copilot.report import build_report

        path = session / "session.jsonl" if session.is_dir() else session
        if not path.is_file():
            raise CopilotError(f"session file not found: {path}")
        target = out or path.with_name("report.html")
        if trace is None and path.with_name("trace.jsonl").is_file():
            trace = path.with_name("trace.jsonl")
        if trace is not None and not trace.is_file():
            raise CopilotError(f"trace file not found: {trace}")
        p = build_report(path, target, trace_path=trace)
        typer.echo(str(p))
