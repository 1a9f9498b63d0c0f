"""Several calibrated views of one scene: cameras on a ground plane (`cameras`) and the cross-view association of
one time step (`association`), and tracks on the ground plane (`world_tracking`; issue #17)."""

from trackid.multiview.association import GroundGroups, associate_views
from trackid.multiview.cameras import CalibrationError, GroundCamera, GroundPoints

__all__ = ["CalibrationError", "GroundCamera", "GroundGroups", "GroundPoints", "associate_views"]
