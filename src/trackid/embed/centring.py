"""Camera centring: a learned feature transform that removes what a camera does to everything it photographs.

A camera's light, colour cast and background shift everything it photographs the same way, so two individuals
under one camera look more alike than one individual under two. Removing each camera's mean (member by member of
an ensemble, then re-normalising) takes that shared part out. On the full sets, rank-1 / mAP: VIPeR 8.5 / 13.9 % ->
11.7 / 18.0 %, PRID 2011 16.5 / 25.1 % -> 23.5 / 34.4 %. A camera the transform was not fitted on is left as it is.

It follows scikit-learn: parameters in `__init__`, `fit(X, cameras)` learns `means_`, `transform(X, cameras)`
applies them, and the layout of X (member blocks, their weights) is a parameter that may change after fitting: `tune`
learns the means before it chooses the ensemble's weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from trackid.embed.crops import l2_normalise

__all__ = ["CameraCentring"]


class CameraCentring(BaseEstimator):
    """Each camera's mean embedding, subtracted before matching.

    Args:
        dims: widths of the blocks X is made of (an ensemble's members, in order); None: X is one block. Each block
            is centred and re-normalised on its own, so the member that varies most cannot swamp the others.
        weights: when X is an ensemble's joined output, the shares its blocks were scaled by (block i holds
            sqrt(weights[i]) times a unit vector, as `EnsembleEmbedder.weights`); the output is then in that layout
            too, one unit vector per row. None: X's blocks are unit vectors as they are, and so are the output's.

    Attributes:
        means_: camera -> its rows' mean unit blocks, concatenated, in the unweighted layout (so new weights do not
            need a new fit).
        n_features_in_: the width of X it was fitted on.
    """

    def __init__(self, dims: Sequence[int] | None = None, weights: Sequence[float] | None = None) -> None:
        self.dims = dims
        self.weights = weights

    def fit(self, X: ArrayLike, cameras: ArrayLike) -> CameraCentring:  # noqa: N803 (scikit-learn's name)
        """Learn each camera's mean from the rows of X it photographed."""
        x, cams = self._check(X, cameras)
        if len(x) == 0:
            raise ValueError("X has no rows to learn camera means from")
        unit = self._unweighted(x)
        self.means_ = {str(c): unit[cams == c].mean(axis=0) for c in np.unique(cams)}
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, X: ArrayLike, cameras: ArrayLike) -> NDArray[np.float32]:  # noqa: N803
        """X with each row's camera mean removed, block by block, re-normalised, in X's layout."""
        check_is_fitted(self, "means_")
        x, cams = self._check(X, cameras)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {x.shape[1]} features, but CameraCentring was fitted on {self.n_features_in_}")
        bounds = self._bounds(x.shape[1])
        unknown = np.zeros(x.shape[1], np.float32)
        means = np.array([self.means_.get(str(c), unknown) for c in cams], np.float32).reshape(x.shape)
        blocks = list(pairwise(bounds.tolist()))
        if self.weights is None:
            return np.concatenate([l2_normalise(x[:, lo:hi] - means[:, lo:hi]) for lo, hi in blocks], axis=1)
        weights = [float(w) for w in self.weights]
        parts = [
            x[:, lo:hi] / np.sqrt(w) if w > 0 else x[:, lo:hi] for (lo, hi), w in zip(blocks, weights, strict=True)
        ]
        centred = [l2_normalise(p - means[:, lo:hi]) for p, (lo, hi) in zip(parts, blocks, strict=True)]
        joined = np.concatenate([c * np.sqrt(w) for c, w in zip(centred, weights, strict=True)], axis=1)
        return l2_normalise(joined)

    def fit_transform(self, X: ArrayLike, cameras: ArrayLike) -> NDArray[np.float32]:  # noqa: N803
        return self.fit(X, cameras).transform(X, cameras)

    @property
    def digest(self) -> str:
        """Names the centred vector space in a model version, so its vectors never mix with another space's."""
        check_is_fitted(self, "means_")
        h = hashlib.sha256()
        for camera in sorted(self.means_):
            h.update(camera.encode() + b"\0" + np.asarray(self.means_[camera], "<f4").tobytes())
        return h.hexdigest()[:10]

    def to_json(self) -> dict[str, list[float]]:
        """The learned means as `{camera: [floats]}` (the layout parameters belong to the embedder, not here)."""
        check_is_fitted(self, "means_")
        return {camera: [float(v) for v in mean] for camera, mean in sorted(self.means_.items())}

    @classmethod
    def from_json(cls, data: Mapping[str, Sequence[float]], **params: Any) -> CameraCentring:
        """A fitted transform from `to_json`'s output; `params` are the layout (`dims`, `weights`)."""
        means = {str(camera): np.asarray(mean, np.float32) for camera, mean in data.items()}
        widths = {len(mean) for mean in means.values()}
        if len(widths) != 1:
            raise ValueError(f"camera means must be one width for every camera, got widths {sorted(widths)}")
        centring = cls(**params)
        centring.means_ = means
        centring.n_features_in_ = widths.pop()
        return centring

    def _check(self, X: ArrayLike, cameras: ArrayLike) -> tuple[NDArray[np.float32], NDArray[Any]]:  # noqa: N803
        x = np.asarray(X, np.float32)
        cams = np.asarray(cameras)
        if x.ndim != 2:
            raise ValueError(f"X must be a 2-D array (rows, features), got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("X contains NaN or infinite values")
        if cams.shape != (len(x),):
            raise ValueError(f"cameras must name one camera per row of X ({len(x)}), got shape {cams.shape}")
        self._bounds(x.shape[1])
        return x, cams

    def _bounds(self, width: int) -> NDArray[np.int64]:
        dims = [width] if self.dims is None else [int(d) for d in self.dims]
        if any(d <= 0 for d in dims) or sum(dims) != width:
            raise ValueError(f"dims must be positive and sum to X's width {width}, got {self.dims}")
        if self.weights is not None and (len(self.weights) != len(dims) or any(w < 0 for w in self.weights)):
            raise ValueError(f"weights must be {len(dims)} non-negative numbers, one per block, got {self.weights}")
        return np.cumsum([0, *dims])

    def _unweighted(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """X's blocks as the unit vectors they were before the ensemble weighted them."""
        if self.weights is None:
            return x
        bounds = self._bounds(x.shape[1])
        scales = [np.sqrt(float(w)) if w > 0 else 1.0 for w in self.weights]
        parts = [x[:, lo:hi] / s for (lo, hi), s in zip(pairwise(bounds.tolist()), scales, strict=True)]
        return np.concatenate(parts, axis=1).astype(np.float32)
