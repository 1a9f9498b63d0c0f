"""Small, far objects for any detector: run it on overlapping tiles (optionally upscaled) and merge the boxes.

Detectors that resize the frame to a fixed input (SSD) or slide a fixed window (HOG) have a smallest object size in
frame pixels. Running them on a tile raises the object's share of the input; upscaling a tile lowers the window's
size in frame pixels. The whole frame is usually run too, for people taller than a tile's overlap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import Field, ValidationInfo, field_validator

from trackid.detect.base import DETECTORS, Detector, make_detector, register_detector
from trackid.detect.nms import suppress
from trackid.images import check_image
from trackid.registry import BackendParams
from trackid.types import Detections

__all__ = ["TiledDetector", "TiledParams", "tile_grid"]


class TiledParams(BackendParams):
    """The tiling wrapper's settings; an inner detector given by name has its own parameters checked too."""

    inner: str | Any = Field(
        description="The detector to run: a registered detector name (built with `inner_params`) or a Detector."
    )
    tiles: tuple[int, int] = Field(
        (2, 2),
        description="(rows, cols) of the grid. More tiles find smaller objects; cost grows with their number "
        "(rows x cols + 1 inner calls with the full frame).",
    )
    overlap: float = Field(
        0.25,
        ge=0,
        lt=1,
        description="Fraction of a tile's side shared with its neighbour. An object cut by a tile border is dropped "
        "from that tile (see `edge_margin`) and must lie whole in a neighbour or be found in the full frame, so the "
        "overlap should exceed the height of the objects the tiles are for; more overlap, larger tiles, more cost.",
    )
    upscale: float = Field(
        1.0,
        gt=0,
        description="Factor each tile is resized by before detection. Helps fixed-window detectors (HOG: 2 finds "
        "people of ~48 px instead of ~96 px at ~4x cost); no effect on detectors that resize to a fixed input.",
    )
    include_full_frame: bool = Field(
        True,
        description="Also run the inner detector on the whole frame at its own scale, for objects larger than a tile; "
        "off saves one inner call a frame and loses people taller than the overlap.",
    )
    nms_threshold: float = Field(
        0.5,
        gt=0,
        le=1,
        description="IoU above which boxes found in several tiles or in the full frame are merged. Raising it keeps "
        "overlapping people apart, and more duplicates of one person seen by two tiles.",
    )
    edge_margin: float = Field(
        2.0,
        description="Boxes within this many frame pixels of a tile border inside the frame are truncated views of an "
        "object and are dropped; negative keeps them (and their half-person boxes).",
    )
    inner_params: dict[str, Any] | None = Field(None, description="Parameters of `inner` when it is given by name.")

    @field_validator("inner_params")
    @classmethod
    def _fit_inner(cls, inner_params: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        if isinstance(info.data.get("inner"), str):
            DETECTORS.validate(info.data["inner"], inner_params)
        return inner_params


@register_detector("tiled", params=TiledParams)
class TiledDetector:
    """Runs `inner` on a grid of overlapping tiles (and the full frame), maps boxes back and merges them with NMS.

    Cost is about (rows x cols + include_full_frame) inner calls per frame, times upscale^2 for window-based
    detectors.

    Args: see `TiledParams`.
    """

    name = "tiled"

    def __init__(
        self,
        inner: Detector | str,
        tiles: tuple[int, int] = (2, 2),
        overlap: float = 0.25,
        upscale: float = 1.0,
        include_full_frame: bool = True,
        nms_threshold: float = 0.5,
        edge_margin: float = 2.0,
        inner_params: Mapping[str, object] | None = None,
    ) -> None:
        if isinstance(inner, str):
            inner = make_detector(inner, inner_params)
        elif inner_params:
            raise ValueError("inner_params apply only when inner is a detector name")
        if not callable(getattr(inner, "detect", None)):
            raise ValueError(f"inner must be a Detector or a registered detector name, got {type(inner).__name__}")
        rows_cols = tuple(int(v) for v in tiles)
        if len(rows_cols) != 2 or min(rows_cols) < 1:
            raise ValueError(f"tiles must be (rows, cols) positive integers, got {tiles!r}")
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        if upscale <= 0:
            raise ValueError(f"upscale must be positive, got {upscale}")
        if rows_cols == (1, 1) and upscale == 1.0 and include_full_frame:
            raise ValueError("tiles=(1, 1) without upscale repeats the full frame; change tiles or upscale")
        if not 0.0 < nms_threshold <= 1.0:
            raise ValueError(f"nms_threshold must be in (0, 1], got {nms_threshold}")
        self.inner = inner
        self.tiles = (rows_cols[0], rows_cols[1])
        self.overlap = float(overlap)
        self.upscale = float(upscale)
        self.include_full_frame = bool(include_full_frame)
        self.nms_threshold = float(nms_threshold)
        self.edge_margin = float(edge_margin)

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        check_image(image)
        height, width = image.shape[:2]
        parts = [self.inner.detect(image)] if self.include_full_frame else []
        for x0, y0, x1, y1 in tile_grid(width, height, self.tiles, self.overlap).tolist():
            crop = image[y0:y1, x0:x1]
            if self.upscale != 1.0:
                scaled = cv2.resize(crop, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR)
                crop = np.asarray(scaled, dtype=np.uint8)
            found = self.inner.detect(crop)
            xyxy = found.xyxy / self.upscale + [x0, y0, x0, y0]
            whole = _not_cut(xyxy, (x0, y0, x1, y1), (width, height), self.edge_margin)
            parts.append(Detections.from_arrays(xyxy, found.score, found.class_id)[whole])
        merged = Detections.merge(parts)
        return suppress(merged, self.nms_threshold) if len(parts) > 1 else merged


def tile_grid(width: int, height: int, tiles: tuple[int, int], overlap: float) -> NDArray[np.int64]:
    """(rows x cols, 4) integer tile corners `x0, y0, x1, y1` covering the frame, neighbours sharing `overlap`."""
    rows, cols = tiles
    tile_w = width / (cols - (cols - 1) * overlap)
    tile_h = height / (rows - (rows - 1) * overlap)
    x0 = np.arange(cols) * tile_w * (1.0 - overlap)
    y0 = np.arange(rows) * tile_h * (1.0 - overlap)
    gx, gy = np.meshgrid(x0, y0)
    corners = np.stack([gx, gy, gx + tile_w, gy + tile_h], axis=-1).reshape(-1, 4)
    return np.clip(np.round(corners), 0, [width, height, width, height]).astype(np.int64)


def _not_cut(
    xyxy: NDArray[np.float64], tile: tuple[int, int, int, int], frame_size: tuple[int, int], margin: float
) -> NDArray[np.bool_]:
    """Mask of boxes not touching a tile border that lies inside the frame (such boxes are cut-off views)."""
    if margin < 0:
        return np.ones(len(xyxy), bool)
    x0, y0, x1, y1 = tile
    inside = np.array([x0 > 0, y0 > 0, x1 < frame_size[0], y1 < frame_size[1]])
    touching = np.stack(
        [xyxy[:, 0] <= x0 + margin, xyxy[:, 1] <= y0 + margin, xyxy[:, 2] >= x1 - margin, xyxy[:, 3] >= y1 - margin],
        axis=1,
    )
    return ~(touching & inside).any(axis=1)
