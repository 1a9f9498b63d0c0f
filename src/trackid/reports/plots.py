"""PNG plots for reports, drawn with matplotlib's object API (no pyplot: no global state, safe in threads and
workers without a display)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["figure_png", "histograms_png"]


def histograms_png(
    groups: Mapping[str, Sequence[float]], xlabel: str, ylabel: str = "density", bins: int = 39
) -> bytes:
    """Overlaid density histograms of each group (legend: name and count), on shared bins, as PNG bytes; groups
    without values are left out of the plot."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    values = [v for vs in groups.values() for v in vs]
    low, high = min(values, default=0.0), max(values, default=1.0)
    if high - low < 1e-6:  # one value (or none): give the bins a width
        low, high = low - 0.01, high + 0.01
    edges = np.linspace(low, high, bins + 1).tolist()
    for name, vs in sorted(groups.items()):
        if vs:
            ax.hist(vs, bins=edges, alpha=0.5, density=True, label=f"{name} ({len(vs)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if any(groups.values()):  # a legend of nothing only warns
        ax.legend(fontsize=8)
    return figure_png(fig)


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (100 dpi, cropped to its drawing): what every report plot writes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()
