"""What the persistence filter sees of a track: a feature vector per frame, and a summary per track.

Everything is in units that do not depend on the camera, the detector or the frame rate: positions and sizes as
shares of the image, motion in box heights per second, scores as ranks in the stream's own distribution (see
`tracks.py`). A false positive (a reflection, a shadow, a flicker on a wall) tends to be short, low-ranked, jittery
in size and badly predicted by constant velocity; a person is the opposite, but only on average: that is what is
learnt.

Per frame (`FRAME_FEATURES`): box centre x, y and bottom y, log height and log aspect; score rank and whether the
frame was observed (a coasted frame has no detection); change of centre and log height since the last frame (box
heights per second); IoU with the last box; the constant-velocity residual (where the last two boxes put this one,
in box heights); the gap since the last frame and the age (seconds); log(1 + the frame's index in the track); the
largest IoU with another reported box (a duplicate on one person) and log(1 + the boxes reported in the frame). The
summary (`summary_features`) is the length in frames and seconds, and the mean, minimum, maximum and spread of each
per-frame feature.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from trackid.geometry import iou_matrix
from trackid.multiview.persistence.tracks import TrackRecord

__all__ = ["FRAME_FEATURES", "SUMMARY_FEATURES", "frame_features", "summary_features", "summary_matrix"]

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
    "iou_last",
    "cv_residual",
    "gap_s",
    "age_s",
    "log_index",
    "overlap",
    "log_crowd",
)
SUMMARY_FEATURES = (
    "frames",
    "seconds",
    *(f"{stat}_{name}" for name in FRAME_FEATURES for stat in ("mean", "min", "max", "std")),
)


def frame_features(track: TrackRecord) -> NDArray[np.float32]:
    """(len(track), len(FRAME_FEATURES)) features of each frame, using only that frame and the ones before it."""
    width, height = track.image_size
    box = track.xyxy
    n = len(box)
    h = np.maximum(box[:, 3] - box[:, 1], 1.0)
    w = np.maximum(box[:, 2] - box[:, 0], 1.0)
    cx, cy = (box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2
    seconds = (track.frames - track.frames[0]) / track.frame_rate
    dt = np.diff(seconds, prepend=seconds[:1])
    step = np.maximum(dt, 1.0 / track.frame_rate)
    previous_h = np.concatenate([h[:1], h[:-1]])
    speed_x = np.diff(cx, prepend=cx[:1]) / previous_h / step
    speed_y = np.diff(cy, prepend=cy[:1]) / previous_h / step
    growth = np.diff(np.log(h), prepend=np.log(h[:1])) / step
    iou_last = np.ones(n)
    if n > 1:
        iou_last[1:] = np.diag(iou_matrix(box[1:], box[:-1]))
    residual = np.zeros(n)
    if n > 2:
        predicted = 2 * box[1:-1] - box[:-2]
        residual[2:] = np.abs(box[2:] - predicted).mean(axis=1) / h[1:-1]
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
        iou_last,
        residual,
        dt,
        seconds,
        np.log1p(np.arange(n)),
        track.overlap,
        np.log1p(track.crowd),
    ]
    return np.nan_to_num(np.stack(columns, axis=1), nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def summary_features(track: TrackRecord) -> NDArray[np.float32]:
    """(len(SUMMARY_FEATURES),) features of the whole track (or of the part seen so far)."""
    per_frame = frame_features(track)
    stats = np.stack([per_frame.mean(0), per_frame.min(0), per_frame.max(0), per_frame.std(0)], axis=1).ravel()
    seconds = (track.frames[-1] - track.frames[0] + 1) / track.frame_rate
    return np.concatenate([[len(track), seconds], stats]).astype(np.float32)


def summary_matrix(tracks: Sequence[TrackRecord]) -> NDArray[np.float32]:
    """`summary_features` of each track, stacked."""
    if not tracks:
        return np.zeros((0, len(SUMMARY_FEATURES)), np.float32)
    return np.stack([summary_features(t) for t in tracks])
