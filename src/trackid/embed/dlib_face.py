"""dlib's 128-d face embeddings (ResNet, LFW 99.38 %) from the models shipped in `face_recognition_models`.

Input crops are face crops (e.g. from a face detector): the whole crop is taken as the face rectangle, the 5-point
shape predictor finds the landmarks, and dlib aligns a 150 x 150 chip from them before the network runs.

dlib's raw vectors are not unit length (norm about 1.46) and dlib's documented rule is "same person when the
Euclidean distance of raw vectors is below 0.6". This embedder L2-normalises like every other, so compare with
cosine similarity; `raw_features` returns the raw vectors for that rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from trackid.artifacts import file_sha256, package_file
from trackid.embed.base import register_embedder
from trackid.embed.crops import check_crops, l2_normalise
from trackid.registry import BackendParams

__all__ = ["DlibFaceEmbedder", "DlibFaceParams", "face_models_dir"]

RECOGNITION_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"  # CC0; the 68-point model's training data bars commercial use


class DlibFaceParams(BackendParams):
    """dlib's face embedder's settings."""

    models_dir: Path | None = Field(
        None,
        description="Folder holding the two `.dat` files; null: the installed `face_recognition_models` package.",
    )
    num_jitters: int = Field(
        0,
        ge=0,
        description="Above 1, averages that many randomly jittered chips: steadier vectors for num_jitters x the time.",
    )
    padding: float = Field(
        0.25,
        ge=0,
        description="Context around the aligned face in the chip; dlib trained with 0.25, and vectors drift from its "
        "training as it moves away.",
    )


@register_embedder("dlib-face", params=DlibFaceParams)
class DlibFaceEmbedder:
    """Face crops -> 128-d unit vectors.

    Args: see `DlibFaceParams`.
    """

    model_id = "dlib-resnet-face-v1"
    dim = 128

    def __init__(self, models_dir: str | Path | None = None, num_jitters: int = 0, padding: float = 0.25) -> None:
        import dlib

        folder = Path(models_dir) if models_dir is not None else face_models_dir()
        recognition, shape = folder / RECOGNITION_MODEL, folder / SHAPE_MODEL
        for path in (recognition, shape):
            if not path.is_file():
                raise FileNotFoundError(f"dlib face model file not found: {path}")
        self.num_jitters = num_jitters
        self.padding = padding
        self.version = file_sha256(recognition)[:12]
        self.shape_predictor_ = dlib.shape_predictor(str(shape))
        self.recognizer_ = dlib.face_recognition_model_v1(str(recognition))
        self._rectangle = dlib.rectangle

    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        return l2_normalise(self.raw_features(crops))

    def raw_features(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """dlib's un-normalised descriptors (norm ~1.46): same person when Euclidean distance < 0.6."""
        check_crops(crops)
        out = np.empty((len(crops), self.dim), np.float32)
        for i, crop in enumerate(crops):
            # dlib wants contiguous RGB; dlib's batch call is no faster on CPU, so one crop at a time.
            rgb = np.ascontiguousarray(crop[..., ::-1])
            shape = self.shape_predictor_(rgb, self._rectangle(0, 0, rgb.shape[1] - 1, rgb.shape[0] - 1))
            out[i] = self.recognizer_.compute_face_descriptor(rgb, shape, self.num_jitters, self.padding)
        return out


def face_models_dir() -> Path:
    """The `models` folder of `face_recognition_models` (its own import needs pkg_resources)."""
    return package_file("face_recognition_models", "models", "pip install face_recognition_models==0.3.0")
