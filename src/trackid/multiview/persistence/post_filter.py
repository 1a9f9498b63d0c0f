"""The persistence filter applied to a camera's detections before the site is tracked.

The filter judges tracks, the site tracker takes detections: so the view is first tracked on its own (trackid's
tracker, at the site's frame rate), each track is judged, and the detections that the transient tracks reported
(IoU >= `SAME_BOX` with a box of such a track in that frame) are removed. Detections no track reported are left as
they are: the filter has nothing to say about them, and the site tracker's own view count still applies.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from trackid.geometry import iou_matrix, xywh_to_xyxy
from trackid.multiview.persistence.models import PersistenceFilter
from trackid.multiview.persistence.tracks import TrackRecord, collect_tracks
from trackid.multiview.site_tracking import SiteView
from trackid.sources.motchallenge import MotRows, detections_by_frame
from trackid.track import make_tracker

__all__ = ["SAME_BOX", "PostFiltered", "drop_transient"]

SAME_BOX = 0.5


@dataclass(frozen=True)
class PostFiltered:
    """The view without the transient tracks' detections, how many were dropped, and the tracks judged."""

    view: SiteView
    dropped: int
    tracks: list[TrackRecord]
    verdicts: NDArray[np.int64]  # 1 persistent, 0 transient, per track


def drop_transient(view: SiteView, model: PersistenceFilter, fps: float) -> PostFiltered:
    """`view` without the detections of its tracks that `model` calls transient. Only detections at or above the
    view's `min_score` are tracked and kept, as the site tracker would."""
    d = view.detections
    kept = d.score >= view.min_score
    rows = MotRows(d.frame[kept], d.track_id[kept], d.xywh[kept], d.score[kept])
    frames = detections_by_frame(rows, int(rows.frame.max(initial=0)))
    size = view.camera.image_size or _extent(rows)
    tracks, outputs = collect_tracks(view.camera.name, frames, make_tracker("trackid", frame_rate=fps), size, fps)
    verdicts = model.predict(tracks) if tracks else np.zeros(0, np.int64)
    transient = np.array([t.track_id for t, v in zip(tracks, verdicts, strict=True) if v == 0], np.int64)
    drop = np.zeros(len(rows), bool)
    boxes = xywh_to_xyxy(rows.xywh)
    for number, tracked in outputs:
        bad = np.isin(tracked.track_id, transient)
        at = np.flatnonzero(rows.frame == number)
        if bad.any() and len(at):
            drop[at[iou_matrix(boxes[at], tracked.xyxy[bad]).max(axis=1) >= SAME_BOX]] = True
    filtered = MotRows(rows.frame[~drop], rows.track_id[~drop], rows.xywh[~drop], rows.score[~drop])
    return PostFiltered(replace(view, detections=filtered), int(drop.sum()), tracks, verdicts)


def _extent(rows: MotRows) -> tuple[int, int]:
    """An image size that holds every box, when the camera's is not given."""
    if not len(rows):
        return (1, 1)
    far = rows.xywh[:, :2] + rows.xywh[:, 2:]
    return (max(1, int(np.ceil(far[:, 0].max()))), max(1, int(np.ceil(far[:, 1].max()))))
