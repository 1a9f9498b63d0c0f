"""A user-supplied ONNX re-ID model (OSNet, BoT, FastReID exports...) run by onnxruntime.

No trained person re-ID weights can be shipped or downloaded here, so a user who has one exports it to ONNX and
points this at the file. Defaults follow the torchreid/OSNet convention: RGB, 256 x 128 (height x width), ImageNet
mean/std, NCHW float32 input, one (N, D) feature output. A model exported with a fixed batch size gets batches of
exactly that size, the last one padded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from trackid.artifacts import file_sha256
from trackid.embed.base import register_embedder
from trackid.embed.crops import check_crops, l2_normalise, resize_stack
from trackid.embed.model_files import cpu_session
from trackid.registry import BackendParams

__all__ = ["OnnxEmbedder", "OnnxEmbedderParams"]


class OnnxEmbedderParams(BackendParams):
    """A user's ONNX re-ID model's settings; the defaults are torchreid's/OSNet's convention."""

    model_path: Path = Field(description="The `.onnx` file.")
    input_size: tuple[int, int] = Field(
        (256, 128), description="(height, width) the model was trained on; another size degrades its vectors."
    )
    mean: tuple[float, float, float] = Field(
        (0.485, 0.456, 0.406), description="Per-channel mean in the model's channel order, on the 0-1 scale."
    )
    std: tuple[float, float, float] = Field(
        (0.229, 0.224, 0.225), description="Per-channel standard deviation in the model's channel order, 0-1 scale."
    )
    rgb: bool = Field(
        True, description="The model expects RGB (torch-trained models) rather than BGR (OpenCV-trained ones)."
    )
    batch_size: int = Field(
        32,
        ge=1,
        description="Crops per call (ignored when the model's batch dimension is fixed). Larger amortises the call "
        "overhead, until the activations fall out of the CPU caches.",
    )
    model_id: str | None = Field(
        None,
        description="Name stored with the vectors; null: `onnx:<file stem>`. Vectors of different models never meet, "
        "so renaming it makes a gallery's old vectors unreachable.",
    )
    num_threads: int = Field(
        0, ge=0, description="onnxruntime intra-op threads; 0 uses every core (threads never spin-wait between calls)."
    )


@register_embedder("onnx", params=OnnxEmbedderParams)
class OnnxEmbedder:
    """Crops -> the model's first output, flattened per crop and L2-normalised.

    Args: see `OnnxEmbedderParams`.
    """

    def __init__(
        self,
        model_path: str | Path,
        input_size: tuple[int, int] = (256, 128),
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        rgb: bool = True,
        batch_size: int = 32,
        model_id: str | None = None,
        num_threads: int = 0,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX embedding model file not found: {path}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean and std need 3 values each, std positive; got mean={mean}, std={std}")
        self.model_path = path
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.rgb = rgb
        self.model_id = model_id or f"onnx:{path.stem}"
        self.version = f"{file_sha256(path)[:12]}-{self.input_size[0]}x{self.input_size[1]}"
        # Fold /255 and mean/std into one multiply-add on the (N, H, W, C) batch before transposing.
        std_arr = np.asarray(std, np.float32)
        self._scale = 1.0 / (255.0 * std_arr)
        self._shift = -np.asarray(mean, np.float32) / std_arr
        self.session_ = cpu_session(path, num_threads)
        model_input = self.session_.get_inputs()[0]
        self._input_name = model_input.name
        fixed_batch = model_input.shape[0]
        self._fixed_batch = isinstance(fixed_batch, int) and fixed_batch > 0
        self.batch_size = int(fixed_batch) if self._fixed_batch else batch_size
        probe = self._run(np.zeros((self.batch_size, *self.input_size, 3), np.uint8))
        self.dim = int(probe.shape[1])

    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        check_crops(crops)
        out = np.empty((len(crops), self.dim), np.float32)
        for start in range(0, len(crops), self.batch_size):
            batch = resize_stack(crops[start : start + self.batch_size], *self.input_size)
            out[start : start + len(batch)] = self._run(batch)
        return l2_normalise(out)

    def _run(self, batch: NDArray[np.uint8]) -> NDArray[np.float32]:
        n = len(batch)
        if self._fixed_batch and n < self.batch_size:
            batch = np.concatenate([batch, np.zeros((self.batch_size - n, *batch.shape[1:]), np.uint8)])
        if self.rgb:
            batch = batch[..., ::-1]
        x = (batch.astype(np.float32) * self._scale + self._shift).transpose(0, 3, 1, 2)
        out = self.session_.run(None, {self._input_name: np.ascontiguousarray(x)})[0]
        return np.asarray(out, np.float32).reshape(len(batch), -1)[:n]
