"""Cameras on a ground plane: image pixels <-> ground points, with how far a foot point can be trusted.

Everything across views meets on the ground plane (z = 0). A view is a homography between its image and that plane:
built from OpenCV calibration files (intrinsics K and extrinsics rvec / tvec, WILDTRACK's layout: the plane's
homography is K [r1 r2 t]) or given directly (EPFL's `Homography.txt`, image -> ground). `unit` converts the
calibration's world unit to the ground unit used downstream (WILDTRACK's centimetres -> metres: 0.01).

A box's foot point (bottom centre) is where the person stands, but its pixel is uncertain (box jitter, feet hidden),
and one pixel covers more ground the farther it is from the camera. The covariance of the ground point is the pixel
covariance pushed through the homography's Jacobian, so it grows with distance by construction; a box cut by the
image's bottom edge has its feet below the frame, so its vertical pixel spread grows with the box's height.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["CalibrationError", "GroundCamera", "GroundPoints"]

FloatArray = NDArray[np.float64]


class CalibrationError(ValueError):
    """A camera's calibration is missing, unreadable or unusable; the message names the camera and the file."""


@dataclass(frozen=True)
class GroundPoints:
    """Ground positions (N, 2), their covariances (N, 2, 2), and which are usable (foot point below the horizon)."""

    xy: FloatArray
    covariance: FloatArray
    valid: NDArray[np.bool_]


@dataclass(frozen=True)
class GroundCamera:
    """One view's image <-> ground-plane mapping.

    Args:
        name: the view (as its detections and ground truth name it).
        to_ground: 3x3 homography, image pixel -> ground point (ground units).
        image_size: (width, height) in pixels, to tell a box cut by the bottom edge; None: never cut.
        foot_sigma: pixel standard deviation of a foot point, as a share of the box's (width, height). Raising it
            trusts single views less when views are fused (and joins more boxes into one person). (0.08, 0.1) was
            chosen on WILDTRACK's first 100 frames among (0.05, 0.06), (0.08, 0.1), (0.1, 0.15): cross-view MODA
            at 0.5 m 77.4 / 83.2 / 77.8; EPFL Terrace, not used to choose, 51.0 / 55.0 / 57.0 (`bench/multicam.py`).
        cut_sigma: extra vertical standard deviation, as a share of the box height, when the box touches the
            image's bottom edge (the feet are outside the frame).
        position: where the camera stands on the ground (ground units), when the calibration says (OpenCV
            extrinsics: the centre -R^T t); a homography alone does not.
        projection: the 3x4 camera matrix from world points in ground units (z up from the ground, in the same
            units) to pixels, when the calibration is a full one (OpenCV); what triangulation needs.
    """

    name: str
    to_ground: FloatArray
    image_size: tuple[int, int] | None = None
    foot_sigma: tuple[float, float] = (0.08, 0.1)
    cut_sigma: float = 0.5
    position: tuple[float, float] | None = None
    projection: FloatArray | None = None

    def __post_init__(self) -> None:
        h = np.asarray(self.to_ground, np.float64)
        if h.shape != (3, 3) or not np.isfinite(h).all():
            raise CalibrationError(f"camera {self.name!r}: the homography must be a finite 3x3 matrix, got {h.shape}")
        if np.linalg.cond(h) > 1e12:  # scale-free: a homography is defined up to scale
            raise CalibrationError(f"camera {self.name!r}: the homography is singular (it maps the image to a line)")
        object.__setattr__(self, "to_ground", h)

    @classmethod
    def from_homography(cls, name: str, path: Path, *, unit: float = 1.0, **options: object) -> GroundCamera:
        """A view from a text file holding the 3x3 image -> ground homography (EPFL's `Homography.txt`)."""
        try:
            values = np.array(Path(path).read_text(encoding="utf-8").split(), np.float64)
        except FileNotFoundError:
            raise CalibrationError(f"camera {name!r}: homography file not found: {path}") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CalibrationError(
                f"camera {name!r}: {path} is not a whitespace-separated 3x3 matrix ({exc})"
            ) from None
        if values.size != 9:
            raise CalibrationError(f"camera {name!r}: {path} holds {values.size} numbers, a homography has 9")
        return cls(name, np.diag([unit, unit, 1.0]) @ values.reshape(3, 3), **options)  # type: ignore[arg-type]

    @classmethod
    def from_opencv(
        cls, name: str, intrinsics: Path, extrinsics: Path, *, unit: float = 1.0, **options: object
    ) -> GroundCamera:
        """A view from OpenCV XML files: `camera_matrix` (and `distortion_coefficients`, which must be zero: use
        undistorted boxes) in `intrinsics`, `rvec` and `tvec` in `extrinsics` (world unit x `unit` = ground unit)."""
        k = _xml_required(name, intrinsics, "camera_matrix", 9).reshape(3, 3)
        distortion = _xml_matrix(name, intrinsics, "distortion_coefficients", None, required=False)
        if distortion is not None and np.abs(distortion).max(initial=0.0) > 1e-9:
            raise CalibrationError(
                f"camera {name!r}: {intrinsics} has non-zero distortion; undistort the boxes and give the "
                "zero-distortion intrinsics (WILDTRACK's intrinsic_zero)"
            )
        rvec = _xml_required(name, extrinsics, "rvec", 3)
        tvec = _xml_required(name, extrinsics, "tvec", 3)
        rotation, _ = cv2.Rodrigues(rvec.reshape(3, 1))
        plane_to_image = k @ np.column_stack([rotation[:, 0], rotation[:, 1], tvec])
        if np.linalg.cond(plane_to_image) > 1e12:
            raise CalibrationError(f"camera {name!r}: {extrinsics} puts the camera in the ground plane")
        to_ground = np.diag([unit, unit, 1.0]) @ np.linalg.inv(plane_to_image)
        centre = -rotation.T @ tvec * unit
        options.setdefault("position", (float(centre[0]), float(centre[1])))
        options.setdefault("projection", k @ np.column_stack([rotation, tvec]) @ np.diag([1 / unit] * 3 + [1.0]))
        return cls(name, to_ground, **options)  # type: ignore[arg-type]

    def ground(self, pixels: ArrayLike) -> tuple[FloatArray, NDArray[np.bool_]]:
        """Ground points of image pixels (N, 2), and which lie on the ground side of the horizon (the others are
        NaN). The image's bottom centre sees the ground in any camera that films people standing, so pixels on its
        side of the horizon line (w = 0) are ground; without `image_size` only the horizon itself is refused."""
        xy, w = _apply(self.to_ground, pixels)
        if self.image_size is None:
            valid = np.abs(w) > 1e-12
        else:
            _, ref = _apply(self.to_ground, [[self.image_size[0] / 2, self.image_size[1] - 1.0]])
            valid = np.sign(w) == np.sign(ref[0])
        return np.where(valid[:, None], xy, np.nan), valid

    def image(self, ground: ArrayLike) -> FloatArray:
        """Image pixels (N, 2) of ground points (N, 2)."""
        xy, _ = _apply(np.asarray(np.linalg.inv(self.to_ground), np.float64), ground)
        return xy

    def foot_points(self, boxes: ArrayLike) -> GroundPoints:
        """Ground position and covariance of each box's foot point (boxes as x1, y1, x2, y2 pixels)."""
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        foot = np.column_stack([(b[:, 0] + b[:, 2]) / 2, b[:, 3]])
        xy, valid = self.ground(foot)
        width, height = np.maximum(b[:, 2] - b[:, 0], 1.0), np.maximum(b[:, 3] - b[:, 1], 1.0)
        sx, sy = self.foot_sigma[0] * width, self.foot_sigma[1] * height
        if self.image_size is not None:
            cut = b[:, 3] >= self.image_size[1] - 1
            sy = np.where(cut, np.hypot(sy, self.cut_sigma * height), sy)
        pixel_cov = np.zeros((len(b), 2, 2))
        pixel_cov[:, 0, 0], pixel_cov[:, 1, 1] = sx**2, sy**2
        jac = _jacobian(self.to_ground, foot)
        cov = jac @ pixel_cov @ np.transpose(jac, (0, 2, 1))
        return GroundPoints(xy, np.where(valid[:, None, None], cov, np.nan), valid)


def _apply(h: FloatArray, points: ArrayLike) -> tuple[FloatArray, FloatArray]:
    p = np.asarray(points, np.float64).reshape(-1, 2)
    homogeneous = np.column_stack([p, np.ones(len(p))]) @ h.T
    w = homogeneous[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return homogeneous[:, :2] / w[:, None], w


def _jacobian(h: FloatArray, points: FloatArray) -> FloatArray:
    """d(ground)/d(pixel) of the homography at each point, (N, 2, 2)."""
    homogeneous = np.column_stack([points, np.ones(len(points))]) @ h.T
    w = homogeneous[:, 2]
    projected = homogeneous[:, :2] / w[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return (h[None, :2, :2] - projected[:, :, None] * h[None, 2:3, :2]) / w[:, None, None]


def _xml_required(name: str, path: Path, tag: str, size: int) -> FloatArray:
    values = _xml_matrix(name, path, tag, size)
    assert values is not None  # required: a missing tag raised
    return values


def _xml_matrix(name: str, path: Path, tag: str, size: int | None, *, required: bool = True) -> FloatArray | None:
    """The numbers of `tag` in an OpenCV XML file, whether written as an opencv-matrix (`<data>`) or as text."""
    try:
        root = ElementTree.parse(path).getroot()
    except FileNotFoundError:
        raise CalibrationError(f"camera {name!r}: calibration file not found: {path}") from None
    except (OSError, ElementTree.ParseError) as exc:
        raise CalibrationError(f"camera {name!r}: {path} is not readable OpenCV XML ({exc})") from None
    node = root.find(tag)
    if node is None:
        if not required:
            return None
        raise CalibrationError(f"camera {name!r}: {path} has no <{tag}>")
    data = node.find("data")
    text = (data.text if data is not None else node.text) or ""
    try:
        values = np.array(text.split(), np.float64)
    except ValueError:
        raise CalibrationError(f"camera {name!r}: <{tag}> in {path} is not a list of numbers") from None
    if (size is not None and values.size != size) or not np.isfinite(values).all():
        raise CalibrationError(f"camera {name!r}: <{tag}> in {path} must hold {size} finite numbers, got {values.size}")
    return values
