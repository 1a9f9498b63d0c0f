"""trackid: follow people, faces and animals through cameras and photos, and keep who is who over time."""

from trackid.types import Detections

__version__ = "0.1.0"

__all__ = ["Detections", "__version__"]
