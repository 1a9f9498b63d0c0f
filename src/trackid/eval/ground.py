"""Ground-plane multi-object metrics with py-motmetrics, as the multi-view literature (WILDTRACK, GNN-CCA) reports
them: a hypothesis matches a ground-truth person within `threshold` ground units (0.5 m or 1 m).

MODA = 1 - (misses + false positives) / ground-truth points and MODP = 1 - mean matched distance / threshold are the
detection scores (ids ignored); MOTA, IDF1 and the identity switches come from the same accumulator when the
hypotheses carry track ids.
"""

from __future__ import annotations

from typing import Any

import motmetrics as mm
import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ground_metrics"]


def ground_metrics(truth: ArrayLike, hypotheses: ArrayLike, threshold: float) -> dict[str, float]:
    """Scores of `hypotheses` against `truth`, both (N, 4) rows of frame, id, x, y (ground units)."""
    gt = _rows(truth, "truth")
    hyp = _rows(hypotheses, "hypotheses")
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    acc = mm.MOTAccumulator(auto_id=False)
    for frame in np.union1d(gt[:, 0], hyp[:, 0]):
        g, h = gt[gt[:, 0] == frame], hyp[hyp[:, 0] == frame]
        distances = mm.distances.norm2squared_matrix(g[:, 2:4], h[:, 2:4], max_d2=threshold**2)
        acc.update(g[:, 1].astype(int).tolist(), h[:, 1].astype(int).tolist(), np.sqrt(distances), frameid=int(frame))
    host = mm.metrics.create()
    names = ["num_objects", "num_misses", "num_false_positives", "num_switches", "mota", "idf1"]
    summary: Any = host.compute(acc, metrics=names, name="all")
    row = summary.loc["all"]
    events = acc.mot_events
    matched = events[events["Type"].isin(["MATCH", "SWITCH"])]["D"].to_numpy(np.float64)
    objects = max(1, int(row["num_objects"]))
    return {
        "MODA": 100 * (1 - (int(row["num_misses"]) + int(row["num_false_positives"])) / objects),
        "MODP": 100 * (1 - float(np.mean(matched)) / threshold) if matched.size else 0.0,
        "MOTA": 100 * float(row["mota"]),
        "IDF1": 100 * float(row["idf1"]),
        "IDSW": float(row["num_switches"]),
        "objects": float(objects),
    }


def _rows(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values, np.float64).reshape(-1, 4) if np.size(values) else np.empty((0, 4))
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (frame, id, x, y) rows")
    return arr
