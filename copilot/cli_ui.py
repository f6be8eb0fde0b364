"""``copilot ui``: the web UI (gradio, pip extra ``ui``) on this machine or, with a token,
on the network."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def ui_command(
    source: Annotated[str | None, typer.Option(
        help="video file, feed folder, camera index or URL (default: the demo feed)")] = None,
    host: Annotated[str, typer.Option(help="address to listen on; anything but loopback "
                                            "needs --token")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port)")] = 7860,
    token: Annotated[str | None, typer.Option(
        help="access token (>= 8 characters): open http://HOST:PORT/?token=T")] = None,
    workdir: Annotated[Path | None, typer.Option(
        help="folder for spoken replies, consented recordings and voice prints "
             "(default: a temporary folder)")] = None,
    loop: Annotated[bool, typer.Option("--loop/--once",
                                       help="replay a recorded source when it ends")] = True,
    vision: Annotated[str, typer.Option(help="auto | model | heuristic | none")] = "auto",
    speech: Annotated[str, typer.Option(
        help="the feed's own audio through the listener: auto | on | off")] = "auto",
    inject_fault: Annotated[list[str] | None, typer.Option(
        help="STAGE:KIND[:AFTER_S] (repeatable), as for copilot run")] = None,
    speed: Annotated[float, typer.Option(help="replay speed factor")] = 1.0,
    voice_print: Annotated[Path | None, typer.Option(help="enrolled voice (.npz)")] = None,
    asr: Annotated[str, typer.Option(
        help="the recogniser, as for copilot run (default: the measured one)")] = "default",
    voice: Annotated[str, typer.Option(
        help="the copilot's voice: default (Piper joe where installed, else espeak-ng, said) "
             "| piper | espeak")] = "default",
    ui_fps: Annotated[float, typer.Option(
        help="most video frames per second per page (default: up to 30, the source's rate)")
    ] = 30.0,
    consent: Annotated[bool, typer.Option(
        help="start with the audio consent switch on")] = False,
    procedure: Annotated[str | None, typer.Option(
        help="the procedure: cholecystectomy | bowel-survey (default: the feed's truth, "
             "else cholecystectomy)")] = None,
    cvs: Annotated[str, typer.Option(
        help="who calls the critical view of safety: auto | vision | surgeon")] = "auto",
) -> None:
    """Serve the copilot's web UI: live annotated video, microphone, answers, alerts."""
    import math

    from copilot.errors import CopilotError
    from copilot.ui import UIConfig, check_bind, require_gradio, serve

    if not 0 <= port <= 65535:
        raise CopilotError(f"--port {port}: a TCP port is 0 (any free one) to 65535")
    if not (math.isfinite(speed) and speed > 0) or not (math.isfinite(ui_fps) and ui_fps > 0):
        raise CopilotError("--speed and --ui-fps must be finite numbers > 0")
    check_bind(host, token)  # before anything slow: a clear error, exit 2
    from copilot.errors import CopilotError
    from copilot.validity import resolve_procedure

    try:
        resolve_procedure(procedure, None)
    except ValueError as exc:
        raise CopilotError(str(exc)) from None
    if cvs not in ("auto", "vision", "surgeon"):
        raise CopilotError(f"unknown --cvs {cvs!r}: auto, vision or surgeon")
    from copilot.voice import check_voice

    check_voice(voice)
    require_gradio()
    if source is None:
        from copilot.feeds import make_demo_feed

        feed = Path("demo_out") / "feed"
        if not (feed / "truth.json").exists():
            print(f"making the demo feed in {feed} ...", flush=True)
        source = str(make_demo_feed(feed))
    cfg = UIConfig(source=source, host=host, port=port, token=token, workdir=workdir,
                   loop=loop, vision=vision, speech=speech, faults=list(inject_fault or []),
                   speed=speed, voice_print=voice_print, ui_fps=ui_fps, consent=consent,
                   procedure=procedure, cvs=cvs, asr=asr, voice=voice)
    serve(cfg)


def register(app: typer.Typer) -> None:
    """Add ``ui`` to the CLI."""
    app.command("ui")(ui_command)
