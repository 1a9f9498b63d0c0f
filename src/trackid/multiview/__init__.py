"""Several calibrated views of one scene: cameras on a ground plane (`cameras`); cross-view association and world
tracking build on it (issue #17)."""

from trackid.multiview.cameras import CalibrationError, GroundCamera, GroundPoints

__all__ = ["CalibrationError", "GroundCamera", "GroundPoints"]
