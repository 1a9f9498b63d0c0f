"""A tracker's output as whole tracks, and each track labelled persistent or transient by the ground truth.

The persistence filter learns from real detectors' mistakes, so its training data is what the tracker reports on
real sequences: `collect_tracks` runs a tracker over a sequence's detections and keeps, per track, its frames,
boxes, raw scores and the scores' ranks in the stream (`ScoreScale`: a rank means the same for FRCNN's 0.5-1.0
probabilities and ACF's unbounded margins), and, where the detections carry appearance embeddings (frames were
seen), each frame's detection vector, from which the features measure how consistent the track's look is.

Labels (`label_tracks`): per frame, the tracker's boxes are matched one-to-one to the ground truth's by the
Hungarian algorithm on IoU, keeping pairs at IoU >= 0.5 (the similarity and threshold TrackEval's CLEAR metrics
use; TrackEval also favours last frame's pairs, which only changes ties). A track is **persistent** when at least
`PERSISTENT_SHARE` of its frames matched a person, **transient** otherwise, and **ignored** (label -1) when most of
its frames matched a distractor (MOT17's static people, reflections, people on vehicles: TrackEval removes those
too), since it is neither a person to keep nor a false positive to drop.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from trackid.geometry import iou_matrix
from trackid.track import Tracker
from trackid.track.score_scale import ScoreScale
from trackid.types import Detections

__all__ = [
    "MATCH_IOU",
    "PERSISTENT_SHARE",
    "TrackCollector",
    "TrackRecord",
    "collect_tracks",
    "label_tracks",
    "match_shares",
]

MATCH_IOU = 0.5
PERSISTENT_SHARE = 0.5


@dataclass(frozen=True)
class TrackRecord:
    """One track of a sequence, frame by frame (frames ascending, 1-based)."""

    sequence: str
    track_id: int
    frames: NDArray[np.int64]
    xyxy: NDArray[np.float64]
    score: NDArray[np.float64]  # as the tracker reported it (0 where it coasted without a detection)
    score_rank: NDArray[np.float64]  # the score's rank among the stream's detection scores so far, in [0, 1]
    overlap: NDArray[np.float64]  # the largest IoU with another box the tracker reported in that frame
    crowd: NDArray[np.float64]  # how many boxes the tracker reported in that frame
    image_size: tuple[int, int]  # width, height
    frame_rate: float
    # (len, D) the detection's appearance vector per frame (zeros where it coasted); D == 0 where no frames were seen
    embedding: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def __len__(self) -> int:
        return len(self.frames)

    def prefix(self, n: int) -> TrackRecord:
        """The track's first `n` frames: what an online filter has seen of it by then."""
        return self.select(slice(None, n))

    def select(self, rows: slice | NDArray[np.int64]) -> TrackRecord:
        """The track through the frames `rows` picks (in order), every per-frame field alike."""
        return replace(
            self,
            frames=self.frames[rows],
            xyxy=self.xyxy[rows],
            score=self.score[rows],
            score_rank=self.score_rank[rows],
            overlap=self.overlap[rows],
            crowd=self.crowd[rows],
            embedding=self.embedding[rows] if self.embedding.shape[1] else self.embedding,
        )


class TrackCollector:
    """A tracker's output gathered frame by frame into `TrackRecord`s, for a loop that runs the tracker itself (a
    run's sink) or for `collect_tracks`. `add` needs the frame's detections too: score ranks are ranks among every
    detection of the stream so far, not only the tracked ones."""

    def __init__(self, sequence: str, image_size: tuple[int, int], frame_rate: float) -> None:
        self.sequence = sequence
        self.image_size = image_size
        self.frame_rate = frame_rate
        self._scale = ScoreScale()
        self._rows: dict[int, list[tuple[int, NDArray[np.float64], float, float, float, int, NDArray[np.float32]]]]
        self._rows = defaultdict(list)

    def add(self, number: int, detections: Detections, tracked: Detections) -> None:
        """Frame `number`'s detections and what the tracker reported for it."""
        self._scale.update(detections.score)
        ranks = np.where(tracked.score > 0, self._scale.transform(tracked.score), 0.0)
        iou = iou_matrix(tracked.xyxy, tracked.xyxy)
        np.fill_diagonal(iou, 0.0)
        overlap = iou.max(axis=1, initial=0.0)
        for k, track_id in enumerate(tracked.track_id.tolist()):
            row = (
                number,
                tracked.xyxy[k],
                float(tracked.score[k]),
                float(ranks[k]),
                float(overlap[k]),
                len(tracked),
                tracked.embedding[k],
            )
            self._rows[int(track_id)].append(row)

    def tracks(self) -> list[TrackRecord]:
        """Every track so far, by id."""
        return [
            TrackRecord(
                self.sequence,
                track_id,
                np.array([r[0] for r in track], np.int64),
                np.array([r[1] for r in track], np.float64).reshape(-1, 4),
                np.array([r[2] for r in track], np.float64),
                np.array([r[3] for r in track], np.float64),
                np.array([r[4] for r in track], np.float64),
                np.array([r[5] for r in track], np.float64),
                self.image_size,
                self.frame_rate,
                _stacked_embeddings([r[6] for r in track]),
            )
            for track_id, track in sorted(self._rows.items())
        ]


def collect_tracks(
    sequence: str,
    frames: Sequence[Detections],
    tracker: Tracker,
    image_size: tuple[int, int],
    frame_rate: float,
) -> tuple[list[TrackRecord], list[tuple[int, Detections]]]:
    """Run `tracker` over `frames` (index k is frame k + 1): (its tracks, its output per frame). Detections with
    embeddings are tracked with them, as a video run would, and each track keeps its detections' vectors."""
    collector = TrackCollector(sequence, image_size, frame_rate)
    outputs = []
    for index, detections in enumerate(frames):
        tracked = tracker.update(detections)
        collector.add(index + 1, detections, tracked)
        outputs.append((index + 1, tracked))
    return collector.tracks(), outputs


def _stacked_embeddings(vectors: list[NDArray[np.float32]]) -> NDArray[np.float32]:
    """A track's vectors as (len, D), or (len, 0) when the detections had none (or changed width midway)."""
    widths = {len(v) for v in vectors}
    if len(widths) != 1 or 0 in widths:
        return np.zeros((len(vectors), 0), np.float32)
    return np.stack(vectors).astype(np.float32)


def label_tracks(
    tracks: Iterable[TrackRecord],
    people: dict[int, NDArray[np.float64]],
    distractors: dict[int, NDArray[np.float64]] | None = None,
) -> NDArray[np.int64]:
    """1 persistent, 0 transient, -1 ignored, per track (see the module); `people` / `distractors`: frame ->
    (n, 4) ground-truth boxes (xyxy)."""
    person, distractor = match_shares(tracks, people, distractors)
    labels = (person >= PERSISTENT_SHARE).astype(np.int64)
    labels[(labels == 0) & (distractor >= PERSISTENT_SHARE)] = -1
    return labels


def match_shares(
    tracks: Iterable[TrackRecord],
    people: dict[int, NDArray[np.float64]],
    distractors: dict[int, NDArray[np.float64]] | None = None,
    min_iou: float = MATCH_IOU,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per track, the share of its frames matched one-to-one (Hungarian on IoU, pairs at >= `min_iou`) to a person,
    and to a distractor: what `label_tracks` thresholds, and how close to the threshold each label is."""
    tracks = list(tracks)
    by_frame: dict[int, list[tuple[int, NDArray[np.float64]]]] = defaultdict(list)
    for t, track in enumerate(tracks):
        for frame, box in zip(track.frames.tolist(), track.xyxy, strict=True):
            by_frame[frame].append((t, box))
    person = np.zeros(len(tracks))
    distractor = np.zeros(len(tracks))
    empty = np.zeros((0, 4))
    for frame, entries in by_frame.items():
        owners = np.array([t for t, _ in entries])
        boxes = np.stack([b for _, b in entries])
        for truth, tally in ((people.get(frame, empty), person), ((distractors or {}).get(frame, empty), distractor)):
            if len(truth) == 0:
                continue
            iou = iou_matrix(boxes, truth)
            rows, cols = linear_sum_assignment(-iou)
            matched = rows[iou[rows, cols] >= min_iou]
            np.add.at(tally, owners[matched], 1)
    length = np.maximum([len(t) for t in tracks], 1).astype(np.float64)
    return person / length, distractor / length
