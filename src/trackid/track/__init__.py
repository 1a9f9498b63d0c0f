"""Per-camera online tracking: motion models, association, and the tracker that combines them."""

from trackid.track.tracker import (
    TRACKERS,
    OnlineTracker,
    Tracker,
    TrackerConfig,
    make_tracker,
    register_tracker,
    track_sequence,
)

__all__ = [
    "TRACKERS",
    "OnlineTracker",
    "Tracker",
    "TrackerConfig",
    "make_tracker",
    "register_tracker",
    "track_sequence",
]
