"""``copilot sheet RUN_DIR [--out sheet.png] [--n 12]``: contact sheet of a run (review)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``sheet`` command to the ``copilot`` CLI."""

    @app.command("sheet")
    def sheet(
        run_dir: Path = typer.Argument(..., help="a `copilot run --out DIR` folder"),
        out: Path | None = typer.Option(None, "--out", help="PNG (default RUN_DIR/sheet.png)"),
        n: int = typer.Option(12, "--n", help="frames on the sheet"),
        width: int = typer.Option(320, "--width", help="thumbnail width (px)"),
    ) -> None:
        """What the copilot showed and said on a run: frames with its beliefs, then every
        alert, answer and off-label span. Keep sheets of real patients' video out of git."""
        from copilot.run_sheet import run_contact_sheet

        typer.echo(str(run_contact_sheet(run_dir, out, n=n, thumb_width=width)))
