"""The phase / view timeline of the UI: a small matplotlib figure (no pyplot state).

Row "phase" / "view": spans of the vision stage's phase (laparoscopic) or view (region)
captions over media time (s); below them answers (blue) and alerts (red) as markers.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

PALETTE = ["#4c6ef5", "#12b886", "#fab005", "#e64980", "#7950f2", "#fd7e14", "#15aabf",
           "#82c91e", "#be4bdb", "#868e96"]


def spans(points: list[tuple[float, str, str]], end_s: float) -> list[tuple[str, str, float,
                                                                            float]]:
    """(row, name, start s, end s) runs of equal names from (t, row, name) points."""
    out: list[tuple[str, str, float, float]] = []
    for i, (t, row, name) in enumerate(points):
        nxt = points[i + 1][0] if i + 1 < len(points) else max(end_s, t)
        if nxt < t:  # the source restarted: start a new line of runs
            nxt = t
        if out and out[-1][0] == row and out[-1][1] == name and abs(out[-1][3] - t) < 2.0:
            out[-1] = (row, name, out[-1][2], nxt)
        else:
            out.append((row, name, t, nxt))
    return out


COVERAGE_COLOURS = {"seen": "#2f9e44", "brief": "#f08c00", "missed": "#e03131",
                    "pending": "#ced4da"}


def timeline_figure(snap: dict[str, Any], now_s: float, width_in: float = 6.4,
                    coverage: dict[str, str] | None = None) -> Figure:
    """The figure for a ``UIState.snapshot()`` with media time ``now_s`` (s); ``coverage``
    (segment -> seen | brief | missed | pending, from the brain) adds the coverage strip."""
    show_cov = bool(coverage) and any(v != "pending" for v in coverage.values())
    fig = Figure(figsize=(width_in, 2.6 if show_cov else 2.0), dpi=100)
    if show_cov:
        ax, cax = fig.subplots(2, 1, height_ratios=[3, 1])
        fig.subplots_adjust(left=0.1, right=0.98, top=0.96, bottom=0.08, hspace=0.9)
        _coverage_strip(cax, coverage or {})
    else:
        fig.subplots_adjust(left=0.1, right=0.98, top=0.95, bottom=0.24)
        ax = fig.add_subplot()
    pts = snap.get("timeline", [])
    # keep the current replay only (media time restarts when the feed loops)
    for i in range(len(pts) - 1, 0, -1):
        if pts[i][0] + 1.0 < pts[i - 1][0]:
            pts = pts[i:]
            break
    runs = spans(pts, now_s)
    names = sorted({r[1] for r in runs})
    colour = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    rows = {"phase": 2, "view": 1}
    for row, name, t0, t1 in runs:
        y = rows.get(row, 1)
        ax.broken_barh([(t0, max(t1 - t0, 0.05))], (y - 0.35, 0.7), color=colour[name])
        span = max(10.0, now_s * 1.05)
        chars = int((t1 - t0) / span * width_in * 0.8 * 100 / 5)  # ~5 px per 7 pt character
        if chars >= 4:
            ax.text((t0 + t1) / 2, y, name if len(name) <= chars else name[:chars - 1] + ".",
                    ha="center", va="center", fontsize=7, color="white")
    for it in snap.get("items", []):
        if it.media_t_s is None or it.media_t_s > now_s + 1:
            continue
        if it.kind == "alert":
            ax.plot([it.media_t_s], [0.3], marker="v", color="#e03131", markersize=8)
        else:
            ax.plot([it.media_t_s], [0.3], marker="o", color="#1c7ed6", markersize=6)
    ax.axvline(now_s, color="#495057", lw=1, ls="--")
    ax.set_yticks([0.3, 1, 2], ["o answer\nv alert", "view", "phase"], fontsize=7)
    ax.set_ylim(-0.2, 2.6)
    ax.set_xlim(0, max(10.0, now_s * 1.05))
    ax.set_xlabel("media time (s)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    return fig


def _coverage_strip(ax: Any, coverage: dict[str, str]) -> None:
    """One cell per bowel segment in route order, coloured by its coverage state."""
    for i, (seg, state) in enumerate(coverage.items()):
        ax.add_patch(_rect(i, COVERAGE_COLOURS.get(state, "#ced4da")))
        ax.text(i + 0.5, 0.5, seg.replace("duodenum_", "")[:4], ha="center", va="center",
                fontsize=6)
    ax.set_xlim(0, max(1, len(coverage)))
    ax.set_ylim(0, 1)
    ax.set_yticks([0.5], ["coverage"], fontsize=8)
    ax.set_xticks([])


def _rect(i: int, colour: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((i + 0.04, 0.05), 0.92, 0.9, color=colour)
