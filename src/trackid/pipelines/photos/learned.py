"""The learned member of the photo ensemble: a metric `tune` fits on labelled photos, saved in the tuned folder.

Generic descriptors rank VIPeR's people at 6-15 % rank-1; LOMO with a metric learned on a few hundred labelled
people reaches ~40 % (`bench/reid.py`). `tune` fits the metric (`PhotosConfig.metric`) on the tuning half's
features, cross-camera, writes it as `metric.npz` beside `tuned.json`, and adds it to the ensemble as one more
member (`learned`), so the weight grid, the camera centring and the calibration treat it as any member. In
`tuned.json` the member names the file relative to the tuned folder, so the folder can be moved; in memory the path
is absolute (`Tuned.save` and `Tuned.load` convert).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trackid.config import MetricConfig
from trackid.embed import Embedder, make_embedder
from trackid.embed.metric import MetricEmbedder, make_metric

__all__ = ["METRIC_FILE", "LearnedMember", "fit_learned_member", "relative_metric_files", "resolve_metric_files"]

METRIC_FILE = "metric.npz"


@dataclass(frozen=True)
class LearnedMember:
    """A fitted learned member: the embedder, its config (for `tuned.json`) and the photos' vectors in its space."""

    embedder: MetricEmbedder
    config: dict[str, Any]
    vectors: NDArray[np.float32]


def fit_learned_member(
    metric: MetricConfig,
    crops: list[NDArray[np.uint8]],
    individuals: NDArray[Any],
    cameras: NDArray[Any],
    fit_rows: NDArray[np.bool_],
    folder: Path,
) -> LearnedMember:
    """Describe every crop with `metric.features`, fit the metric on the `fit_rows` (their individuals, across
    cameras when there are several), save it in `folder` and map every crop into its space.

    The caller must not judge the metric on the rows it was fitted on: it maps its training pairs far closer
    than any newcomer's (`tune` keeps them apart from the rows it chooses weights, calibration and threshold on)."""
    features: Embedder = make_embedder(metric.features.name, **metric.features.params)
    described = features.embed(crops)
    several_cameras = len(set(cameras[fit_rows].tolist())) > 1
    learned = make_metric(metric.name, **metric.params).fit(
        described[fit_rows], individuals[fit_rows], cameras[fit_rows] if several_cameras else None
    )
    folder.mkdir(parents=True, exist_ok=True)
    learned.save(folder / METRIC_FILE)
    config = {"name": "learned", "params": {"base": metric.features.model_dump(), "model": str(folder / METRIC_FILE)}}
    return LearnedMember(MetricEmbedder(features, learned), config, learned.transform(described))


def resolve_metric_files(embedder: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """`embedder`'s config (an ensemble's or one member's) with each learned member's relative `model` path made
    absolute under `folder`, the tuned folder it was saved in."""
    return _map_models(embedder, lambda model: model if model.is_absolute() else folder / model)


def relative_metric_files(embedder: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """The inverse for saving: model files inside `folder` named relative to it, so the folder can move."""
    root = folder.resolve()
    return _map_models(embedder, lambda m: m.resolve().relative_to(root) if m.resolve().is_relative_to(root) else m)


def _map_models(embedder: Mapping[str, Any], change: Callable[[Path], Path]) -> dict[str, Any]:
    mapped = dict(embedder)
    params = dict(mapped.get("params") or {})
    if mapped.get("name") == "learned" and "model" in params:
        params["model"] = str(change(Path(str(params["model"]))))
    if "members" in params:
        params["members"] = [_map_models(m, change) if isinstance(m, Mapping) else m for m in params["members"]]
    mapped["params"] = params
    return mapped
