"""Per-camera online tracking: motion models, association, the tracker that combines them, and the tracklets it
hands on."""

from trackid.track.tracker import (
    TRACKERS,
    OnlineTracker,
    Tracker,
    TrackerConfig,
    make_tracker,
    register_tracker,
    track_sequence,
)
from trackid.track.tracklets import TrackletBuilder

__all__ = [
    "TRACKERS",
    "OnlineTracker",
    "Tracker",
    "TrackerConfig",
    "TrackletBuilder",
    "make_tracker",
    "register_tracker",
    "track_sequence",
]
