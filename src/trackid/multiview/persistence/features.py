"""What the persistence filter sees of a track: a feature vector per frame, and a summary per track.

Everything is in units that do not depend on the camera, the detector or the frame rate: positions and sizes as shares
of the image, motion in box heights per second, scores as ranks in the stream's own distribution (see `tracks.py`). A
false positive (a reflection, a shadow, a flicker on a wall) tends to be short, low-ranked, jittery in size and badly
predicted by constant velocity; a person is the opposite, but only on average: that is what is learnt.

Per frame (`FRAME_FEATURES`): box centre x, y and bottom y, log height and log aspect; score rank and whether the frame
was observed (a coasted frame has no detection); motion on a fixed time base of `LAG_S` (against the box that long
before, whatever the frame rate): change of centre and log height (box heights per second), IoU, and the constant-
velocity residual (where the two boxes before put this one, in box heights); the time not seen before this frame and the
age (seconds, and log(1 + age)); the largest IoU with another reported box (a duplicate on one person) and log(1 + the
boxes reported in the frame). With `appearance` (`APPEARANCE_FEATURES`), where frames were seen (the detections carry
embeddings), the appearance consistency too: the cosine distance of the frame's vector from the mean of the track's
vectors before it (a person keeps one look; a flicker or a box that slides between people does not), and whether the
frame had a vector at all, so that "no frames" is not read as "consistent". The filters leave them out by default: on
PETS09-S2L1's HOG and SSDLite false positives (real video, MobileNetV2 vectors) they did not raise held-out accuracy, a
static false positive on the background keeping its look as steadily as a person (bench/persistence.py
--appearance). The summary (`summary_features`) is the length in seconds and the mean,
minimum, maximum and spread of each per-frame feature; nothing counts frames, which would mean another thing at another
frame rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from trackid.multiview.persistence.tracks import TrackRecord

__all__ = [
    "APPEARANCE_FEATURES",
    "FRAME_FEATURES",
    "LAG_S",
    "SUMMARY_FEATURES",
    "appearance_consistency",
    "frame_feature_names",
    "frame_features",
    "summary_feature_names",
    "summary_features",
    "summary_matrix",
]

LAG_S = 0.5
"""The time base of the motion features (seconds): WILDTRACK's 2 fps is one frame, MOT17's 30 fps fifteen."""

FRAME_FEATURES = (
    "centre_x",
    "centre_y",
    "bottom_y",
    "log_height",
    "log_aspect",
    "score_rank",
    "observed",
    "speed_x",
    "speed_y",
    "growth",
    "iou_lag",
    "cv_residual",
    "missed_s",
    "age_s",
    "log_age",
    "overlap",
    "log_crowd",
)
APPEARANCE_FEATURES = ("appearance_change", "appearance_seen")


def frame_feature_names(appearance: bool = False) -> tuple[str, ...]:
    """The columns of `frame_features(..., appearance)`."""
    return FRAME_FEATURES + APPEARANCE_FEATURES if appearance else FRAME_FEATURES


def summary_feature_names(appearance: bool = False) -> tuple[str, ...]:
    """The entries of `summary_features(..., appearance)`."""
    stats = ("mean", "min", "max", "std")
    return ("seconds", *(f"{stat}_{name}" for name in frame_feature_names(appearance) for stat in stats))


SUMMARY_FEATURES = summary_feature_names()


def frame_features(track: TrackRecord, appearance: bool = False) -> NDArray[np.float32]:
    """(len(track), len(frame_feature_names(appearance))) features of each frame, using only that frame and the ones
    before it."""
    width, height = track.image_size
    box = track.xyxy
    h = np.maximum(box[:, 3] - box[:, 1], 1.0)
    w = np.maximum(box[:, 2] - box[:, 0], 1.0)
    cx, cy = (box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2
    period = 1.0 / track.frame_rate
    seconds = (track.frames - track.frames[0]) * period
    dt = np.diff(seconds, prepend=seconds[:1])
    # motion on a fixed time base: against the box LAG_S earlier, not the previous frame, so that 2 and 30 fps give
    # the same numbers for the same walk (frame to frame, boxes barely move at 30 fps and jump at 2)
    lag = np.maximum(np.searchsorted(seconds, seconds - LAG_S + 1e-9, side="right") - 1, 0)
    span = np.maximum(seconds - seconds[lag], period)
    speed_x = (cx - cx[lag]) / h[lag] / span
    speed_y = (cy - cy[lag]) / h[lag] / span
    growth = (np.log(h) - np.log(h[lag])) / span
    iou_lag = _paired_iou(box, box[lag])
    before = lag[lag]
    earlier = np.maximum(seconds[lag] - seconds[before], period)
    predicted = box[lag] + (box[lag] - box[before]) * (span / earlier)[:, None]
    residual = np.where(before < lag, np.abs(box - predicted).mean(axis=1) / h[lag], 0.0)
    columns = [
        cx / width,
        cy / height,
        box[:, 3] / height,
        np.log(h / height),
        np.log(w / h),
        track.score_rank,
        (track.score > 0).astype(np.float64),
        speed_x,
        speed_y,
        growth,
        iou_lag,
        residual,
        np.maximum(dt - 1.5 * period, 0.0),
        seconds,
        np.log1p(seconds),
        track.overlap,
        np.log1p(track.crowd),
        *(appearance_consistency(track) if appearance else ()),
    ]
    return np.nan_to_num(np.stack(columns, axis=1), nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def appearance_consistency(track: TrackRecord) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(cosine distance of each frame's vector from the mean of the track's earlier vectors, 1 where the frame had
    a vector): 0 and 0 where it had none, and a distance of 0 on a track's first vector (nothing to compare with)."""
    n = len(track)
    if track.embedding.ndim != 2 or track.embedding.shape[1] == 0:
        return np.zeros(n), np.zeros(n)
    vectors = track.embedding.astype(np.float64)
    norm = np.linalg.norm(vectors, axis=1)
    seen = norm > 1e-9
    unit = np.where(seen[:, None], vectors / np.maximum(norm, 1e-12)[:, None], 0.0)
    before = np.cumsum(unit, axis=0) - unit  # the sum of the earlier vectors
    length = np.linalg.norm(before, axis=1)
    compared = seen & (length > 1e-9)
    cosine = np.einsum("ij,ij->i", unit, before) / np.maximum(length, 1e-12)
    return np.where(compared, 1.0 - cosine, 0.0), seen.astype(np.float64)


def summary_features(track: TrackRecord, appearance: bool = False) -> NDArray[np.float32]:
    """(len(summary_feature_names(appearance)),) features of the whole track (or of the part seen so far)."""
    per_frame = frame_features(track, appearance)
    stats = np.stack([per_frame.mean(0), per_frame.min(0), per_frame.max(0), per_frame.std(0)], axis=1).ravel()
    seconds = (track.frames[-1] - track.frames[0] + 1) / track.frame_rate
    return np.concatenate([[seconds], stats]).astype(np.float32)


def _paired_iou(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """IoU of each box of `a` with the box in the same row of `b`."""
    width = np.maximum(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0.0)
    height = np.maximum(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0.0)
    inter = width * height
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(union, 1e-12)


def summary_matrix(tracks: Sequence[TrackRecord], appearance: bool = False) -> NDArray[np.float32]:
    """`summary_features` of each track, stacked."""
    if not tracks:
        return np.zeros((0, len(summary_feature_names(appearance))), np.float32)
    return np.stack([summary_features(t, appearance) for t in tracks])
