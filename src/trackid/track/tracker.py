"""The online tracker: detections of one frame in, the same detections with track ids out.

Per frame, in order:
1. predict every track one frame ahead (Kalman filter, compiled kernel);
2. match confident detections to confirmed tracks, then to tentative ones, on a similarity that combines IoU, the
   overlap of vertical extents and the detection score, with a penalty for detections that would reverse a
   track's recent heading (OC-SORT's observation-centric momentum); when detections carry embeddings, the cosine
   distance to each track's appearance memory is blended in and forbids pairs that look too different;
3. match low-score detections to tracks that were visible last frame (ByteTrack): occluded people often still get
   a weak detection, and dropping it breaks the track;
4. match what is left by IoU with each track's *last observed* box (OC-SORT's observation-centric recovery): after
   an occlusion the filter's prediction has drifted, the last observation has not;
5. a track found again after a gap is re-run along a straight virtual path from its last observation to the new
   one (observation-centric re-update), so its velocity is not the drift it accumulated while unobserved;
6. lifecycle: new tracks from unmatched confident detections, tentative until confirmed (a tentative track that
   misses a frame is dropped), lost while unmatched, and removed after a time given in seconds (scaled by the
   sequence's frame rate).

All per-track state lives in arrays indexed by row; there are no per-track Python objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import ClassVar, Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from trackid.track.association import GATED, AssignmentMethod, assign, gated_cost
from trackid.track.cmc import warp_boxes, warp_points
from trackid.track.imm import ImmBoxFilter, ImmNoise
from trackid.track.kalman import BoxKalman, KalmanNoise
from trackid.types import Detections

__all__ = [
    "TRACKERS",
    "OnlineTracker",
    "Tracker",
    "TrackerConfig",
    "make_tracker",
    "register_tracker",
    "track_sequence",
]

_EMPTY = np.zeros(0, np.intp)


def _rows(mask: NDArray[np.bool_]) -> NDArray[np.intp]:
    """Indices of True entries of a 1-D mask (`nonzero` without `flatnonzero`'s ravel overhead)."""
    return mask.nonzero()[0]


class Tracker(Protocol):
    """What every tracker offers: feed frames in order, get the frame's tracked detections back."""

    def update(self, detections: Detections, camera_motion: NDArray[np.float64] | None = None) -> Detections: ...

    def reset(self) -> None: ...


TRACKERS: dict[str, Callable[..., Tracker]] = {}
"""Trackers by name, for the CLI and config files."""


def register_tracker(name: str) -> Callable[[type], type]:
    def decorate(cls: type) -> type:
        TRACKERS[name] = cls
        return cls

    return decorate


def make_tracker(name: str = "trackid", frame_rate: float = 30.0, **params: object) -> Tracker:
    """Build a registered tracker; `params` override its config defaults."""
    if name not in TRACKERS:
        raise ValueError(f"unknown tracker {name!r}; choose from {sorted(TRACKERS)}")
    return TRACKERS[name](TrackerConfig(**params), frame_rate=frame_rate)


def track_sequence(
    tracker: Tracker, frames: Iterable[Detections], on_frame: Callable[[], object] | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Feed a sequence's frames in order; return (frame, track id, xyxy) of every reported box, frames from 1.

    The three aligned arrays are what `write_mot_results` takes.
    """
    frame_numbers, ids, boxes = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros((0, 4))]
    for k, dets in enumerate(frames, start=1):
        tracked = tracker.update(dets)
        frame_numbers.append(np.full(len(tracked), k, np.int64))
        ids.append(tracked.track_id)
        boxes.append(tracked.xyxy)
        if on_frame is not None:
            on_frame()
    return np.concatenate(frame_numbers), np.concatenate(ids), np.concatenate(boxes)


class TrackerConfig(BaseModel):
    """Every parameter with its trade-off. Times are in seconds so one setting serves 7 fps and 30 fps video.

    Defaults were chosen once for all sequences of MOT15 and MOT17 train (FRCNN detections), by coordinate search
    on min(HOTA margin over the best peer) across both; `bench/mot.py` shows each component's effect.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    high_score: float = Field(
        0.7,
        ge=0,
        le=1,
        description="Detections at or above this score take part in the first association. Raising it keeps "
        "doubtful boxes from steering tracks but hands more true people to the weaker second stage.",
    )
    low_score: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Detections between this and `high_score` can only continue tracks seen in the previous frame "
        "(ByteTrack). Lowering it keeps occluded people tracked, at the risk of continuing tracks onto clutter.",
    )
    new_track_score: float = Field(
        0.95,
        ge=0,
        le=1,
        description="A detection needs this score to start a track. Raising it suppresses short false tracks, "
        "but people who are only ever weakly detected are never tracked.",
    )
    iou_gate: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Minimum IoU between a track's predicted box and a detection for them to be matched. Lowering "
        "it follows fast or erratic motion and low frame rates, but lets tracks jump to neighbours in crowds.",
    )
    low_score_iou_gate: float = Field(
        0.6,
        ge=0,
        le=1,
        description="The IoU gate for low-score detections, stricter because they are less trustworthy.",
    )
    height_iou: bool = Field(
        True,
        description="Multiply IoU by the overlap of the boxes' vertical extents (Hybrid-SORT's height-modulated "
        "IoU): people at different depths differ in height and foot position, so it separates occluder from "
        "occluded better than IoU alone.",
    )
    score_weighted_iou: bool = Field(
        True,
        description="Multiply the similarity by the detection score (ByteTrack's score fusion): among overlapping "
        "candidates a track prefers the confident one. Off treats all detections above the gate alike.",
    )
    direction_weight: float = Field(
        0.3,
        ge=0,
        description="Weight of the heading-consistency penalty (turn angle / pi x weight x detection score). "
        "Raising it resists identity swaps between people crossing, but penalises genuine turns. 0 disables it.",
    )
    direction_span: int = Field(
        3,
        ge=1,
        description="Heading is measured between the latest observation and the one this many observations "
        "earlier. Longer spans average out box jitter but react later to real turns.",
    )
    confirmed_first: bool = Field(
        True,
        description="Match confirmed tracks before tentative ones, so a fresh (possibly false) track cannot take "
        "the detection of an established track that is passing by.",
    )
    min_hits: int = Field(
        2,
        ge=1,
        description="Matched detections a tentative track needs before it is reported. A count, not a time: it is "
        "evidence that the object is real. Raising it removes short false tracks but drops the first frames of "
        "every real one.",
    )
    max_lost_s: float = Field(
        2.0,
        gt=0,
        description="Seconds a confirmed track survives without a detection, waiting to be recovered. Longer "
        "bridges longer occlusions but gives a lost track more time to steal someone else's detection.",
    )
    reupdate: bool = Field(
        True,
        description="Re-run the filter along a virtual straight path when a track is recovered after a gap "
        "(OC-SORT's ORU), so the drift accumulated while unobserved does not leak into its velocity.",
    )
    recover_by_last_box: bool = Field(
        True,
        description="Match leftover detections to the last *observed* box of unmatched tracks (OC-SORT's OCR).",
    )
    appearance_weight: float = Field(
        0.9,
        ge=0,
        le=1,
        description="Share of appearance (cosine distance between a track's appearance memory and a detection's "
        "embedding) in the association cost, the rest being motion. Used only when detections carry embeddings. "
        "Raising it keeps identities through crossings, but trusts embeddings that occlusion or a generic "
        "(non re-ID) model make noisy; 0 ignores embeddings.",
    )
    appearance_gate: float = Field(
        0.3,
        ge=0,
        le=2,
        description="Cosine distance above which a track and a detection may not match, however well they overlap. "
        "Lowering it prevents more identity swaps but splits tracks whose look changes (turning, lighting).",
    )
    appearance_momentum: float = Field(
        0.9,
        ge=0,
        lt=1,
        description="Exponential moving average of a track's appearance memory: the weight kept by the old memory "
        "at each update. Higher is steadier against one bad crop, slower to follow a real change of look.",
    )
    appearance_min_quality: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Only confident detections whose crop quality reaches this update a track's appearance memory, "
        "so blurred, truncated or occluded crops cannot teach a track the wrong look.",
    )
    assignment: AssignmentMethod = Field(
        "optimal",
        description="'optimal' (Jonker-Volgenant) or 'greedy' (cheapest pair first; kept for ablations only).",
    )
    report_filtered_box: bool = Field(
        True,
        description="Report the Kalman-filtered box rather than the raw detection. Filtering removes detector "
        "jitter (mostly a localisation gain); turn it off when boxes must match detections exactly.",
    )
    motion_noise: tuple[float, float, float] = Field(
        (0.06, 0.003, 0.06),
        description="Kalman standard deviations (position, velocity, measurement) as fractions of box size per "
        "frame at 30 fps. The velocity noise is scaled by 30 / frame rate, since a walker's change of speed "
        "between frames grows with the time between them. More velocity noise follows manoeuvres but predicts "
        "worse through occlusion; more measurement noise smooths jitter but lags real motion.",
    )
    mahalanobis_gate: float = Field(
        0.0,
        ge=0,
        description="Squared Mahalanobis distance (box, 4 axes) above which a detection may not match a track; "
        "0 turns the gate off. An uncertainty-aware gate (wide for a track lost a while, tight for a steady one); "
        "CV Kalman only. It costs HOTA on MOT15 at every level tried (9.49 = chi-square 95 %: 38.87 -> 32.09; "
        "40: 37.96) and is neutral on MOT17 at 40 (bench/mot.py ablation), so it is off.",
    )
    motion_model: Literal["cv", "imm"] = Field(
        "cv",
        description="Motion filter: constant-velocity Kalman, or the IMM of `trackid.track.imm` (cruise, manoeuvre, "
        "stop; same noise). On MOT15/MOT17 train the IMM scores lower (BENCHMARKS.md, issue #6 ablation).",
    )


@register_tracker("trackid")
class OnlineTracker:
    """Online tracker (SORT family with ByteTrack's and OC-SORT's additions, appearance when given), deterministic.

    Track ids start at 1 and are never reused within a run.
    """

    _RING: ClassVar[int] = 8  # observation centres kept per track, >= any sensible `direction_span`

    def __init__(self, config: TrackerConfig | None = None, frame_rate: float = 30.0) -> None:
        if not frame_rate > 0:
            raise ValueError(f"frame_rate must be positive, got {frame_rate}")
        self.config = config or TrackerConfig()
        self.frame_rate = float(frame_rate)
        self.max_lost = max(1, round(self.config.max_lost_s * self.frame_rate))
        if self.config.direction_span >= self._RING:
            raise ValueError(f"direction_span must be below {self._RING}, got {self.config.direction_span}")
        self.reset()

    def reset(self) -> None:
        """Forget all tracks (start of a new sequence); ids restart at 1."""
        position, velocity, measurement = self.config.motion_noise
        velocity *= 30.0 / self.frame_rate
        self.kalman: BoxKalman | ImmBoxFilter
        if self.config.motion_model == "imm":
            ratio = 30.0 / self.frame_rate  # the IMM's per-frame dynamics are given at 30 frames/s
            noise = ImmNoise(position, velocity, measurement)
            self.kalman = ImmBoxFilter(replace(noise, stop_decay=noise.stop_decay**ratio, stay=noise.stay**ratio))
        else:
            self.kalman = BoxKalman(KalmanNoise(position, velocity, measurement, initial_velocity=10 * velocity))
        self.frame = 0
        self._next_id = 1
        self.track_id = np.zeros(0, np.int64)
        self.class_id = np.zeros(0, np.int64)
        self.hits = np.zeros(0, np.int64)
        self.since_update = np.zeros(0, np.int64)
        self.confirmed = np.zeros(0, bool)
        self.last_box = np.zeros((0, 4))
        self.last_score = np.zeros(0)
        self.last_quality = np.zeros(0)
        self.centres = np.zeros((0, self._RING, 2))  # latest observation last
        self.appearance = np.zeros((0, 0), np.float32)  # unit rows; all-zero where no good crop was seen yet

    def __len__(self) -> int:
        return len(self.track_id)

    def update(self, detections: Detections, camera_motion: NDArray[np.float64] | None = None) -> Detections:
        """Advance one frame. Returns one row per track reported this frame: its box (filtered, or the detection's),
        the detection's score and crop quality, the track's appearance memory as `embedding`, and `track_id`.

        `camera_motion`: the 2x3 map from the previous frame's pixels to this frame's (`cmc.CameraMotion`); the
        tracks are moved by it before they are predicted, so a panning camera does not read as everyone walking.
        """
        cfg = self.config
        self.frame += 1
        if camera_motion is not None and len(self):
            self.kalman.warp(camera_motion)
            self.last_box = warp_boxes(self.last_box, camera_motion)
            self.centres = warp_points(self.centres, camera_motion)
        self.kalman.predict()
        self.since_update += 1

        boxes, scores = detections.xyxy, detections.score
        high_free = scores >= cfg.high_score
        low = _rows((scores >= cfg.low_score) & ~high_free)
        track_free = np.ones(len(self), bool)
        predicted = self.kalman.boxes()

        # 1. confident detections against every track's prediction, with heading consistency
        if cfg.confirmed_first:
            t1a, d1a = self._match(
                _rows(self.confirmed), _rows(high_free), predicted, detections, cfg.iou_gate, cfg.direction_weight
            )
            high_free[d1a] = False
            t1b, d1b = self._match(
                _rows(~self.confirmed), _rows(high_free), predicted, detections, cfg.iou_gate, cfg.direction_weight
            )
            t1, d1 = np.concatenate([t1a, t1b]), np.concatenate([d1a, d1b])
        else:
            t1, d1 = self._match(
                np.arange(len(self)), _rows(high_free), predicted, detections, cfg.iou_gate, cfg.direction_weight
            )
        track_free[t1] = False
        high_free[d1] = False

        # 2. weak detections only continue tracks that were visible in the previous frame
        recent = _rows(track_free & (self.since_update == 1) & self.confirmed)
        t2, d2 = self._match(recent, low, predicted, detections, cfg.low_score_iou_gate, 0.0, use_appearance=False)
        track_free[t2] = False

        # 3. leftover confident detections against the last observed box of leftover tracks
        t3 = d3 = _EMPTY
        if cfg.recover_by_last_box:
            free_high = _rows(high_free)
            t3, d3 = self._match(_rows(track_free), free_high, self.last_box, detections, cfg.iou_gate, 0.0)
            high_free[d3] = False

        rows = np.concatenate([t1, t2, t3])
        dets = np.concatenate([d1, d2, d3])
        self._apply_observations(rows, boxes[dets], scores[dets])
        self.last_quality[rows] = detections.quality[dets]
        if self._uses_appearance(detections):
            confident = np.concatenate([t1, t3]), np.concatenate([d1, d3])
            self._remember_appearance(*confident, detections)
        self._retire_and_start(detections, _rows(high_free))

        reported = (self.since_update == 0) & (self.confirmed | (self.frame <= cfg.min_hits))
        out_rows = _rows(reported)
        return Detections(
            self.kalman.boxes(out_rows) if cfg.report_filtered_box else self.last_box[out_rows],
            self.last_score[out_rows],
            self.class_id[out_rows],
            self.appearance[out_rows],
            self.last_quality[out_rows],
            self.track_id[out_rows],
        )

    def _match(
        self,
        track_rows: NDArray[np.intp],
        det_rows: NDArray[np.intp],
        track_boxes: NDArray[np.float64],
        detections: Detections,
        iou_gate: float,
        direction_weight: float,
        use_appearance: bool = True,
    ) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """Optimal assignment of `det_rows` to `track_rows` on the motion cost, fused with appearance when
        detections carry embeddings; gated by IoU, class and appearance distance."""
        if len(track_rows) == 0 or len(det_rows) == 0:
            return _EMPTY, _EMPTY
        if direction_weight > 0:
            last = self.centres[track_rows, -1]
            heading = last - self.centres[track_rows, -1 - self.config.direction_span]
            heading /= np.sqrt((heading**2).sum(axis=1, keepdims=True)) + 1e-6
        else:
            last = heading = np.zeros((len(track_rows), 2))
        cost = gated_cost(
            track_boxes[track_rows],
            self.class_id[track_rows],
            heading,
            last,
            detections.xyxy[det_rows],
            detections.class_id[det_rows],
            detections.score[det_rows],
            iou_gate,
            direction_weight,
            self.config.height_iou,
            self.config.score_weighted_iou,
        )
        if self.config.mahalanobis_gate > 0 and isinstance(self.kalman, BoxKalman):
            cost = self._gate_by_uncertainty(cost, track_rows, detections.xyxy[det_rows])
        if use_appearance and self._uses_appearance(detections):
            cost = self._fuse_appearance(cost, track_rows, detections.embedding[det_rows])
        ti, di = assign(cost, method=self.config.assignment)
        return track_rows[ti], det_rows[di]

    def _gate_by_uncertainty(
        self, cost: NDArray[np.float64], track_rows: NDArray[np.intp], xyxy: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Forbid pairs whose detection lies outside the track's predicted uncertainty."""
        assert isinstance(self.kalman, BoxKalman)
        d2 = self.kalman.mahalanobis(track_rows, xyxy)
        return np.where(d2 > self.config.mahalanobis_gate, GATED, cost)

    def _uses_appearance(self, detections: Detections) -> bool:
        return self.config.appearance_weight > 0 and detections.embedding.shape[1] > 0

    def _fuse_appearance(
        self, cost: NDArray[np.float64], track_rows: NDArray[np.intp], embedding: NDArray[np.float32]
    ) -> NDArray[np.float64]:
        """Blend cosine distance into the allowed pairs' cost and forbid pairs that look too different.

        Pairs where the track has no appearance memory yet, or the detection no embedding, keep their motion cost.
        """
        memory = self.appearance[track_rows]
        if memory.shape[1] != embedding.shape[1]:
            raise ValueError(
                f"detections carry {embedding.shape[1]}-d embeddings but tracks remember {memory.shape[1]}-d ones; "
                "one tracker must be fed by one embedder"
            )
        distance = 1.0 - memory @ embedding.T
        known = (memory != 0).any(axis=1)[:, None] & (embedding != 0).any(axis=1)[None, :] & (cost < GATED)
        w = self.config.appearance_weight
        fused = np.where(known, (1 - w) * cost + w * distance, cost)
        return np.where(known & (distance > self.config.appearance_gate), GATED, fused)

    def _remember_appearance(self, rows: NDArray[np.intp], dets: NDArray[np.intp], detections: Detections) -> None:
        """EMA of unit embeddings from good crops of confident matches; a first good crop is taken as is."""
        good = detections.quality[dets] >= self.config.appearance_min_quality
        rows, embedding = rows[good], detections.embedding[dets[good]]
        if len(rows) == 0:
            return
        old = self.appearance[rows]
        fresh = ~(old != 0).any(axis=1, keepdims=True)
        momentum = np.where(fresh, 0.0, self.config.appearance_momentum).astype(np.float32)
        blended = momentum * old + (1 - momentum) * embedding
        self.appearance[rows] = blended / np.maximum(np.linalg.norm(blended, axis=1, keepdims=True), 1e-12)

    def _apply_observations(
        self, rows: NDArray[np.intp], boxes: NDArray[np.float64], scores: NDArray[np.float64]
    ) -> None:
        """Kalman-correct the matched tracks and record their observations."""
        if len(rows) == 0:
            return
        recovered = self.since_update[rows] > 1
        if self.config.reupdate and recovered.any():
            gap = self.since_update[rows[recovered]]
            self._reupdate(rows[recovered], self.last_box[rows[recovered]], boxes[recovered], gap)
            self.kalman.update(rows[~recovered], boxes[~recovered])
        else:
            self.kalman.update(rows, boxes)
        self.last_box[rows] = boxes
        self.last_score[rows] = scores
        self.since_update[rows] = 0
        self.hits[rows] += 1
        self.confirmed[rows] |= self.hits[rows] >= self.config.min_hits
        self.centres[rows, :-1] = self.centres[rows, 1:]
        self.centres[rows, -1] = 0.5 * (boxes[:, :2] + boxes[:, 2:])

    def _reupdate(
        self, rows: NDArray[np.intp], last: NDArray[np.float64], new: NDArray[np.float64], gap: NDArray[np.int64]
    ) -> None:
        """Rewind to the state at the first missed frame and filter along the straight path last -> new."""
        self.kalman.rewind(rows)
        for step in range(1, int(gap.max())):
            active = step < gap
            fraction = (step / gap[active])[:, None]
            virtual = last[active] + fraction * (new[active] - last[active])
            self.kalman.update(rows[active], virtual)
            self.kalman.predict(rows[active])
        self.kalman.update(rows, new)

    def _retire_and_start(self, detections: Detections, free_high: NDArray[np.intp]) -> None:
        cfg = self.config
        just_lost = _rows(self.since_update == 1)
        if len(just_lost):
            self.kalman.freeze(just_lost)
        alive = np.where(self.confirmed, self.since_update <= self.max_lost, self.since_update == 0)
        if not alive.all():
            self._keep(alive)
        new = free_high[detections.score[free_high] >= cfg.new_track_score]
        if len(new):
            self._start(detections[new])

    def _keep(self, mask: NDArray[np.bool_]) -> None:
        self.kalman.keep(mask)
        self.track_id, self.class_id = self.track_id[mask], self.class_id[mask]
        self.hits, self.since_update, self.confirmed = self.hits[mask], self.since_update[mask], self.confirmed[mask]
        self.last_box, self.last_score, self.centres = self.last_box[mask], self.last_score[mask], self.centres[mask]
        self.appearance, self.last_quality = self.appearance[mask], self.last_quality[mask]

    def _start(self, new: Detections) -> None:
        boxes, scores, classes, n = new.xyxy, new.score, new.class_id, len(new)
        self.kalman.initiate(boxes)
        self.track_id = np.concatenate([self.track_id, np.arange(self._next_id, self._next_id + n)])
        self._next_id += n
        self.class_id = np.concatenate([self.class_id, classes])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        self.since_update = np.concatenate([self.since_update, np.zeros(n, np.int64)])
        self.confirmed = np.concatenate([self.confirmed, np.full(n, self.config.min_hits <= 1)])
        self.last_box = np.concatenate([self.last_box, boxes])
        self.last_score = np.concatenate([self.last_score, scores])
        self.last_quality = np.concatenate([self.last_quality, new.quality])
        centres = 0.5 * (boxes[:, :2] + boxes[:, 2:])
        self.centres = np.concatenate([self.centres, np.repeat(centres[:, None, :], self._RING, axis=1)])
        self._start_appearance(new)

    def _start_appearance(self, new: Detections) -> None:
        """New tracks remember their first embedding if its crop is good enough; width follows the embedder."""
        embedding = new.embedding * (new.quality >= self.config.appearance_min_quality)[:, None]
        if self.appearance.shape[1] != embedding.shape[1]:
            if len(self.appearance) and self.appearance.shape[1]:
                raise ValueError(
                    f"detections carry {embedding.shape[1]}-d embeddings but tracks remember "
                    f"{self.appearance.shape[1]}-d ones; one tracker must be fed by one embedder"
                )
            self.appearance = np.zeros((len(self.appearance), embedding.shape[1]), np.float32)
        self.appearance = np.concatenate([self.appearance, embedding.astype(np.float32)])
