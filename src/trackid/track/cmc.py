"""Camera-motion compensation: how the image moved between two frames, so that tracks move with it.

A panning or shaking camera moves everyone in the image at once; a constant-velocity filter takes that for the
people's own motion and predicts them off target (moving-camera MOT17 sequences lose IoU matches this way).
`CameraMotion` estimates, per frame, the similarity transform (rotation, uniform scale, translation) that maps the
previous frame's pixels onto the current one, from background points only (the detections are masked out, since
people move on their own):

- `sparse` (default): corners tracked by pyramidal Lucas-Kanade optical flow, transform fitted with RANSAC
  (`cv2.estimateAffinePartial2D`). Fast, and robust to the people left in the background.
- `ecc`: OpenCV's enhanced correlation coefficient alignment (`cv2.findTransformECC`, affine). Dense and
  precise on textured scenes, several times slower, and it can fail to converge on fast motion (then identity).

Estimation runs on a grey image downscaled to `width` pixels; the transform is returned in full-resolution pixels.
The tracker applies it to its filter state (`BoxKalman.warp`) before predicting.

Without frames (replayed detection files), `shift_from_tracks` estimates the part of the camera's motion that the
tracks' own velocities did not predict: the median displacement between where the tracks that found their
detection were predicted and where they were seen. People walk independently, so in a fixed camera that median is
noise; a camera that pans or jolts moves everyone alike, and the median then stands well clear of its standard
error. The tracker moves the tracks that found no detection by it, so they are not left behind.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numba
import numpy as np
from numpy.typing import NDArray

from trackid.images import check_image

__all__ = ["IDENTITY", "METHODS", "CameraMotion", "estimate_motion", "shift_from_tracks", "warp_boxes", "warp_points"]

Method = Literal["sparse", "ecc"]
METHODS: tuple[Method, ...] = ("sparse", "ecc")
IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
"""The 2x3 affine map that changes nothing: returned whenever the motion cannot be estimated."""
_MIN_POINTS = 10


class CameraMotion:
    """Frame-to-frame camera motion of one video: call it on every frame in order.

    Args:
        method: "sparse" or "ecc" (see the module docstring).
        width: the grey image is downscaled to this width for estimation. Smaller is faster and coarser; 640
            keeps sub-pixel accuracy at full HD (about 0.1 px on MOT17 frames, `bench/cmc.py`).
        max_corners: background points tracked by the sparse method; more is steadier and slower.
    """

    def __init__(self, method: Method = "sparse", width: int = 640, max_corners: int = 600) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if width < 64:
            raise ValueError(f"width must be >= 64 pixels, got {width}")
        self.method, self.width, self.max_corners = method, int(width), int(max_corners)
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame (a new video)."""
        self._previous: NDArray[np.uint8] | None = None
        self._previous_mask: NDArray[np.uint8] | None = None

    def __call__(self, frame: NDArray[np.uint8], boxes: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        """The 2x3 map from the previous frame's pixel coordinates to this frame's (identity for the first frame).

        `boxes` (N, 4) xyxy in this frame are left out of the estimation (moving people are not the camera).
        """
        check_image(frame, "frame")
        scale = min(1.0, self.width / frame.shape[1])
        grey = np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), np.uint8)
        if scale < 1.0:
            grey = np.asarray(cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), np.uint8)
        mask = _background_mask(grey.shape, boxes, scale)
        warp = IDENTITY.copy()
        if self._previous is not None and self._previous.shape == grey.shape:
            warp = estimate_motion(self._previous, grey, self.method, self._previous_mask, self.max_corners)
            warp[:, 2] /= scale  # translation back to full-resolution pixels; the linear part is scale-free
        self._previous, self._previous_mask = grey, mask
        return warp


def estimate_motion(
    previous: NDArray[np.uint8],
    current: NDArray[np.uint8],
    method: Method = "sparse",
    mask: NDArray[np.uint8] | None = None,
    max_corners: int = 600,
) -> NDArray[np.float64]:
    """The 2x3 similarity map taking `previous` pixel coordinates to `current` ones (both grey, same size);
    identity when there is too little texture to tell. `mask` (non-zero = usable) applies to `previous`."""
    if method == "ecc":
        return _ecc(previous, current, mask)
    points = cv2.goodFeaturesToTrack(
        previous, maxCorners=max_corners, qualityLevel=0.01, minDistance=8, blockSize=3, mask=mask
    )
    if points is None or len(points) < _MIN_POINTS:
        return IDENTITY.copy()
    moved, status, _ = cv2.calcOpticalFlowPyrLK(
        previous,
        current,
        points,
        None,
        winSize=(21, 21),
        maxLevel=3,  # type: ignore[call-overload]  # None: no guess
    )
    found = status.ravel() == 1
    if found.sum() < _MIN_POINTS:
        return IDENTITY.copy()
    warp, inliers = cv2.estimateAffinePartial2D(
        points[found], moved[found], method=cv2.RANSAC, ransacReprojThreshold=1.0, maxIters=2000, confidence=0.995
    )
    if warp is None or inliers is None or int(inliers.sum()) < _MIN_POINTS:
        return IDENTITY.copy()
    return np.asarray(warp, np.float64)


def _ecc(
    previous: NDArray[np.uint8], current: NDArray[np.uint8], mask: NDArray[np.uint8] | None
) -> NDArray[np.float64]:
    start = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
    usable = mask if mask is not None else np.full(previous.shape, 255, np.uint8)
    try:
        # ECC finds W with current(W(x)) ~ previous(x): W maps previous coordinates to current ones.
        _, warp = cv2.findTransformECC(previous, current, start, cv2.MOTION_AFFINE, criteria, usable, 5)
    except cv2.error:  # no convergence (fast motion, no texture): better no compensation than a wrong one
        return IDENTITY.copy()
    return np.asarray(warp, np.float64)


def _background_mask(
    shape: tuple[int, ...], boxes: NDArray[np.float64] | None, scale: float
) -> NDArray[np.uint8] | None:
    if boxes is None or len(boxes) == 0:
        return None
    mask = np.full(shape[:2], 255, np.uint8)
    scaled = np.round(np.asarray(boxes, np.float64).reshape(-1, 4) * scale).astype(np.int64)
    height, width = shape[:2]
    for x1, y1, x2, y2 in np.clip(scaled, 0, [width, height, width, height]).tolist():
        mask[y1:y2, x1:x2] = 0
    return mask


def shift_from_tracks(
    predicted: NDArray[np.float64], observed: NDArray[np.float64], z: float, min_tracks: int = 3
) -> NDArray[np.float64] | None:
    """The (2,) image shift common to all tracks this frame, or None where there is none to speak of.

    `predicted`, `observed`: (N, 4) xyxy boxes of N tracks as predicted and as detected; their centres are compared.
    Per axis, the median displacement counts when it lies more than `z` standard errors from zero (the standard
    error of a median, 1.2533 sigma / sqrt(N), with sigma from the median absolute deviation); below `min_tracks`
    tracks nothing counts. Compiled: it runs on every frame, and numpy's median costs tens of microseconds.
    """
    if len(predicted) < min_tracks:
        return None
    shift = _median_shift(np.asarray(predicted, np.float64), np.asarray(observed, np.float64), float(z))
    return shift if shift[0] != 0 or shift[1] != 0 else None


@numba.njit(cache=True, nogil=True)
def _median_shift(predicted: NDArray[np.float64], observed: NDArray[np.float64], z: float) -> NDArray[np.float64]:
    n = len(predicted)
    shift = np.zeros(2)
    moved = np.empty(n)
    for axis in range(2):
        for i in range(n):
            moved[i] = 0.5 * (observed[i, axis] + observed[i, axis + 2] - predicted[i, axis] - predicted[i, axis + 2])
        median = np.median(moved)
        sigma = 1.4826 * np.median(np.abs(moved - median))
        if abs(median) > z * 1.2533 * sigma / np.sqrt(n):
            shift[axis] = median
    return shift


def warp_points(points: NDArray[np.float64], warp: NDArray[np.float64]) -> NDArray[np.float64]:
    """(..., 2) points mapped by a 2x3 affine."""
    return np.asarray(points, np.float64) @ warp[:, :2].T + warp[:, 2]


def warp_boxes(xyxy: NDArray[np.float64], warp: NDArray[np.float64]) -> NDArray[np.float64]:
    """(N, 4) boxes moved by a 2x3 similarity: centres mapped, sizes scaled (boxes stay upright)."""
    boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
    centre = warp_points(0.5 * (boxes[:, :2] + boxes[:, 2:]), warp)
    half = 0.5 * (boxes[:, 2:] - boxes[:, :2]) * np.sqrt(abs(np.linalg.det(warp[:, :2])))
    return np.concatenate([centre - half, centre + half], axis=1)
