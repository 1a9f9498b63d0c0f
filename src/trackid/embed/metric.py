"""Learned metrics for re-identification: XQDA, KISSME and regularised LDA, as scikit-learn estimators.

Why a learned metric: a hand-crafted descriptor (LOMO) spends most of its dimensions on what a camera does to
everyone (light, colour cast, background); a metric fitted on labelled pairs keeps the directions along which one
person seen by two cameras varies little and two people vary a lot. On VIPeR (10 splits, bench/reid.py) XQDA takes
LOMO from 14.4 % to 37.7 % rank-1, fitted in about 2 s on a CPU. Spaces learned on different features fuse well:
an `ensemble` embedder of `learned` members (LOMO + XQDA 0.6, MobileNetV2 + colour + XQDA 0.4, weights chosen on
VIPeR training people only) reaches 41.9 %, and with LOMO-with-Retinex + XQDA as a third member (0.5 / 0.3 / 0.2)
43.7 %.

All three learn a linear map P (d x r) and a centre mu, so that the learned (Mahalanobis) distance is
||P^T (x - y)||^2: `project(X)` gives z = P^T (x - mu), and `transform(X)` its L2-normalised rows, a space where the
inner product ranks as the metric does and which the gallery, the index and the tracker use as they use any
embedding. Pairs come from the labels: every two rows of one identity are a same pair, every two of different
identities a different pair; with `cameras` only pairs across cameras count (how XQDA is trained: gallery vs probe).
Both pair covariances are computed from identity and camera sums, never by listing the pairs.

Fitted state: `mean_` (d,), `components_` (d, r), `eigenvalues_` (r,), `n_components_`, `n_features_in_`.
`digest` names the learned space; `save`/`load` keep it in one `.npz`. `MetricEmbedder` (registered as embedder
`learned`) puts a fitted metric after any embedder, so photos, the gallery and the tracker use the learned space as
an ordinary embedding; its `version` names the base's version and the metric's digest, so vectors of two fits never
mix in a store.
"""

from __future__ import annotations

import hashlib
import io
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.linalg
import scipy.sparse
from numpy.typing import ArrayLike, NDArray
from pydantic import Field, field_validator
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from trackid.artifacts import atomic_write_bytes
from trackid.embed.base import EMBEDDERS, Embedder, make_embedder, register_embedder
from trackid.embed.crops import check_crops, l2_normalise
from trackid.registry import BackendParams, Registry

__all__ = [
    "KISSME",
    "METRICS",
    "XQDA",
    "KissmeParams",
    "LdaParams",
    "LearnedParams",
    "MetricEmbedder",
    "PairMetric",
    "RegularisedLDA",
    "XqdaParams",
    "learned_embedder",
    "load_metric",
    "make_metric",
]

METRICS: Registry[PairMetric] = Registry("metric")

_FORMAT = 1
"""Version of the `.npz` layout `save` writes; `load` refuses others."""


def make_metric(name: str, **params: Any) -> PairMetric:
    """An unfitted metric by registered name (`xqda`, `kissme`, `lda`), its parameters checked by its model."""
    return METRICS.make(name, params)


def load_metric(path: str | Path) -> PairMetric:
    """A fitted metric of whichever kind the file holds."""
    return PairMetric.load(path)


class PairMetric(BaseEstimator, ABC):
    """What the three metrics share: fitting on pairs from labels, the projection, persistence and the digest."""

    name: ClassVar[str] = ""

    def fit(self, X: ArrayLike, y: ArrayLike, cameras: ArrayLike | None = None) -> PairMetric:  # noqa: N803
        """Learn the metric from rows X labelled by identity `y` (and, optionally, the camera of each row)."""
        x, labels, groups = _check_fit_input(X, y, cameras)
        self._scale = float(np.mean(np.einsum("ij,ij->i", x, x)))  # mean squared norm, for scale-free ridges
        self.mean_ = x.mean(axis=0)
        centred = x - self.mean_
        # When d > n the data span at most n dimensions: work in an orthonormal basis of that span (XQDA.m's QR
        # step), which makes every covariance n x n instead of d x d and changes no distance. The basis comes from
        # the n x n Gram matrix (one BLAS product, several times faster than a QR of the d x n matrix).
        if x.shape[1] > x.shape[0]:
            values, vectors = np.linalg.eigh(centred @ centred.T)
            kept = values > values.max() * 1e-10
            values, vectors = values[kept], vectors[:, kept]
            reduced = vectors * np.sqrt(values)
            basis = centred.T @ (vectors / np.sqrt(values))
        else:
            basis, reduced = None, centred
        projection, eigenvalues = self._learn(reduced, labels, groups)
        full = projection if basis is None else basis @ projection
        self.components_ = full.astype(np.float32)
        self.eigenvalues_ = eigenvalues.astype(np.float32)
        self.mean_ = self.mean_.astype(np.float32)
        self.n_components_ = int(full.shape[1])
        self.n_features_in_ = int(x.shape[1])
        return self

    def project(self, X: ArrayLike) -> NDArray[np.float32]:  # noqa: N803
        """(n, n_components_) z = P^T (x - mean_): squared Euclidean distances here are the learned metric's."""
        check_is_fitted(self, "components_")
        x = _check_rows(X, "X")
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[1]} features, but {type(self).__name__} was fitted on {self.n_features_in_}"
            )
        return np.asarray((x - self.mean_) @ self.components_, np.float32)

    def transform(self, X: ArrayLike) -> NDArray[np.float32]:  # noqa: N803
        """(n, n_components_) unit rows of `project(X)`: cosine similarity here ranks as the learned metric."""
        return l2_normalise(self.project(X))

    def fit_transform(self, X: ArrayLike, y: ArrayLike, cameras: ArrayLike | None = None) -> NDArray[np.float32]:  # noqa: N803
        return self.fit(X, y, cameras).transform(X)

    @property
    def digest(self) -> str:
        """10 hex characters from the learned arrays: names the vector space in a model version."""
        check_is_fitted(self, "components_")
        h = hashlib.sha256(self.name.encode())
        for array in (self.mean_, self.components_):
            h.update(np.ascontiguousarray(array, "<f4").tobytes())
        return h.hexdigest()[:10]

    def save(self, path: str | Path) -> Path:
        """Write the fitted metric to one `.npz` atomically (a crash leaves the old file or the new one)."""
        check_is_fitted(self, "components_")
        buffer = io.BytesIO()
        header = {"format": _FORMAT, "metric": self.name, "params": self.get_params()}
        np.savez(
            buffer,
            header=np.array(json.dumps(header, sort_keys=True)),
            mean=self.mean_,
            components=self.components_,
            eigenvalues=self.eigenvalues_,
        )
        return atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> PairMetric:
        """A fitted metric from `save`'s file; ValueError naming the file when it is not one (or not of `cls`)."""
        file = Path(path)
        try:
            with np.load(file, allow_pickle=False) as data:
                header = json.loads(str(data["header"][()]))
                mean, components, eigenvalues = data["mean"], data["components"], data["eigenvalues"]
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"{file} is not a saved metric: {exc}") from None
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise ValueError(f"{file}: unsupported metric file format {header!r}, expected format {_FORMAT}")
        name = header.get("metric")
        if name not in METRICS:
            raise ValueError(f"{file}: unknown metric {name!r}; choose from {sorted(METRICS)}")
        kind = METRICS[str(name)]
        if not (isinstance(kind, type) and issubclass(kind, cls)):
            raise ValueError(f"{file} holds a {name!r} metric, not {cls.__name__}")
        d, r = components.shape if components.ndim == 2 else (-1, -1)
        if r < 1 or mean.shape != (d,) or eigenvalues.shape != (r,) or components.dtype != np.float32:
            raise ValueError(
                f"{file}: inconsistent arrays (mean {mean.shape}, components {components.shape} {components.dtype}, "
                f"eigenvalues {eigenvalues.shape})"
            )
        if not (np.isfinite(mean).all() and np.isfinite(components).all()):
            raise ValueError(f"{file}: the metric's arrays contain NaN or infinite values")
        try:
            metric = kind(**dict(METRICS.validate(str(name), header.get("params"))))
        except ValueError as exc:
            raise ValueError(f"{file}: {exc}") from None
        metric.mean_, metric.components_ = mean.astype(np.float32), components
        metric.eigenvalues_ = eigenvalues.astype(np.float32)
        metric.n_components_, metric.n_features_in_ = int(r), int(d)
        return metric

    @abstractmethod
    def _learn(
        self, x: NDArray[np.float64], labels: NDArray[np.int64], groups: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(projection r' x r, eigenvalues r) in the reduced space of the centred rows `x`."""


class XqdaParams(BackendParams):
    """Cross-view Quadratic Discriminant Analysis (Liao et al., CVPR 2015)."""

    reg: float = Field(
        0.00033,
        gt=0,
        description="Ridge added to the same-pair covariance, per unit of the rows' mean squared norm (so it does "
        "not depend on the features' scale; 0.00033 is XQDA.m's lambda = 0.001 on LOMO's three unit blocks). "
        "Larger is steadier with few training people, smaller trusts rare directions more.",
    )
    n_components: int | None = Field(
        None,
        ge=1,
        description="Most dimensions kept; null keeps every direction where different pairs vary more than same "
        "pairs (eigenvalue > 1), the reference's choice.",
    )


@METRICS.register("xqda", params=XqdaParams)
class XQDA(PairMetric):
    """A subspace W where different pairs vary most relative to same pairs, then M = inv(S_I') - inv(S_E').

    W solves S_E w = lambda S_I w (the generalised Rayleigh quotient); with W normalised so that W^T S_I W = I,
    W^T S_E W = diag(lambda) and M = diag(1 - 1 / lambda), so z = sqrt(1 - 1/lambda) W^T x: the kept directions are
    those with lambda > 1, where M is positive.
    """

    name = "xqda"

    def __init__(self, reg: float = 0.00033, n_components: int | None = None) -> None:
        self.reg = reg
        self.n_components = n_components

    def _learn(
        self, x: NDArray[np.float64], labels: NDArray[np.int64], groups: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        _check_positive(self.reg, "reg")
        same, different = _pair_covariances(x, labels, groups)
        same += self.reg * self._scale * np.eye(len(same))
        values, vectors = scipy.linalg.eigh(different, same)
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
        keep = max(1, int((values > 1.0).sum()))
        if self.n_components is not None:
            keep = min(keep, int(self.n_components))
        values, vectors = values[:keep], vectors[:, :keep]
        weights = np.sqrt(np.clip(1.0 - 1.0 / np.maximum(values, 1e-12), 0.0, None))
        if not weights.any():  # no direction separates (lambda <= 1 everywhere): keep the best one unweighted
            weights = np.ones_like(weights)
        return vectors * weights, values


class KissmeParams(BackendParams):
    """KISSME (Koestinger et al., CVPR 2012): the log-likelihood ratio of same vs different pair differences."""

    n_components: int = Field(
        100,
        ge=1,
        description="PCA dimensions before the metric (KISSME needs invertible pair covariances); more keeps more "
        "detail but needs more training pairs for a stable same-pair covariance.",
    )
    reg: float = Field(
        0.0,
        ge=0,
        description="Ridge on both pair covariances as a share of their mean variance; raise it when few same "
        "pairs make the same-pair covariance near-singular.",
    )


@METRICS.register("kissme", params=KissmeParams)
class KISSME(PairMetric):
    """M = inv(S_same) - inv(S_diff) in a PCA space, its negative eigenvalues clipped (the PSD projection)."""

    name = "kissme"

    def __init__(self, n_components: int = 100, reg: float = 0.0) -> None:
        self.n_components = n_components
        self.reg = reg

    def _learn(
        self, x: NDArray[np.float64], labels: NDArray[np.int64], groups: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if self.reg < 0:
            raise ValueError(f"reg must be >= 0, got {self.reg}")
        _, singular, vt = np.linalg.svd(x, full_matrices=False)
        rank = int((singular > singular[0] * 1e-10).sum()) if len(singular) else 0
        p = min(int(self.n_components), rank)
        if p < 1:
            raise ValueError("X has no variance to learn a metric from")
        pca = vt[:p].T
        same, different = _pair_covariances(x @ pca, labels, groups)
        for cov in (same, different):
            cov += (self.reg * np.trace(cov) / p) * np.eye(p)
        try:
            metric = np.linalg.inv(same) - np.linalg.inv(different)
        except np.linalg.LinAlgError:
            raise ValueError(
                f"the same-pair covariance in {p} PCA dimensions is singular: lower n_components or raise reg"
            ) from None
        values, vectors = np.linalg.eigh((metric + metric.T) / 2)
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
        keep = max(1, int((values > 0).sum()))
        values, vectors = values[:keep], vectors[:, :keep]
        return pca @ (vectors * np.sqrt(np.clip(values, 0.0, None))), values


class LdaParams(BackendParams):
    """Regularised linear discriminant analysis over identities."""

    n_components: int | None = Field(
        None,
        ge=1,
        description="Discriminant directions kept; null keeps all (identities - 1). Fewer is a smaller, coarser space.",
    )
    shrinkage: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Share of the within-identity covariance replaced by its mean variance times I; more is "
        "steadier with few images per identity, less trusts the measured covariance.",
    )


@METRICS.register("lda", params=LdaParams)
class RegularisedLDA(PairMetric):
    """Directions maximising between-identity over within-identity variance (the latter from same pairs, shrunk).

    With `cameras`, the within-identity covariance comes from cross-camera same pairs only, so what a camera change
    does to a person counts as within-identity variation.
    """

    name = "lda"

    def __init__(self, n_components: int | None = None, shrinkage: float = 0.1) -> None:
        self.n_components = n_components
        self.shrinkage = shrinkage

    def _learn(
        self, x: NDArray[np.float64], labels: NDArray[np.int64], groups: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if not 0.0 <= self.shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1], got {self.shrinkage}")
        same, _ = _pair_covariances(x, labels, groups)
        within = same / 2.0  # the covariance of a difference of two draws is twice the draws' covariance
        r = len(within)
        within = (1.0 - self.shrinkage) * within + self.shrinkage * (np.trace(within) / r) * np.eye(r)
        n_classes = int(labels.max()) + 1
        indicator = scipy.sparse.csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))))
        counts = np.asarray(indicator.sum(axis=1)).ravel()
        means = (indicator @ x) / counts[:, None]  # x is centred: these are deviations from the grand mean
        between = (means * counts[:, None]).T @ means / counts.sum()
        values, vectors = scipy.linalg.eigh(between, within + 1e-12 * np.eye(r))
        order = np.argsort(values)[::-1]
        keep = min(n_classes - 1, r) if self.n_components is None else min(int(self.n_components), r)
        keep = max(1, keep)
        return vectors[:, order[:keep]], values[order[:keep]]


class MetricEmbedder:
    """`base`'s embeddings mapped into a fitted metric's space (unit vectors, `metric.n_components_` wide)."""

    def __init__(self, base: Embedder, metric: PairMetric) -> None:
        if not hasattr(metric, "components_"):
            raise ValueError(f"metric {type(metric).__name__} is not fitted; fit it on base embeddings first")
        if metric.n_features_in_ != base.dim:
            raise ValueError(
                f"metric was fitted on {metric.n_features_in_}-d vectors but base embedder {base.model_id!r} "
                f"gives {base.dim}-d"
            )
        self.base, self.metric = base, metric
        self.dim = int(metric.n_components_)
        self.model_id = f"{base.model_id}+{metric.name}"
        self.version = f"{base.version}+{metric.name}-{metric.digest}"

    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        check_crops(crops)
        if not crops:
            return np.zeros((0, self.dim), np.float32)
        return self.metric.transform(self.base.embed(crops))


class LearnedParams(BackendParams):
    """The base embedder and the saved metric fitted on its output."""

    base: Any = Field(
        description="The embedder the metric was fitted on: `{name: ..., params: {...}}` (as an ensemble member), "
        "or an embedder. Its cost is the learned embedder's cost; the metric adds one matrix product."
    )
    model: Path = Field(description="The metric's `.npz`, written by `PairMetric.save` (XQDA, KISSME or LDA).")

    @field_validator("base")
    @classmethod
    def _base_is_an_embedder_or_its_config(cls, base: Any) -> Any:
        if isinstance(base, Mapping):
            if "name" not in base or set(base) - {"name", "params"}:
                raise ValueError(f"base takes 'name' and 'params', got {dict(base)}")
            EMBEDDERS.validate(str(base["name"]), base.get("params"))
        return base


@register_embedder("learned", params=LearnedParams)
def learned_embedder(base: Embedder | Mapping[str, Any], model: str | Path) -> MetricEmbedder:
    """A `MetricEmbedder` from config: the base built by name, the metric loaded from `model`."""
    built = make_embedder(str(base["name"]), base.get("params")) if isinstance(base, Mapping) else base
    return MetricEmbedder(built, load_metric(model))


def _pair_covariances(
    x: NDArray[np.float64], labels: NDArray[np.int64], groups: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean (x_i - x_j)(x_i - x_j)^T over same-identity and over different-identity pairs of different groups.

    For a pair mask A: sum_ij A_ij (x_i - x_j)(x_i - x_j)^T = 2 (X^T diag(A 1) X - X^T A X), and A is a difference
    of block masks (same identity, same group, same identity and group), so X^T A X comes from block sums.
    """
    n = len(x)
    by_label, by_group = _indicator(labels), _indicator(groups)
    by_both = _indicator(labels * (int(groups.max()) + 1) + groups)
    label_n, group_n, both_n = (np.asarray(m.sum(axis=1)).ravel() for m in (by_label, by_group, by_both))
    label_sums, group_sums, both_sums = by_label @ x, by_group @ x, by_both @ x
    total = x.sum(axis=0)
    label_of, group_of = labels, groups
    both_of = np.unique(labels * (int(groups.max()) + 1) + groups, return_inverse=True)[1]
    same_degree = label_n[label_of] - both_n[both_of]
    cross_degree = n - group_n[group_of]
    different_degree = cross_degree - same_degree
    same_block = label_sums.T @ label_sums - both_sums.T @ both_sums
    cross_block = np.outer(total, total) - group_sums.T @ group_sums
    out = []
    for degree, block, what in (
        (same_degree, same_block, "same identity"),
        (different_degree, cross_block - same_block, "different identities"),
    ):
        pairs = degree.sum()
        if pairs <= 0:
            across = " across cameras" if len(np.unique(groups)) < n else ""
            raise ValueError(f"y gives no pair of {what}{across} to learn from")
        cov = 2.0 * ((x * degree[:, None]).T @ x - block) / pairs
        out.append((cov + cov.T) / 2.0)
    return out[0], out[1]


def _indicator(codes: NDArray[np.int64]) -> scipy.sparse.csr_matrix:
    """(groups, n) 0/1 matrix: row g marks the rows whose code is the g-th distinct code."""
    _, inverse = np.unique(codes, return_inverse=True)
    return scipy.sparse.csr_matrix((np.ones(len(codes)), (inverse, np.arange(len(codes)))))


def _check_fit_input(
    X: ArrayLike,  # noqa: N803
    y: ArrayLike,
    cameras: ArrayLike | None,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Rows as float64, identities and groups as codes 0..k-1 (groups: cameras, or every row its own)."""
    x = _check_rows(X, "X").astype(np.float64)
    labels_in = np.asarray(y)
    if labels_in.shape != (len(x),):
        raise ValueError(f"y must give one identity per row of X ({len(x)}), got shape {labels_in.shape}")
    labels = np.unique(labels_in, return_inverse=True)[1].astype(np.int64)
    if cameras is None:
        groups = np.arange(len(x), dtype=np.int64)
    else:
        cams = np.asarray(cameras)
        if cams.shape != (len(x),):
            raise ValueError(f"cameras must name one camera per row of X ({len(x)}), got shape {cams.shape}")
        groups = np.unique(cams, return_inverse=True)[1].astype(np.int64)
    if len(np.unique(labels)) < 2:
        raise ValueError("y must hold at least two identities")
    return x, labels, groups


def _check_rows(X: ArrayLike, name: str) -> NDArray[np.float32]:  # noqa: N803
    x = np.asarray(X, np.float32)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (rows, features), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _check_positive(value: float, name: str) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
