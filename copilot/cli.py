"""The ``copilot`` command line. Each capability registers its commands from its own module."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer

from copilot.errors import USER_ERRORS

app = typer.Typer(
    name="copilot",
    help="Surgical video copilot: watches the feed, listens, reasons, answers by voice.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Modules that add commands with ``register(app)``; each imports heavy things lazily.
_COMMAND_MODULES = (
    "copilot.cli_run",
    "copilot.cli_feed",
    "copilot.cli_vision",
    "copilot.cli_speech",
    "copilot.cli_ask",
    "copilot.cli_report",
    "copilot.cli_sheet",
    "copilot.cli_bench",
    "copilot.cli_ui",
)


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # capability not built yet
                continue
            raise
        module.register(app)


_register_all()


def main() -> None:
    """Entry point: runs the app; user errors become one line on stderr and exit code 2."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(
        level=os.environ.get("COPILOT_LOG", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        rv = app(standalone_mode=False)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except FileNotFoundError as exc:
        print(f"error: file not found: {exc.filename or exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors and the like
        # by class name: newer typer raises its vendored click's classes (typer._click)
        names = {c.__name__ for c in type(exc).__mro__}
        if "ClickException" in names:  # usage errors: one line, not click's four
            msg = " ".join(str(exc.format_message()).split())
            ctx = getattr(exc, "ctx", None)
            where = f" ({ctx.command_path})" if ctx is not None and ctx.command_path else ""
            print(f"error: {msg}{where}", file=sys.stderr)
            sys.exit(2)
        if "Abort" in names:
            sys.exit(1)
        raise
    if isinstance(rv, int) and rv:
        sys.exit(rv)


if __name__ == "__main__":
    main()
