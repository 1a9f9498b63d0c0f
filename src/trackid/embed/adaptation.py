"""Camera adaptation without labels: the camera means of cameras `tune` never saw, counted from what ingest sees.

`CameraCentring` removes each camera's mean, but only for the cameras it was fitted on; a new camera's photos stay
uncentred, their shared light and background make everyone it photographs look alike, and every similarity rises
above the tuned threshold (tune on PRID 2011, ingest VIPeR: 895 of 900 sightings took someone else's profile). A
camera mean needs no labels, only the camera's own photos, so `CameraAdaptation` counts it online
(`partial_fit`), member block by member block through `CameraCentring` itself, and fixes it (`freeze`) once
`warmup` rows are seen.

The rule that keeps one vector space: **a camera's mean is fixed before the first vector centred with it is stored,
and never changes afterwards.** Tune's cameras keep tune's means (they are not counted); a new camera's stored
vectors are all centred by its one frozen mean, so the space the store's model version names (tune's centring) is
only extended by new cameras, never changed under a stored vector. Whitening (a per-camera covariance) is not done:
with the 50-300 photos a camera gives in a warm-up, a covariance of a 1,000+-wide embedding is mostly noise, and the
mean is what the issue's failure needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator

from trackid.embed.centring import CameraCentring

__all__ = ["CameraAdaptation", "CameraState"]

CameraState = Literal["tuned", "adapted", "warming", "unseen"]
"""tuned: `tune` learnt its mean. adapted: its mean was counted and is frozen. warming: counted, below `warmup` (not
frozen). unseen: nothing counted yet."""


class CameraAdaptation(BaseEstimator):
    """Per-camera means of unlabelled rows, counted online and frozen after a warm-up; centring with them.

    Args:
        warmup: rows (individuals in photos) a new camera must give before its mean is fixed. Raising it gives a
            less noisy mean (its error shrinks as 1/sqrt(warmup)) but holds a new camera's photos back longer and
            leaves small cameras unadapted; lowering it adapts sooner on a noisier mean.
        tuned: `tune`'s fitted centring; its cameras keep its means and are never counted.
        dims, weights: the layout of X, as `CameraCentring`'s (an ensemble's member widths and weights).

    Attributes:
        counts_: camera -> rows counted (tune's cameras are not counted).
        sums_: camera -> sum of its rows' unit blocks in the unweighted layout (`CameraCentring.means_`'s).
        frozen_: camera -> its fixed mean; frozen cameras are no longer counted.
    """

    def __init__(
        self,
        warmup: int = 50,
        tuned: CameraCentring | None = None,
        dims: Sequence[int] | None = None,
        weights: Sequence[float] | None = None,
    ) -> None:
        self.warmup = warmup
        self.tuned = tuned
        self.dims = dims
        self.weights = weights
        self.counts_: dict[str, int] = {}
        self.sums_: dict[str, NDArray[np.float64]] = {}
        self.frozen_: dict[str, NDArray[np.float32]] = {}
        self._centring: CameraCentring | None = None  # built once per set of means: ingest centres every burst

    def partial_fit(self, X: ArrayLike, cameras: ArrayLike) -> CameraAdaptation:  # noqa: N803 (scikit-learn's name)
        """Count the rows of X whose camera is neither tune's nor frozen into their camera's mean."""
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 1:
            raise ValueError(f"warmup must be a positive integer, got {self.warmup!r}")
        cams = np.asarray(cameras).astype(str)
        x = np.asarray(X, np.float32)
        if x.ndim != 2 or cams.shape != (len(x),):
            raise ValueError(f"X must be (rows, features) and cameras one per row, got {x.shape} and {cams.shape}")
        keep = np.array([c not in self._tuned_means and c not in self.frozen_ for c in cams.tolist()], dtype=bool)
        if not keep.any():
            return self
        # CameraCentring's fit is the block-by-block mean this needs; a batch's means times its counts are its sums
        batch = CameraCentring(dims=self.dims, weights=self.weights).fit(x[keep], cams[keep])
        for camera, mean in batch.means_.items():
            n = int((cams[keep] == camera).sum())
            self.counts_[camera] = self.counts_.get(camera, 0) + n
            self.sums_[camera] = self.sums_.get(camera, 0.0) + n * mean.astype(np.float64)
        return self

    def ready(self, camera: str) -> bool:
        """Counted to the warm-up and not yet frozen: `freeze` it before centring any of its rows."""
        return camera not in self.frozen_ and self.counts_.get(camera, 0) >= self.warmup

    def freeze(self, camera: str) -> NDArray[np.float32]:
        """Fix the camera's mean at what was counted (from now on its rows are centred by it); returns it."""
        if camera in self._tuned_means:
            raise ValueError(f"camera {camera!r} has tune's mean; it is not adapted")
        if camera not in self.frozen_:
            if not self.counts_.get(camera):
                raise ValueError(f"camera {camera!r} has no rows counted; there is no mean to freeze")
            self.frozen_[camera] = (self.sums_[camera] / self.counts_[camera]).astype(np.float32)
            self._centring = None
        return self.frozen_[camera]

    def state(self, camera: str) -> CameraState:
        if camera in self._tuned_means:
            return "tuned"
        if camera in self.frozen_:
            return "adapted"
        return "warming" if self.counts_.get(camera) else "unseen"

    def centring(self) -> CameraCentring:
        """`CameraCentring` with tune's means and the frozen ones; other cameras' rows pass as they are."""
        if self._centring is not None:
            return self._centring
        means = {
            **{c: m.tolist() for c, m in self._tuned_means.items()},
            **{c: m.tolist() for c, m in self.frozen_.items()},
        }
        if not means:
            raise ValueError("no camera has a mean yet (nothing tuned, nothing frozen)")
        self._centring = CameraCentring.from_json(means, dims=self.dims, weights=self.weights)
        return self._centring

    def transform(self, X: ArrayLike, cameras: ArrayLike) -> NDArray[np.float32]:  # noqa: N803
        """X centred by its cameras' tuned or frozen means (see `centring`), in X's layout."""
        return self.centring().transform(X, np.asarray(cameras).astype(str))

    def load(self, camera: str, count: int, total: ArrayLike, *, frozen: bool) -> CameraAdaptation:
        """Restore one camera's persisted statistics: `count` rows whose unit blocks sum to `total` (for a frozen
        camera, `total` is its frozen mean and `count` the rows it was counted from)."""
        vector = np.asarray(total, np.float64)
        self.counts_[camera] = int(count)
        if frozen:
            self._centring = None
            self.frozen_[camera] = vector.astype(np.float32)
            self.sums_[camera] = vector * int(count)
        else:
            self.sums_[camera] = vector
        return self

    def statistics(self, camera: str) -> dict[str, Any]:
        """What `load` takes back: {count, total, frozen} (the frozen mean, or the running sum)."""
        frozen = camera in self.frozen_
        total = self.frozen_[camera] if frozen else self.sums_[camera]
        return {"count": self.counts_[camera], "total": [float(v) for v in total], "frozen": frozen}

    @property
    def _tuned_means(self) -> Mapping[str, NDArray[np.float32]]:
        return {} if self.tuned is None else self.tuned.means_
