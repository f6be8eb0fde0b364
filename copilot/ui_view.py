"""What one viewer of the web UI sees drawn: the overlay layers it can hide and its
drawing options (``copilot.overlay.DrawOptions``)."""

from __future__ import annotations

from copilot.overlay import DrawOptions

#: Overlay sources a viewer can hide: (label, AnnotationStore source name).
LAYERS = (("segmentation outlines", "vision"),
          ("copilot drawings (outlines, alert banners, coverage)", "brain"))
BRAIN_SOURCE = "brain"
#: the drawing a page gets unless it asks otherwise: outlines, no fills, no status strip
DEFAULT_VIEW = DrawOptions(status_line=False, notes=False)


def view_options(layers: str | None = None, fill: str | int | None = None) -> DrawOptions:
    """One viewer's drawing from its request: ``layers`` (comma-separated sources shown;
    None: all) and ``fill`` (1: translucent fills)."""
    known = {v for _, v in LAYERS}
    shown = known if layers is None else {x for x in str(layers).split(",") if x in known}
    return DrawOptions(fill=str(fill) in ("1", "true", "on"), status_line=False, notes=False,
                       hidden=frozenset(known - shown))
