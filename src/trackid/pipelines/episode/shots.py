"""Hard cuts between shots, so that no face track runs from one shot into the next.

In an edited episode a cut often puts a new face where the last one was; a tracker that only sees boxes carries
the track across, and the track then holds two people (an id switch the clustering cannot undo). Consecutive
processed frames are compared by the Bhattacharyya distance of their hue-saturation histograms (OpenCV's
`compareHist`); a cut is a distance above both `floor` and `factor` times the running median of the shot so far,
so a flickering or noisy video raises its own bar instead of cutting every frame. On the assembled episode
(`bench/episode_assembly.py`), frames within a shot lie under 0.13 (99th percentile) and its cuts above 0.35; one
cut there (0.35 after a shot whose median is 0.073) was missed at factor 5, hence 4 with a floor of 0.3: every cut
found at strides 1-3, a flash inside one clip cut at stride 1, and the dissolve cut at stride 3 (mid-fade frames
three apart differ like a cut: a dissolve is a shot change too).
"""

from __future__ import annotations

import collections
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["ShotCuts"]


class ShotCuts:
    """Feed frames in order: `is_cut(image)` says whether this frame starts a new shot."""

    def __init__(self, floor: float = 0.3, factor: float = 4.0, window: int = 60) -> None:
        self.floor, self.factor = float(floor), float(factor)
        self._recent: collections.deque[float] = collections.deque(maxlen=window)
        self._previous: NDArray[Any] | None = None
        self.cuts = 0

    def is_cut(self, image: NDArray[np.uint8]) -> bool:
        small = cv2.resize(image, (160, max(1, round(160 * image.shape[0] / image.shape[1]))))
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        histogram = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
        cv2.normalize(histogram, histogram)
        previous, self._previous = self._previous, histogram
        if previous is None:
            return False
        distance = float(cv2.compareHist(previous, histogram, cv2.HISTCMP_BHATTACHARYYA))
        bar = max(self.floor, self.factor * float(np.median(self._recent))) if self._recent else self.floor
        if distance > bar:
            self._recent.clear()
            self.cuts += 1
            return True
        self._recent.append(distance)
        return False
