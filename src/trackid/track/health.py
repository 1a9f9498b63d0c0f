"""Warnings for streams a tracker cannot work with, so an unusual detector never gives a silently empty result.

A detector whose scores never reach the score a track needs to start (a raw threshold of 0.97 against a detector
that never reports above 0.9), scores that are all equal or not numbers: each leaves the tracker with nothing or
with no way to tell confident boxes from doubtful ones. `StreamHealth` watches the stream and says so once, in the
log (`trackid.track` logger) and in `warnings`, which the pipelines copy into their run summary.
"""

from __future__ import annotations

import logging

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = ["StreamHealth"]

log = logging.getLogger("trackid.track")


class StreamHealth:
    """Counters over one stream and the warnings they justify.

    Args:
        min_detections: detections to see before judging that none started a track (a few frames of a short clip
            are not evidence).
        min_frames: frames to see before the same judgement.
    """

    def __init__(self, min_detections: int = 50, min_frames: int = 10) -> None:
        self.min_detections = min_detections
        self.min_frames = min_frames
        self.frames = 0
        self.detections = 0
        self.non_finite = 0
        self.confident = 0  # detections at or above the first-stage threshold
        self.started = 0  # tracks started
        self.low = np.inf
        self.high = -np.inf
        self.warnings: list[str] = []
        self._said: set[str] = set()

    def observe(self, raw_scores: NDArray[np.float64], confident: int, started: int) -> None:
        """One frame: its raw scores, how many passed the first-stage threshold, how many tracks it started."""
        self.frames += 1
        self.detections += len(raw_scores)
        finite, low, high = _finite_range(raw_scores)
        self.non_finite += len(raw_scores) - finite
        self.low, self.high = min(self.low, low), max(self.high, high)
        self.confident += confident
        self.started += started

    def check(self, scale: str, high_score: float, new_track_score: float, camera_id: str = "") -> None:
        """Add (and log once, with the camera) each warning the counters now justify; cheap enough to call every
        frame."""
        if self.detections < self.min_detections or self.frames < self.min_frames or self._healthy():
            return
        due = {
            "no-track": self.started == 0,
            "no-confident": self.confident == 0,
            "constant": self.high == self.low and self.detections > self.non_finite,
            "non-finite": self.non_finite > 0,
        }
        for key in [k for k, v in due.items() if v and k not in self._said]:
            self._said.add(key)
            self.warnings.append(self._message(key, scale, high_score, new_track_score))
            log.warning(self.warnings[-1], extra={"camera_id": camera_id or None})

    def _healthy(self) -> bool:
        """Nothing to warn about (the common case, checked first so that a healthy stream costs little)."""
        return self.started > 0 and self.confident > 0 and self.high > self.low and self.non_finite == 0

    def _message(self, key: str, scale: str, high_score: float, new_track_score: float) -> str:
        seen = f"{self.detections} detections over {self.frames} frames (scores {self.low:.3g} to {self.high:.3g})"
        unit = "as a quantile of the stream's scores" if scale == "rank" else f"as a {scale} score"
        return {
            "no-track": f"{seen}, but none reached new_track_score {new_track_score} ({unit}), so no track was "
            "started: lower tracker.new_track_score, or use score_scale 'rank' so thresholds follow the detector",
            "no-confident": f"{seen}, but none reached high_score {high_score} ({unit}): only the weak second "
            "association runs",
            "constant": f"{seen}: every score is {self.high:.3g}, so the score thresholds cannot tell confident "
            "boxes from doubtful ones; every box is treated alike",
            "non-finite": f"{self.non_finite} of {seen} had a score that is not a number and were ignored",
        }[key]


@numba.njit(cache=True, nogil=True)
def _finite_range(scores: NDArray[np.float64]) -> tuple[int, float, float]:
    """How many scores are finite, and their min and max (inf, -inf when none)."""
    count, low, high = 0, np.inf, -np.inf
    for s in scores:
        if np.isfinite(s):
            count += 1
            low, high = min(low, s), max(high, s)
    return count, low, high
