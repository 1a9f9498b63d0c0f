"""COCO's 80 class names, so a user picks what a COCO detector keeps by name (`person`, `dog`, `sheep`, ...).

The ids are the detectors' own output indices (0 = person), which is also trackid's person class id.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

__all__ = ["ANIMALS", "COCO_CLASSES", "coco_class_ids"]

COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip

ANIMALS: tuple[str, ...] = ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe")
"""COCO has no deer: a trail camera's deer is most often labelled one of these four-legged classes."""


def coco_class_ids(classes: str | Iterable[str] | None) -> NDArray[np.int64] | None:
    """Output indices of the named classes (`"person"`, `["dog", "horse"]`, `"animals"` for `ANIMALS`); None keeps
    every class. Unknown names raise ValueError listing them."""
    if classes is None:
        return None
    names = [classes] if isinstance(classes, str) else list(classes)
    expanded = [n for name in names for n in (ANIMALS if name == "animals" else (name,))]
    unknown = sorted({n for n in expanded if n not in COCO_CLASSES})
    if unknown or not expanded:
        raise ValueError(
            f"classes: unknown COCO class {', '.join(map(repr, unknown)) or '(none given)'}; choose from "
            f"{', '.join(COCO_CLASSES)} or 'animals'"
        )
    return np.unique([COCO_CLASSES.index(n) for n in expanded]).astype(np.int64)
