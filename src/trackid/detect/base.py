"""The detector protocol and registry.

A detector turns one image (H x W x 3 uint8, BGR as OpenCV reads it) into `Detections` in that image's pixel
coordinates. Backends register themselves by name so the CLI and config files can choose them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from trackid.types import Detections

__all__ = ["DETECTORS", "Detector", "make_detector", "register_detector"]


class Detector(Protocol):
    name: str

    def detect(self, image: NDArray[np.uint8]) -> Detections: ...


DETECTORS: dict[str, Callable[..., Detector]] = {}


def register_detector(name: str) -> Callable[[type], type]:
    def decorate(cls: type) -> type:
        DETECTORS[name] = cls
        return cls

    return decorate


def make_detector(name: str, **params: object) -> Detector:
    """Build a registered detector; importing `trackid.detect` registers the built-in backends."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose from {sorted(DETECTORS)}")
    return DETECTORS[name](**params)
