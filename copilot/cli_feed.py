"""``copilot feed make`` / ``copilot feed show``: synthetic recorded feeds with ground truth."""

from __future__ import annotations

from pathlib import Path

import typer

_EVENT_HELP = (
    "Scripted event (repeatable): bleeding@T, clip_before_cvs@T, large_vessel@T "
    "(T = seconds from the start), skip_phase:PHASE (Cholec80 phase name, e.g. "
    "skip_phase:CleaningCoagulation), skip_segment:SEGMENT, brief_segment:SEGMENT "
    "(bowel segment, e.g. duodenum_d3)."
)


def register(app: typer.Typer) -> None:
    """Add the ``feed`` sub-app (``make``, ``show``) to the ``copilot`` CLI."""
    feed = typer.Typer(help="Synthetic recorded feeds: video + audio + truth manifest + masks.",
                       no_args_is_help=True)

    @feed.command("make")
    def make(
        out_dir: Path = typer.Argument(..., help="Folder to write the feed into (created)."),
        scenario: str = typer.Option(
            "cholecystectomy", "--scenario", help="cholecystectomy or bowel-survey."),
        seconds: float = typer.Option(60.0, "--seconds", help="Feed length in seconds."),
        seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same feed)."),
        size: str = typer.Option("1280x720", "--size", help="Frame size WIDTHxHEIGHT (even)."),
        fps: float = typer.Option(30.0, "--fps", help="Frames per second."),
        skip_segment: list[str] = typer.Option(
            None, "--skip-segment",
            help="Bowel segment never viewed (repeatable; bowel-survey), e.g. duodenum_d3."),
        event: list[str] = typer.Option(None, "--event", help=_EVENT_HELP),
        route: str = typer.Option(
            "full", "--route",
            help="bowel-survey route: full (duodenum to rectum), upper (duodenum to ileum) "
                 "or lower (caecum to rectum)."),
        no_speech: bool = typer.Option(
            False, "--no-speech", help="Soundscape only, no spoken lines."),
        preset: str = typer.Option("ultrafast", "--preset",
                                   help="libx264 preset (ultrafast .. slow)."),
    ) -> None:
        """Generate a feed: video.mp4 (H.264), audio.wav (16 kHz), truth.json, masks/."""
        import time

        from copilot.feeds import make_feed

        t0 = time.perf_counter()
        out = make_feed(out_dir, scenario, seconds, seed, size, fps,
                        skip_segments=skip_segment or (), events=event or (), route=route,
                        audio=not no_speech, preset=preset)
        typer.echo(f"wrote {out} in {time.perf_counter() - t0:.1f} s")

    @feed.command("show")
    def show(
        feed_dir: Path = typer.Argument(..., help="Feed folder (with truth.json)."),
        out: Path = typer.Option(
            None, "--out", help="PNG to write (default: FEED_DIR/contact_sheet.png)."),
        frames: int = typer.Option(8, "--frames", help="Number of frames on the sheet."),
        width: int = typer.Option(240, "--width", help="Width of each thumbnail in pixels."),
    ) -> None:
        """Write a PNG contact sheet: frames, their label masks and the truth at that time."""
        from copilot.feeds import show_feed

        path = show_feed(feed_dir, out, n=frames, thumb_width=width)
        typer.echo(f"wrote {path}")

    app.add_typer(feed, name="feed")
