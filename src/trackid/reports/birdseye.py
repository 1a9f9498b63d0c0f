"""A site seen from above: every global track's path on the ground plane, one colour per id, and the cameras.

Drawn with matplotlib's object API like `trackid.reports.plots` (no pyplot state). Paths are one `LineCollection`
of consecutive points of each id, so a site with thousands of tracks costs one draw call, not one per track; a gap
in a track (frames where no view saw the person) is drawn straight across, as the tracker bridged it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from numpy.typing import NDArray

from trackid.reports.plots import figure_png

__all__ = ["birdseye_png"]


def birdseye_png(
    tracks: NDArray[np.float64],
    cameras: Mapping[str, tuple[float, float]] | None = None,
    title: str = "",
    size_inches: float = 8.0,
) -> bytes:
    """The ground-plane tracks as PNG bytes.

    Args:
        tracks: (M, 4) rows frame, global id, x, y in metres.
        cameras: ground position (metres) of each camera whose position is known, drawn as a labelled triangle.
        title: the figure's title.
        size_inches: the longer side of the figure.
    """
    rows = np.asarray(tracks, np.float64).reshape(-1, 4)
    rows = rows[np.lexsort((rows[:, 0], rows[:, 1]))]
    places = np.array(list((cameras or {}).values()), np.float64).reshape(-1, 2)
    extent = np.vstack([rows[:, 2:], places])
    low, high = (extent.min(axis=0), extent.max(axis=0)) if len(extent) else (np.zeros(2), np.ones(2))
    span = np.maximum(high - low, 1.0)  # at least a metre: one point, or one camera, still gets a readable window
    low, high = (low + high - span) / 2, (low + high + span) / 2
    aspect = float(np.clip(span[1] / span[0], 0.3, 3.0))
    width, height = (size_inches, size_inches * aspect) if aspect <= 1 else (size_inches / aspect, size_inches)
    fig = Figure(figsize=(width, height + 0.6))
    ax = fig.subplots()
    ids = rows[:, 1]
    colours = _id_colours(ids)
    same = ids[1:] == ids[:-1]
    segments = np.stack([rows[:-1, 2:], rows[1:, 2:]], axis=1)[same]
    ax.add_collection(LineCollection(segments, colors=colours[:-1][same], linewidths=1.0, alpha=0.8))
    starts = np.r_[True, ~same] if len(rows) else np.zeros(0, bool)
    ax.scatter(rows[starts, 2], rows[starts, 3], s=6, c=colours[starts], marker="o", linewidths=0)
    ax.scatter(places[:, 0], places[:, 1], s=60, marker="^", c="black", zorder=3)
    for name, (x, y) in (cameras or {}).items():
        ax.annotate(name, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7)
    margin = 0.05 * span
    ax.set_xlim(low[0] - margin[0], high[0] + margin[0])
    ax.set_ylim(low[1] - margin[1], high[1] + margin[1])
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.grid(True, linewidth=0.3, alpha=0.5)
    count = len(np.unique(ids))
    ax.set_title(f"{title}{' - ' if title else ''}{count} global track{'s' * (count != 1)} (dots: starts)", fontsize=9)
    return figure_png(fig)


def _id_colours(ids: NDArray[np.float64]) -> NDArray[np.float64]:
    """RGBA per row: 20 distinct hues, neighbouring ids apart (ids are numbered in order of appearance, so people who
    appear together get different colours)."""
    from matplotlib import colormaps

    palette = np.asarray(colormaps["tab20"](np.arange(20)), np.float64).reshape(20, 4)
    return palette[(ids.astype(np.int64) * 7) % 20]  # 7 is coprime with 20: consecutive ids jump across hues
