"""The settings `photos tune` chooses, as one file (`tuned.json`) the other photos commands load.

The file holds the embedder (with the ensemble weights), the calibration, the probability threshold, the camera
means, the drift watch's reference similarities and the evidence they were chosen on. Vectors made with these
settings are named by them: the camera centring changes the vector space, so it is part of the model version and a
store never compares vectors across it.

Camera names (the keys of the camera means) are `trackid.sources.photos`'s: since issue #15 a folder camera is
named relative to the root given, not after it ("cam1", not "tunephotos/cam1"), and files say so with
`camera_keys: 2`. A file without it is mapped on loading: a folder name's first part (the old root's name) is
dropped, the means and the vector space's name (the model version stores hold) kept, so stores ingested with it
stay comparable; where two old names would become one, the file is refused and `tune` must run again.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
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
from trackid.identity.stores import GalleryStore, Sighting
from trackid.pipelines.photos.learned import relative_metric_files, resolve_metric_files

__all__ = ["CAMERA_KEYS", "Tuned"]

CAMERA_KEYS = 2
"""How the camera names in `camera_means` are made; 1 (files without the key): a folder camera's name began with
the name of the root folder `tune` was given."""
log = logging.getLogger(__name__)


@dataclass
class Tuned:
    """What `tune` chose, with the evidence: the ensemble, its calibration and the probability threshold.

    `centring` holds each camera's mean member vectors (from the tuning photos); a camera `tune` never saw is
    matched as it is, and ingest warns of it. `space` names the centred vector space when it is not the centring's
    own digest: the means of a file from before `CAMERA_KEYS` 2, renamed, keep the name their vectors had.
    """

    embedder: EmbedderConfig
    calibrator: MatchCalibrator
    threshold: float
    target_false_positive_rate: float
    evidence: dict[str, Any] = field(default_factory=dict)
    centring: CameraCentring | None = None
    space: str | None = None
    competitor_weight: float = 0.0
    decision_reference: NDArray[np.float64] | None = None
    """The calibrated probabilities of tune's replayed decisions: what the drift watch compares a decided camera's
    with (they are the decision score, which a crowd of returning individuals or a bigger gallery moves far less
    than the raw best similarity); None in older files, which watch the raw similarities."""
    """How much the best other individual's similarity counts against a candidate (`Gallery`); 0 in older files."""
    drift_reference: NDArray[np.float64] | None = None
    """The best-match similarities of tune's replayed ingest, which the drift watch compares cameras with (None
    in files from before issue #16: no drift watch until re-tuned)."""

    def save(self, folder: Path) -> Path:
        payload = {
            "embedder": relative_metric_files(self.embedder.model_dump(), folder),
            "calibrator": json.loads(self.calibrator.to_json()),
            "threshold": self.threshold,
            "target_false_positive_rate": self.target_false_positive_rate,
            "camera_keys": CAMERA_KEYS,
            "competitor_weight": self.competitor_weight,
            "camera_means": None if self.centring is None else self.centring.to_json(),
            "evidence": self.evidence,
        }
        if self.space is not None:
            payload["centred_space"] = self.space
        if self.drift_reference is not None:
            payload["drift_reference"] = [round(float(v), 6) for v in self.drift_reference]
        if self.decision_reference is not None:
            payload["decision_reference"] = [round(float(v), 6) for v in self.decision_reference]
        return atomic_write_text(folder / "tuned.json", json.dumps(payload) + "\n")

    @classmethod
    def load(cls, folder_or_file: Path) -> Tuned:
        path = folder_or_file / "tuned.json" if folder_or_file.is_dir() else folder_or_file
        if not path.is_file():
            raise FileNotFoundError(f"tuned settings not found: {path} (run `trackid photos tune` first)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            means = data.get("camera_means")
            centring = None if means is None else CameraCentring.from_json(means)
            space = data.get("centred_space")
            reference = data.get("drift_reference")
            decided = data.get("decision_reference")
            if centring is not None and data.get("camera_keys", 1) == 1:
                centring, space = _renamed(centring, path)
            return cls(
                embedder=EmbedderConfig.model_validate(resolve_metric_files(data["embedder"], path.parent)),
                calibrator=MatchCalibrator.from_json(json.dumps(data["calibrator"])),
                threshold=float(data["threshold"]),
                target_false_positive_rate=float(data["target_false_positive_rate"]),
                evidence=data.get("evidence", {}),
                centring=centring,
                space=None if space is None else str(space),
                competitor_weight=float(data.get("competitor_weight", 0.0)),
                drift_reference=None if reference is None else np.asarray(reference, np.float64),
                decision_reference=None if decided is None else np.asarray(decided, np.float64),
            )
        except _RefusedError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: not a tuned.json written by `trackid photos tune` ({exc})") from None

    def make_embedder(self) -> Embedder:
        return make_embedder(self.embedder.name, **self.embedder.params)

    def model_version(self, embedder: Embedder) -> str:
        """The embedder's version, plus the camera centring when there is one (its vectors are another space)."""
        if self.centring is None:
            return embedder.version
        return f"{embedder.version}+centred-{self.space or self.centring.digest}"

    def unknown_cameras(self, cameras: Sequence[str]) -> list[str]:
        """The cameras among `cameras` that the centring has no mean for (none when nothing is centred)."""
        return [] if self.centring is None else sorted(set(cameras) - set(self.centring.means_))

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

    def sighting_adjuster(
        self, embedder: Embedder, uncentred: Counter[str]
    ) -> Callable[[NDArray[np.float32], Sequence[Sighting]], NDArray[np.float32]]:
        """`reembed`'s `adjust` for these settings: each sighting's fresh vector centred by its camera (`adjust`),
        counting into `uncentred` the sightings of cameras the centring has no mean for."""

        def adjust(vectors: NDArray[np.float32], sightings: Sequence[Sighting]) -> NDArray[np.float32]:
            cameras: list[Any] = [s.camera for s in sightings]  # a sighting without a camera is matched uncentred
            for camera in self.unknown_cameras([c for c in cameras if c is not None]):
                uncentred[camera] += cameras.count(camera)
            return self.adjust(embedder, vectors, cameras)

        return adjust

    def gallery(self, store: GalleryStore, embedder: Embedder, config: GalleryConfig) -> Gallery:
        """The gallery deciding with these settings (the embedder's model, calibration, threshold) in `store`."""
        return Gallery(
            store,
            model_id=embedder.model_id,
            model_version=self.model_version(embedder),
            calibrator=self.calibrator,
            threshold=self.threshold,
            competitor_weight=self.competitor_weight,
            log_retention=config.log_retention,
        )


class _RefusedError(ValueError):
    """A tuned.json that was read but cannot be used as it is (the message says why and what to do)."""


def _renamed(centring: CameraCentring, path: Path) -> tuple[CameraCentring, str | None]:
    """A `CAMERA_KEYS` 1 file's means under today's camera names, and the vector space's old name if any changed.
    EXIF names ("Make Model #serial") and single folder names are the same in both layouts."""
    renamed: dict[str, str] = {}
    for old in centring.means_:
        _, slash, rest = old.partition("/")
        new = rest if slash and rest and " #" not in old else old
        if new in renamed.values():
            other = next(k for k, v in renamed.items() if v == new)
            raise _RefusedError(
                f"{path}: cameras {other!r} and {old!r} were tuned as two but are one camera, {new!r}, under the "
                "camera names of this version (the root folder's name is no longer part of them); re-run "
                "`trackid photos tune` to learn their means again"
            )
        renamed[old] = new
    if all(old == new for old, new in renamed.items()):
        return centring, None
    log.info("%s: camera names of an older version mapped: %s", path, _changes(renamed))
    means: Mapping[str, Sequence[float]] = {renamed[k]: v.tolist() for k, v in centring.means_.items()}
    return CameraCentring.from_json(means, dims=centring.dims, weights=centring.weights), centring.digest


def _changes(renamed: Mapping[str, str]) -> str:
    return ", ".join(f"{old} -> {new}" for old, new in renamed.items() if old != new)
