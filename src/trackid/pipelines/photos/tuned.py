"""The settings `photos tune` chooses, as one file (`tuned.json`) the other photos commands load.

The file holds the embedder (with the ensemble weights), the calibration, the probability threshold, the camera
means and the evidence they were chosen on. Vectors made with these settings are named by them: the camera centring
changes the vector space, so it is part of the model version and a store never compares vectors across it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trackid.artifacts import atomic_write_text
from trackid.config import EmbedderConfig, GalleryConfig
from trackid.embed import Embedder, make_embedder
from trackid.embed.centring import CameraCentring
from trackid.embed.ensemble import EnsembleEmbedder
from trackid.identity.calibration import MatchCalibrator
from trackid.identity.gallery import Gallery
from trackid.identity.stores import GalleryStore

__all__ = ["Tuned"]


@dataclass
class Tuned:
    """What `tune` chose, with the evidence: the ensemble, its calibration and the probability threshold.

    `centring` holds each camera's mean member vectors (from the tuning photos); a camera `tune` never saw is
    matched as it is, and the ingest report names it.
    """

    embedder: EmbedderConfig
    calibrator: MatchCalibrator
    threshold: float
    target_false_positive_rate: float
    evidence: dict[str, Any] = field(default_factory=dict)
    centring: CameraCentring | None = None

    def save(self, folder: Path) -> Path:
        payload = {
            "embedder": self.embedder.model_dump(),
            "calibrator": json.loads(self.calibrator.to_json()),
            "threshold": self.threshold,
            "target_false_positive_rate": self.target_false_positive_rate,
            "camera_means": None if self.centring is None else self.centring.to_json(),
            "evidence": self.evidence,
        }
        return atomic_write_text(folder / "tuned.json", json.dumps(payload) + "\n")

    @classmethod
    def load(cls, folder_or_file: Path) -> Tuned:
        path = folder_or_file / "tuned.json" if folder_or_file.is_dir() else folder_or_file
        if not path.is_file():
            raise FileNotFoundError(f"tuned settings not found: {path} (run `trackid photos tune` first)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            means = data.get("camera_means")
            return cls(
                embedder=EmbedderConfig.model_validate(data["embedder"]),
                calibrator=MatchCalibrator.from_json(json.dumps(data["calibrator"])),
                threshold=float(data["threshold"]),
                target_false_positive_rate=float(data["target_false_positive_rate"]),
                evidence=data.get("evidence", {}),
                centring=None if means is None else CameraCentring.from_json(means),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: not a tuned.json written by `trackid photos tune` ({exc})") from None

    def make_embedder(self) -> Embedder:
        return make_embedder(self.embedder.name, **self.embedder.params)

    def model_version(self, embedder: Embedder) -> str:
        """The embedder's version, plus the camera centring when there is one (its vectors are another space)."""
        return embedder.version if self.centring is None else f"{embedder.version}+centred-{self.centring.digest}"

    def adjust(self, embedder: Embedder, vectors: NDArray[np.float32], cameras: Sequence[str]) -> NDArray[np.float32]:
        """What ingest and reembed do to fresh embeddings before they meet the gallery: `embedder`'s joined output
        centred member by member, its weights kept."""
        if self.centring is None:
            return vectors
        if isinstance(embedder, EnsembleEmbedder):
            dims, weights = list(embedder.dims), [float(w) for w in embedder.weights]
        else:
            dims, weights = [embedder.dim], [1.0]
        return self.centring.set_params(dims=dims, weights=weights).transform(vectors, np.asarray(cameras))

    def gallery(self, store: GalleryStore, embedder: Embedder, config: GalleryConfig) -> Gallery:
        """The gallery deciding with these settings (the embedder's model, calibration, threshold) in `store`."""
        return Gallery(
            store,
            model_id=embedder.model_id,
            model_version=self.model_version(embedder),
            calibrator=self.calibrator,
            threshold=self.threshold,
            log_retention=config.log_retention,
        )
