"""Peer trackers behind one interface, so bench/mot.py can time only their per-frame update calls.

Each adapter turns a frame's detections (``xyxy`` (N, 4), ``score`` (N,)) into the library's own input
type (``prepare``, not timed, as trackid's own ``Detections`` are built before timing), calls the library's
update once (``step``, timed), and returns exactly the tracks that the library reports for that
frame (its own min-hits / activation logic decides), with the box the library reports and its id.

Peers run with their library's defaults, except:

* no appearance embeddings (ReID) and no camera-motion compensation (CMC), so every peer, like trackid
  here, sees boxes and scores only, and no model weights are ever loaded;
* the sequence frame rate is passed wherever the library takes one.

The libraries live in ``.venv-bench`` (``bench/setup_env.sh``) and are imported lazily by the factories,
so this module imports anywhere. Construction options are recorded in ``PEER_OPTIONS`` for the report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

__all__ = ["PEERS", "PEER_OPTIONS", "PeerFactory", "PeerTracker"]


class PeerTracker(Protocol):
    """A tracker that can be fed one frame of detections at a time."""

    name: str

    def prepare(self, xyxy: np.ndarray, score: np.ndarray) -> Any:
        """xyxy (N,4) float, score (N,) float for one frame -> the library's own input type (not timed)."""
        ...

    def step(self, prepared: Any) -> tuple[np.ndarray, np.ndarray]:
        """One update call on prepared input -> (track_xyxy (M,4), track_ids (M,) int) (timed)."""
        ...


PeerFactory = Callable[[float, tuple[int, int]], PeerTracker]
"""``factory(frame_rate, (img_w, img_h)) -> PeerTracker``; one fresh tracker per sequence."""

_EMPTY_BOXES = np.empty((0, 4), dtype=np.float64)
_EMPTY_IDS = np.empty(0, dtype=np.int64)


# --- boxmot -------------------------------------------------------------------------------------------
# Built with boxmot's own factory, create_tracker(TrackerSpec(...)): it starts from the tracker's
# configs/trackers/<name>.yaml, which boxmot calls the single source of truth for runtime defaults (and
# which its CLI and evaluation use); the classes' __init__ defaults differ from those and are not used.

_BOXMOT_NO_REID_NO_CMC: dict[str, Any] = {"use_embeddings": False, "use_cmc": False}


class BoxmotPeer:
    """A boxmot tracker; detections go in as (N, 6) rows ``x1, y1, x2, y2, conf, cls`` with cls 0.

    boxmot rejects scores outside [0, 1]: fine for the FRCNN detections, not for raw ACF margins.

    No image is passed: with embeddings and CMC off, boxmot's ``requirements.frame`` is False and the
    kernels never read one (a frame would only record the image size, used by centroid association).
    """

    def __init__(self, name: str, key: str, options: dict[str, Any]) -> None:
        from boxmot.trackers.factory import create_tracker
        from boxmot.trackers.specs import TrackerSpec
        from boxmot.utils import logger

        logger.setLevel(logging.WARNING)  # boxmot logs every construction at INFO; its import sets INFO
        self.name = name
        self._tracker = create_tracker(TrackerSpec(name=key, options=tuple(sorted(options.items()))))
        needs = self._tracker.requirements
        if needs.frame or needs.embeddings:
            raise RuntimeError(f"boxmot {key} with {options} still needs a frame or embeddings: {needs}")

    def prepare(self, xyxy: np.ndarray, score: np.ndarray) -> np.ndarray:
        dets = np.zeros((len(score), 6), dtype=np.float64)
        dets[:, :4] = xyxy
        dets[:, 4] = score
        return dets

    def step(self, dets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self._tracker.update(dets)  # rows: x1, y1, x2, y2, id, conf, cls, det_index
        return out[:, :4], out[:, 4].astype(np.int64)


def _boxmot(name: str, key: str, options: dict[str, Any], takes_frame_rate: bool) -> PeerFactory:
    def factory(frame_rate: float, img_size: tuple[int, int]) -> PeerTracker:
        opts = dict(options)
        if takes_frame_rate:
            opts["frame_rate"] = round(frame_rate)  # boxmot types it int; it scales the lost-track buffer
        return BoxmotPeer(name, key, opts)

    return factory


# --- roboflow trackers ------------------------------------------------------------------------------
# Constructor defaults (the library has no separate config). Its update returns the input detections with
# tracker_id set, -1 for detections that are not (yet) part of a confirmed track; the box is the detection.


class RoboflowPeer:
    """A roboflow ``trackers`` tracker, fed ``supervision.Detections`` built from the arrays."""

    def __init__(self, name: str, tracker: Any) -> None:
        import supervision as sv

        self.name = name
        self._tracker = tracker
        self._detections = sv.Detections

    def prepare(self, xyxy: np.ndarray, score: np.ndarray) -> Any:
        return self._detections(xyxy=xyxy, confidence=score)

    def step(self, detections: Any) -> tuple[np.ndarray, np.ndarray]:
        out = self._tracker.update(detections)
        if len(out) == 0:
            return _EMPTY_BOXES, _EMPTY_IDS
        keep = out.tracker_id >= 0
        return out.xyxy[keep], out.tracker_id[keep].astype(np.int64)


def _roboflow(name: str, class_name: str, options: dict[str, Any]) -> PeerFactory:
    def factory(frame_rate: float, img_size: tuple[int, int]) -> PeerTracker:
        import trackers

        tracker = getattr(trackers, class_name)(frame_rate=frame_rate, **options)
        return RoboflowPeer(name, tracker)

    return factory


# --- norfair -----------------------------------------------------------------------------------------
# Norfair has no box-tracking defaults for the distance threshold; these follow its MOTChallenge demo
# (demos/motmetrics4norfair): IoU distance (1 - IoU) matched below 0.9, i.e. IoU > 0.1; detections whose
# score is <= 0.5 ignored; hit_counter_max 8, so initialization_delay defaults to 8 // 2 = 4 frames;
# pointwise_hit_counter_max 3; FilterPy's Kalman filter. The demo's MotionEstimator (CMC) is left out.

NORFAIR_OPTIONS: dict[str, Any] = {
    "distance_function": "iou",
    "distance_threshold": 0.9,
    "detection_threshold": 0.5,
    "hit_counter_max": 8,
    "pointwise_hit_counter_max": 3,
}


class NorfairPeer:
    """A norfair ``Tracker`` on two-point boxes; it outputs every initialized object it returns.

    Norfair has no frame-rate parameter: its counters are in frames.
    """

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        from norfair import Detection, Tracker
        from norfair.filter import FilterPyKalmanFilterFactory

        self.name = name
        self._detection = Detection
        self._tracker = Tracker(filter_factory=FilterPyKalmanFilterFactory(), **options)

    def prepare(self, xyxy: np.ndarray, score: np.ndarray) -> list[Any]:
        points = np.asarray(xyxy, dtype=np.float64).reshape(-1, 2, 2)
        return [self._detection(p, scores=np.array([s, s])) for p, s in zip(points, score, strict=True)]

    def step(self, dets: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        objects = self._tracker.update(detections=dets)
        if not objects:
            return _EMPTY_BOXES, _EMPTY_IDS
        boxes = np.array([obj.estimate.reshape(4) for obj in objects], dtype=np.float64)
        ids = np.array([obj.id for obj in objects], dtype=np.int64)
        return boxes, ids


def _norfair(name: str, options: dict[str, Any]) -> PeerFactory:
    def factory(frame_rate: float, img_size: tuple[int, int]) -> PeerTracker:
        return NorfairPeer(name, options)

    return factory


# --- registry ----------------------------------------------------------------------------------------

PEER_OPTIONS: dict[str, dict[str, Any]] = {
    "boxmot-bytetrack": {"frame_rate": "<seq>"},
    "boxmot-ocsort": {},
    "boxmot-botsort": {**_BOXMOT_NO_REID_NO_CMC, "frame_rate": "<seq>"},
    "boxmot-boosttrack": dict(_BOXMOT_NO_REID_NO_CMC),
    "boxmot-occluboost": dict(_BOXMOT_NO_REID_NO_CMC),
    "roboflow-sort": {"frame_rate": "<seq>"},
    "roboflow-bytetrack": {"frame_rate": "<seq>"},
    "roboflow-ocsort": {"frame_rate": "<seq>"},
    "roboflow-botsort": {"enable_cmc": False, "frame_rate": "<seq>"},
    "norfair": {**NORFAIR_OPTIONS, "filter_factory": "FilterPyKalmanFilterFactory()"},
}
"""What each peer is built with beyond its library's defaults (``<seq>``: the sequence's value)."""

PEERS: dict[str, PeerFactory] = {
    "boxmot-bytetrack": _boxmot("boxmot-bytetrack", "bytetrack", {}, takes_frame_rate=True),
    "boxmot-ocsort": _boxmot("boxmot-ocsort", "ocsort", {}, takes_frame_rate=False),
    "boxmot-botsort": _boxmot("boxmot-botsort", "botsort", _BOXMOT_NO_REID_NO_CMC, takes_frame_rate=True),
    "boxmot-boosttrack": _boxmot("boxmot-boosttrack", "boosttrack", _BOXMOT_NO_REID_NO_CMC, takes_frame_rate=False),
    # boxmot's successor to BoostTrack and its README's lead tracker; ReID off also disables its
    # appearance-only recovery pass and global track association (GTA).
    "boxmot-occluboost": _boxmot("boxmot-occluboost", "occluboost", _BOXMOT_NO_REID_NO_CMC, takes_frame_rate=False),
    "roboflow-sort": _roboflow("roboflow-sort", "SORTTracker", {}),
    "roboflow-bytetrack": _roboflow("roboflow-bytetrack", "ByteTrackTracker", {}),
    "roboflow-ocsort": _roboflow("roboflow-ocsort", "OCSORTTracker", {}),
    "roboflow-botsort": _roboflow("roboflow-botsort", "BoTSORTTracker", {"enable_cmc": False}),
    "norfair": _norfair("norfair", NORFAIR_OPTIONS),
}
