"""The gallery's calibration report: what a similarity means for this model, and where to put the threshold.

`write_calibration_report` is what `trackid gallery report` runs on labelled pairs (e.g. from corrections or the
similarity log): similarity histograms same vs different, ROC, calibration curve, the F1-optimal threshold and the
threshold for a target false-match rate, written as PNGs, one JSON and one self-contained HTML page (PNGs inlined as
base64, so it can be mailed or attached to a ticket). Every file is written atomically.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from trackid.artifacts import atomic_write_bytes, atomic_write_text
from trackid.identity.calibration import (
    MatchCalibrator,
    expected_calibration_error,
    f1_optimal_threshold,
    roc_curve,
    threshold_for_false_match_rate,
)

__all__ = ["write_calibration_report"]

PLOTS = ("similarity_hist.png", "roc.png", "calibration.png")


def write_calibration_report(
    out_dir: str | Path,
    similarity: ArrayLike,
    same: ArrayLike,
    calibrator: MatchCalibrator,
    target_false_match_rate: float = 0.01,
    quality: ArrayLike | None = None,
    time_gap_s: ArrayLike | None = None,
    title: str = "Match calibration report",
) -> dict[str, Any]:
    """Write `report.json`, `report.html` and the PNGs into `out_dir`; return the JSON's content.

    Thresholds are computed on the pairs given, in both spaces: probability (for a calibrated gallery) and raw
    similarity (to compare with thresholds configured elsewhere). Pass held-out pairs for honest numbers.
    """
    out = Path(out_dir)
    s = np.asarray(similarity, np.float64)
    p = calibrator.predict_proba(s, quality, time_gap_s)
    ece = expected_calibration_error(p, same)  # also validates `same`
    y = np.asarray(same).astype(bool)
    summary: dict[str, Any] = {
        "title": title,
        "pairs": {"total": len(s), "same": int(y.sum()), "different": int((~y).sum())},
        "expected_calibration_error": ece,
        "target_false_match_rate": target_false_match_rate,
        "thresholds": {
            "probability": _operating_points(p, y, target_false_match_rate),
            "similarity": _operating_points(s, y, target_false_match_rate),
        },
        "calibrator": json.loads(calibrator.to_json()),
        "files": ["report.json", "report.html", *PLOTS],
    }
    pngs = {
        "similarity_hist.png": _histogram_png(s, y, summary["thresholds"]["similarity"]),
        "roc.png": _roc_png(p, y, target_false_match_rate),
        "calibration.png": _calibration_png(p, y, ece),
    }
    for name, data in pngs.items():
        atomic_write_bytes(out / name, data)
    atomic_write_text(out / "report.json", json.dumps(summary, indent=1))
    atomic_write_text(out / "report.html", _html(summary, pngs))
    return summary


def _operating_points(scores: np.ndarray, same: np.ndarray, target: float) -> dict[str, dict[str, float] | None]:
    """Both policies' thresholds with the false-match rate and recall they give on these pairs."""
    points: dict[str, dict[str, float] | None] = {}
    for name, t in (
        ("f1_optimal", f1_optimal_threshold(scores, same)),
        ("target_false_match_rate", threshold_for_false_match_rate(scores, same, target)),
    ):
        if not np.isfinite(t):
            points[name] = None  # no threshold reaches the target: every comparison would be "new"
            continue
        accept = scores >= t
        tp, fp = int((accept & same).sum()), int((accept & ~same).sum())
        points[name] = {
            "threshold": t,
            "false_match_rate": fp / max(int((~same).sum()), 1),
            "recall": tp / max(int(same.sum()), 1),
            "precision": tp / max(tp + fp, 1),
        }
    return points


def _histogram_png(s: np.ndarray, same: np.ndarray, thresholds: dict[str, Any]) -> bytes:
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    bins = np.linspace(s.min(), s.max(), 60).tolist()
    # Densities, not counts: "different" pairs outnumber "same" by about the gallery size.
    ax.hist(s[~same], bins=bins, density=True, alpha=0.6, label=f"different ({int((~same).sum())})")
    ax.hist(s[same], bins=bins, density=True, alpha=0.6, label=f"same ({int(same.sum())})")
    for (name, point), style in zip(thresholds.items(), ("--", ":"), strict=True):
        if point is not None:
            ax.axvline(point["threshold"], color="k", linestyle=style, label=f"{name} {point['threshold']:.3f}")
    ax.set(xlabel="similarity", ylabel="density", title="Similarity: same vs different")
    ax.legend(fontsize=8)
    return _png(fig)


def _roc_png(p: np.ndarray, same: np.ndarray, target: float) -> bytes:
    roc = roc_curve(p, same)
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    # Log x-axis: the operating region of a gallery is the low false-match end.
    fpr = np.r_[0.0, roc.fpr]
    ax.step(np.maximum(fpr, 1e-6), np.r_[0.0, roc.tpr], where="post")
    ax.axvline(target, color="k", linestyle=":", label=f"target FMR {target:g}")
    ax.set(xscale="log", xlim=(1e-5, 1), ylim=(0, 1.01), xlabel="false-match rate", ylabel="true-match rate")
    ax.set_title("ROC (calibrated probability)")
    ax.legend(fontsize=8)
    return _png(fig)


def _calibration_png(p: np.ndarray, same: np.ndarray, ece: float) -> bytes:
    # Equal-count bins and axes zoomed to the data: with imbalanced pairs, equal-width bins put nearly every pair
    # in the first bin and show nothing.
    order = np.argsort(p, kind="stable")
    groups = np.array_split(order, min(15, len(p)))
    confidence = np.array([p[g].mean() for g in groups])
    observed = np.array([same[g].mean() for g in groups])
    top = max(confidence.max(), observed.max()) * 1.05
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    ax.plot([0, top], [0, top], color="grey", linestyle="--", label="perfect")
    ax.plot(confidence, observed, marker="o", label=f"{len(groups)} equal-count bins of ~{len(groups[0])} pairs")
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="predicted P(same)", ylabel="observed same rate")
    ax.set_title(f"Calibration (ECE {ece:.4f}, 15 equal-width bins)")
    ax.legend(fontsize=8)
    return _png(fig)


def _png(fig: Figure) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _html(summary: dict[str, Any], pngs: dict[str, bytes]) -> str:
    rows = []
    for space, points in summary["thresholds"].items():
        for policy, point in points.items():
            cells = (
                ["-"] * 4
                if point is None
                else [f"{point[k]:.4g}" for k in ("threshold", "false_match_rate", "recall", "precision")]
            )
            rows.append(f"<tr><td>{space}</td><td>{policy}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    images = "".join(
        f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        for name, data in pngs.items()
    )
    pairs = summary["pairs"]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(summary['title'])}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
        "img{max-width:32%;margin:4px}</style></head><body>"
        f"<h1>{html.escape(summary['title'])}</h1>"
        f"<p>{pairs['total']} labelled pairs ({pairs['same']} same, {pairs['different']} different); "
        f"expected calibration error {summary['expected_calibration_error']:.4f}; "
        f"target false-match rate {summary['target_false_match_rate']:g}.</p>"
        "<table><tr><th>space</th><th>policy</th><th>threshold</th><th>false-match rate</th><th>recall</th>"
        f"<th>precision</th></tr>{''.join(rows)}</table>{images}</body></html>"
    )
