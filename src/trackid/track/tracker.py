"""The online tracker: detections of one frame in, the same detections with track ids out.

Per frame, in order:
1. predict every track one frame ahead (Kalman filter, compiled kernel);
2. match confident detections to confirmed tracks, then to tentative ones, on a similarity that combines IoU, the
   overlap of vertical extents and the detection score, with a penalty for detections that would reverse a
   track's recent heading (OC-SORT's observation-centric momentum); when detections carry embeddings, the cosine
   distance to each track's appearance memory is blended in and forbids pairs that look too different. Between the
   two, the camera's motion is read off the confirmed tracks just matched (`cmc.shift_from_tracks`): when they all
   moved the same way, the tracks left unmatched are moved with them and matched again;
3. match low-score detections to tracks that were visible last frame (ByteTrack): occluded people often still get
   a weak detection, and dropping it breaks the track;
4. match what is left by IoU with each track's *last observed* box (OC-SORT's observation-centric recovery): after
   an occlusion the filter's prediction has drifted, the last observation has not;
5. a track found again after a gap is re-run along a straight virtual path from its last observation to the new
   one (observation-centric re-update), so its velocity is not the drift it accumulated while unobserved;
6. lifecycle: new tracks from unmatched confident detections, tentative until confirmed (a tentative track that
   misses a frame is dropped), lost while unmatched, and removed after a time given in seconds (scaled by the
   sequence's frame rate);
7. output: tracks matched this frame, and lost tracks hidden behind a nearer tracked person for a short while
   (their predicted box: the person is still there, only not detected).

The filters' process noise follows the scene: the innovations of steadily tracked people, measured against the
predicted uncertainty, set one scale for all tracks (`adaptive_noise`), so gates widen for a shaking camera or a low
frame rate and tighten for a distant, slow crowd.

All per-track state lives in arrays indexed by row; there are no per-track Python objects. The parameters are in
`tracker_config.py`; the compiled per-frame kernels over those rows (bookkeeping of observations, headings, the
occlusion test) are in `track_state.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

from trackid.geometry import iou_matrix
from trackid.registry import Registry
from trackid.track.association import GATED, assign, gated_cost
from trackid.track.cmc import shift_from_tracks, warp_boxes, warp_points
from trackid.track.health import StreamHealth
from trackid.track.imm import ImmBoxFilter, ImmNoise
from trackid.track.kalman import BoxKalman, KalmanNoise
from trackid.track.score_scale import ScoreCalibration, ScoreScale
from trackid.track.track_state import (
    headings,
    hidden_rows,
    median,
    record_observations,
    resize_unobserved,
    steady_rows,
    translate_boxes,
    true_rows,
)
from trackid.track.tracker_config import TrackerConfig
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
_LN2 = math.log(2)  # median of a halved chi-square with 2 degrees of freedom


class Tracker(Protocol):
    """What every tracker offers: feed frames in order, get the frame's tracked detections back."""

    def update(self, detections: Detections, camera_motion: NDArray[np.float64] | None = None) -> Detections: ...

    def reset(self) -> None: ...

    @property
    def warnings(self) -> list[str]:
        """What the tracker found wrong with the stream so far (empty when nothing)."""
        ...


TRACKERS: Registry[Tracker] = Registry("tracker")
"""Trackers by name, for the CLI and config files; each is built from a `TrackerConfig` and a frame rate."""
register_tracker = TRACKERS.register


def make_tracker(name: str = "trackid", frame_rate: float = 30.0, **params: object) -> Tracker:
    """Build a registered tracker; `params` override its config defaults, checked against its params model (a
    tracker takes the whole validated config and the frame rate, not the fields as keywords)."""
    return TRACKERS[name](TRACKERS.validate(name, params), frame_rate=frame_rate)


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


@register_tracker("trackid", params=TrackerConfig)
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
        self.max_coast = max(1, round(self.config.coast_s * self.frame_rate)) if self.config.coast_s > 0 else 0
        # `adaptive_noise` is a weight per frame at 30 frames/s: the same weight per second at any frame rate
        self._noise_rate = 1.0 - (1.0 - self.config.adaptive_noise) ** (30.0 / self.frame_rate)
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
        # only the score handling the config asks for keeps state
        mode, window = self.config.score_scale, self.config.score_window
        self.score_scale = ScoreScale(window) if mode == "rank" else None
        self.score_calibration = ScoreCalibration(window) if mode == "calibrated" else None
        self.health = StreamHealth()
        self._next_id = 1
        self._innovation_ratio = 1.0  # running estimate behind `kalman.noise_scale` (adaptive_noise)
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
        self.last_embedding = np.zeros((0, 0), np.float32)  # the vector of each track's latest detection

    def __len__(self) -> int:
        return len(self.track_id)

    def appearance_memory(self, track_ids: NDArray[np.int64]) -> NDArray[np.float32]:
        """(N, D) appearance memory (unit rows, zero where none yet) of the live tracks with these ids; what the
        association compares detections with. Raises KeyError for an id that is not live."""
        rows = {int(t): i for i, t in enumerate(self.track_id)}
        return self.appearance[[rows[int(t)] for t in track_ids]]

    @property
    def warnings(self) -> list[str]:
        """What is wrong with the stream so far (`trackid.track.health`); also logged once each."""
        return list(self.health.warnings)

    def update(self, detections: Detections, camera_motion: NDArray[np.float64] | None = None) -> Detections:
        """Advance one frame. Returns one row per track reported this frame: its box (filtered, or the detection's),
        the detection's score, crop quality and embedding (not the track's memory: see `appearance_memory`), and
        `track_id`. A track
        reported through an occlusion (`coast_s`) was not observed this frame: its box is predicted, and its score
        and quality are 0, so no sink mistakes it for a detection (nor picks its crop).

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

        raw_scores = detections.score
        detections = Detections(  # `dataclasses.replace` costs several microseconds a frame
            detections.xyxy,
            self._score_levels(raw_scores),
            detections.class_id,
            detections.embedding,
            detections.quality,
            detections.track_id,
            detections.camera_id,
            detections.time,
        )
        boxes, scores = detections.xyxy, detections.score
        high_free = scores >= cfg.high_score
        n_confident = int(high_free.sum())
        low = true_rows((scores >= cfg.low_score) & ~high_free)
        track_free = np.ones(len(self), bool)
        predicted = self.kalman.boxes()

        # 1. confident detections against every track's prediction, with heading consistency; confirmed tracks
        # first, then (after following the camera's motion) tentative ones
        first = true_rows(self.confirmed) if cfg.confirmed_first else np.arange(len(self))
        t1, d1 = self._match(first, true_rows(high_free), predicted, detections, cfg.iou_gate, cfg.direction_weight)
        high_free[d1] = False
        if cfg.scene_motion_z > 0:
            ts, ds = self._follow_scene_motion(t1, d1, predicted, detections, high_free)
            if ts is not None:
                high_free[ds] = False
                t1, d1 = np.concatenate([t1, ts]), np.concatenate([d1, ds])
                predicted = self.kalman.boxes()
        if cfg.confirmed_first:
            t1b, d1b = self._match(
                true_rows(~self.confirmed),
                true_rows(high_free),
                predicted,
                detections,
                cfg.iou_gate,
                cfg.direction_weight,
            )
            high_free[d1b] = False
            t1, d1 = np.concatenate([t1, t1b]), np.concatenate([d1, d1b])
        track_free[t1] = False

        # 2. weak detections only continue tracks that were visible in the previous frame
        recent = true_rows(track_free & (self.since_update == 1) & self.confirmed)
        t2, d2 = self._match(recent, low, predicted, detections, cfg.low_score_iou_gate, 0.0, use_appearance=False)
        track_free[t2] = False

        # 3. leftover confident detections against the last observed box of leftover tracks
        t3 = d3 = _EMPTY
        if cfg.recover_by_last_box:
            free_high = true_rows(high_free)
            t3, d3 = self._match(true_rows(track_free), free_high, self.last_box, detections, cfg.iou_gate, 0.0)
            high_free[d3] = False

        rows = np.concatenate([t1, t2, t3])
        dets = np.concatenate([d1, d2, d3])
        if cfg.adaptive_noise > 0:
            self._adapt_noise(t1, boxes[d1])
        self._apply_observations(rows, boxes[dets], raw_scores[dets])
        if self.score_calibration is not None:
            self.score_calibration.update(raw_scores, self._on_confirmed_tracks(boxes, predicted, rows, dets))
        self.last_quality[rows] = detections.quality[dets]
        self._record_embeddings(rows, detections.embedding[dets])
        if self._uses_appearance(detections):
            confident = np.concatenate([t1, t3]), np.concatenate([d1, d3])
            self._remember_appearance(*confident, detections)
        started = self._retire_and_start(detections, raw_scores, true_rows(high_free))
        self.health.observe(raw_scores, n_confident, started)
        self.health.check(cfg.score_scale, cfg.high_score, cfg.new_track_score, detections.camera_id)

        reported = (self.since_update == 0) & (self.confirmed | (self.frame <= cfg.min_hits))
        if self.max_coast > 0:
            reported[self._hidden_behind_others()] = True
        out_rows = true_rows(reported)
        observed = self.since_update[out_rows] == 0
        return Detections(
            self._reported_boxes(out_rows, observed),
            np.where(observed, self.last_score[out_rows], 0.0),
            self.class_id[out_rows],
            self.last_embedding[out_rows] * observed[:, None],
            np.where(observed, self.last_quality[out_rows], 0.0),
            self.track_id[out_rows],
            detections.camera_id,
            detections.time,
        )

    def _on_confirmed_tracks(
        self,
        boxes: NDArray[np.float64],
        predicted: NDArray[np.float64],
        rows: NDArray[np.intp],
        dets: NDArray[np.intp],
    ) -> NDArray[np.bool_]:
        """The calibration's outcome per detection: matched to a confirmed track, or lying on one's predicted box
        (IoU >= 0.5). The second half is what keeps the calibration honest: a true but weak detection that no
        stage was allowed to match still counts as a success, so low scores are not driven to zero by the very
        thresholds they are calibrated for."""
        success = np.zeros(len(boxes), bool)
        success[dets] = self.confirmed[rows]
        confirmed = true_rows(self.confirmed)
        if len(confirmed) and len(boxes):
            success |= (iou_matrix(boxes, predicted[confirmed]) >= 0.5).any(axis=1)
        return success

    def _score_levels(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """The scores the thresholds and the score weighting see: ranks in the stream's own score distribution
        (`score_scale` "rank"), their self-calibrated success rate ("calibrated"), or the detector's own numbers
        ("raw")."""
        if self.score_calibration is not None:
            self.score_calibration.observe(scores)
            return self.score_calibration.transform(scores)
        if self.score_scale is not None:
            self.score_scale.update(scores)
            return self.score_scale.transform(scores)
        return scores

    def _reported_boxes(self, rows: NDArray[np.intp], observed: NDArray[np.bool_]) -> NDArray[np.float64]:
        """Filtered (or raw) boxes; a track reported through an occlusion keeps its last observed size around its
        predicted centre, since an unobserved filter's size velocity would shrink or inflate the box."""
        boxes = self.kalman.boxes(rows) if self.config.report_filtered_box else self.last_box[rows]
        resize_unobserved(boxes, observed, self.last_box[rows])
        return boxes

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
            last, heading = headings(self.centres, track_rows, self.config.direction_span)
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

    def _follow_scene_motion(
        self,
        matched: NDArray[np.intp],
        dets: NDArray[np.intp],
        predicted: NDArray[np.float64],
        detections: Detections,
        high_free: NDArray[np.bool_],
    ) -> tuple[NDArray[np.intp], NDArray[np.intp]] | tuple[None, None]:
        """Move the tracks the first pass left unmatched by the camera's motion, read off the tracks it matched
        (those also matched the frame before, whose prediction is one step old), and match the confirmed ones
        again. (None, None) when there is no common motion to follow."""
        steady = self.since_update[matched] == 1
        shift = shift_from_tracks(predicted[matched[steady]], detections.xyxy[dets[steady]], self.config.scene_motion_z)
        if shift is None:
            return None, None
        unmatched = np.ones(len(self), bool)
        unmatched[matched] = False
        rows = true_rows(unmatched)
        if len(rows) == 0:
            return None, None
        self.kalman.shift(rows, shift)
        translate_boxes(self.last_box, rows, shift)
        self.centres[rows] += shift
        return self._match(
            true_rows(unmatched & self.confirmed),
            true_rows(high_free),
            self.kalman.boxes(),
            detections,
            self.config.iou_gate,
            self.config.direction_weight,
        )

    def _adapt_noise(self, rows: NDArray[np.intp], boxes: NDArray[np.float64]) -> None:
        """Fold this frame's median normalised innovation of steadily tracked rows into the process noise scale.

        Steady: matched the previous frame too and seen more than three times, so the prediction is one step old
        and the velocity is known. The median of a halved chi-square with 2 degrees of freedom is ln 2, hence the
        division: the estimate is 1 when the innovations are as large as the filter expects."""
        steady = steady_rows(rows, self.since_update, self.hits)
        if len(steady) == 0:
            return
        ratio = median(self.kalman.innovation_ratio(rows[steady], boxes[steady])) / _LN2
        rate = self._noise_rate
        self._innovation_ratio = (1 - rate) * self._innovation_ratio + rate * ratio
        low, high = self.config.noise_scale_range
        self.kalman.noise_scale = min(max(self._innovation_ratio, low), high)

    def _hidden_behind_others(self) -> NDArray[np.intp]:
        """Lost confirmed tracks to report through an occlusion: lost for at most `coast_s`, with enough hits, and
        with their predicted box covered (`coast_min_cover`) by a box matched this frame that is nearer the camera
        (its bottom edge lower in the image)."""
        cfg = self.config
        return hidden_rows(
            self.kalman.boxes(),
            self.confirmed,
            self.since_update,
            self.hits,
            self.max_coast,
            cfg.coast_min_hits,
            cfg.coast_min_cover,
        )

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
        record_observations(
            rows,
            boxes,
            scores,
            self.config.min_hits,
            self.last_box,
            self.last_score,
            self.since_update,
            self.hits,
            self.confirmed,
            self.centres,
        )

    def _reupdate(
        self, rows: NDArray[np.intp], last: NDArray[np.float64], new: NDArray[np.float64], gap: NDArray[np.int64]
    ) -> None:
        """Rewind to the state at the first missed frame and filter along the straight path last -> new."""
        if isinstance(self.kalman, BoxKalman):
            self.kalman.reupdate(rows, last, new, gap)
            return
        self.kalman.rewind(rows)
        for step in range(1, int(gap.max())):
            active = step < gap
            fraction = (step / gap[active])[:, None]
            virtual = last[active] + fraction * (new[active] - last[active])
            self.kalman.update(rows[active], virtual)
            self.kalman.predict(rows[active])
        self.kalman.update(rows, new)

    def _retire_and_start(
        self, detections: Detections, raw_scores: NDArray[np.float64], free_high: NDArray[np.intp]
    ) -> int:
        """Drop tracks lost too long (tentative ones at their first miss), start tracks from confident detections
        left over; returns how many were started."""
        cfg = self.config
        just_lost = true_rows(self.since_update == 1)
        if len(just_lost):
            self.kalman.freeze(just_lost)
        alive = np.where(self.confirmed, self.since_update <= self.max_lost, self.since_update == 0)
        if not alive.all():
            self._keep(alive)
        new = free_high[detections.score[free_high] >= cfg.new_track_score]
        if len(new):
            self._start(detections[new], raw_scores[new])
        return len(new)

    def _keep(self, mask: NDArray[np.bool_]) -> None:
        self.kalman.keep(mask)
        self.track_id, self.class_id = self.track_id[mask], self.class_id[mask]
        self.hits, self.since_update, self.confirmed = self.hits[mask], self.since_update[mask], self.confirmed[mask]
        self.last_box, self.last_score, self.centres = self.last_box[mask], self.last_score[mask], self.centres[mask]
        self.appearance, self.last_quality = self.appearance[mask], self.last_quality[mask]
        self.last_embedding = self.last_embedding[mask]

    def _start(self, new: Detections, scores: NDArray[np.float64]) -> None:
        boxes, classes, n = new.xyxy, new.class_id, len(new)
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
        self.last_embedding = np.concatenate(
            [self.last_embedding, np.zeros((n, self.last_embedding.shape[1]), np.float32)]
        )
        self._record_embeddings(np.arange(len(self) - n, len(self)), new.embedding)
        self._start_appearance(new)

    def _record_embeddings(self, rows: NDArray[np.intp], vectors: NDArray[np.float32]) -> None:
        """Keep each observed track's detection vector, reported as its `embedding` (the memory is `appearance`)."""
        if vectors.shape[1] == 0:
            return
        if self.last_embedding.shape[1] != vectors.shape[1]:
            self.last_embedding = np.zeros((len(self), vectors.shape[1]), np.float32)
        self.last_embedding[rows] = vectors

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
