"""The detector protocol and registry.

A detector turns one image (H x W x 3 uint8, BGR as OpenCV reads it) into `Detections` in that image's pixel
coordinates. Backends register themselves by name so the CLI and config files can choose them.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from trackid.registry import Registry
from trackid.types import Detections

__all__ = ["DETECTORS", "Detector", "make_detector", "register_detector"]


class Detector(Protocol):
    name: str

    def detect(self, image: NDArray[np.uint8]) -> Detections: ...


DETECTORS: Registry[Detector] = Registry("detector")
"""Importing `trackid.detect` registers the built-in backends."""
register_detector = DETECTORS.register
make_detector = DETECTORS.make
