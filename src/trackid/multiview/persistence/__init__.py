"""The persistence filter: which tracks are real, persistent objects and which are transient false positives."""

from trackid.multiview.persistence.features import FRAME_FEATURES, SUMMARY_FEATURES, frame_features, summary_features
from trackid.multiview.persistence.models import BoostedPersistence, LengthRule
from trackid.multiview.persistence.tracks import TrackRecord, collect_tracks, label_tracks

__all__ = [
    "FRAME_FEATURES",
    "SUMMARY_FEATURES",
    "BoostedPersistence",
    "LengthRule",
    "TrackRecord",
    "collect_tracks",
    "frame_features",
    "label_tracks",
    "summary_features",
]
