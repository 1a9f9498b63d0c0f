"""Plain sentences for the persistence filter's decisions, from the weights and the features alone (no service).

Each decision says what was decided and how sure, the track's traits that matter most on average (its length, where its
scores rank in the stream, how steady its box is, how much it overlaps another track), and the frames the decision
rested on (the filter's `frame_importance`: attention rollout for the transformer, deletion for the trees) with what was
unusual there: the features of those frames furthest from the track's own typical frame. `failure_summary` groups the
wrong decisions of a labelled set and says how the traits of each group differ from the right ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from trackid.multiview.persistence.features import frame_feature_names, frame_features
from trackid.multiview.persistence.models import PersistenceFilter
from trackid.multiview.persistence.tracks import TrackRecord

__all__ = ["Explanation", "explain", "failure_summary", "traits"]

_SAID = {
    "score_rank": "score rank",
    "iou_lag": "IoU with its box 0.5 s before",
    "cv_residual": "constant-velocity miss (box heights)",
    "growth": "height change (per s)",
    "overlap": "overlap with another track",
    "observed": "detected",
    "missed_s": "time unseen before (s)",
    "log_height": "log height",
    "speed_x": "sideways speed (heights/s)",
    "speed_y": "vertical speed (heights/s)",
    "appearance_change": "change of look from the track's earlier frames (cosine)",
}


@dataclass(frozen=True)
class Explanation:
    track_id: int
    sequence: str
    persistent: float  # the model's probability
    frames: NDArray[np.int64]  # the frames the model saw
    importance: NDArray[np.float64]  # per seen frame, summing to 1
    sentence: str


def traits(track: TrackRecord) -> dict[str, float]:
    """The track-level figures a sentence quotes."""
    per_frame = frame_features(track)
    column = {name: per_frame[:, i] for i, name in enumerate(frame_feature_names())}
    return {
        "frames": float(len(track)),
        "seconds": float((track.frames[-1] - track.frames[0] + 1) / track.frame_rate),
        "score_rank": float(np.median(column["score_rank"])),
        "iou_lag": float(np.median(column["iou_lag"][1:])) if len(track) > 1 else 1.0,
        "overlap": float(column["overlap"].max()),
    }


def explain(model: PersistenceFilter, track: TrackRecord, top: int = 3) -> Explanation:
    """One decision, in words (see the module)."""
    p = float(model.predict_proba([track])[0, 1])
    frames, importance = model.frame_importance(track)
    t = traits(track)
    verdict = "persistent" if p >= 0.5 else "transient"
    sentence = (
        f"Track {track.track_id} of {track.sequence}: {verdict}, p(persistent) = {p:.2f}. "
        f"It lasted {t['frames']:.0f} frames ({t['seconds']:.1f} s); its scores rank {t['score_rank']:.2f} in the "
        f"stream (median); its box overlaps where it was 0.5 s before by IoU {t['iou_lag']:.2f} (median) and "
        f"another track by at most {t['overlap']:.2f}."
    )
    appearance = bool(getattr(model, "appearance", False))
    names = frame_feature_names(appearance)
    per_frame = frame_features(track, appearance)
    typical = np.median(per_frame, axis=0)
    spread = np.maximum(np.percentile(per_frame, 75, axis=0) - np.percentile(per_frame, 25, axis=0), 1e-3)
    seen = {int(f): i for i, f in enumerate(track.frames.tolist())}
    notes = []
    for k in np.argsort(-importance)[:top]:
        row = per_frame[seen[int(frames[k])]]
        z = np.abs(row - typical) / spread
        said = [i for i in np.argsort(-z) if names[i] in _SAID][:2]
        unusual = ", ".join(f"{_SAID[names[i]]} {row[i]:.2f}" for i in said if z[i] > 1)
        notes.append(f"frame {int(frames[k])} ({importance[k]:.0%}" + (f": {unusual})" if unusual else ")"))
    sentence += " The decision rested most on " + "; ".join(notes) + "."
    return Explanation(track.track_id, track.sequence, p, frames, importance, sentence)


def failure_summary(tracks: Sequence[TrackRecord], labels: Sequence[int], verdicts: Sequence[int]) -> str:
    """The wrong decisions of a labelled set, grouped, with the traits that set each group apart."""
    y, v = np.asarray(labels), np.asarray(verdicts)
    table = [traits(t) for t in tracks]
    lines = []
    for name, wrong, right in (
        ("transient tracks kept", (y == 0) & (v == 1), (y == 0) & (v == 0)),
        ("persistent tracks dropped", (y == 1) & (v == 0), (y == 1) & (v == 1)),
    ):
        if not wrong.any():
            lines.append(f"No {name}.")
            continue
        parts = []
        for key in ("seconds", "score_rank", "iou_lag", "overlap"):
            a = np.median([table[i][key] for i in np.flatnonzero(wrong)])
            b = np.median([table[i][key] for i in np.flatnonzero(right)]) if right.any() else float("nan")
            parts.append(f"{key.replace('_', ' ')} {a:.2f} (right ones {b:.2f})")
        lines.append(f"{int(wrong.sum())} {name}: median " + ", ".join(parts) + ".")
    return " ".join(lines)
