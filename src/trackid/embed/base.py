"""The embedder protocol and registry.

An embedder maps image crops to L2-normalised float32 vectors, batched by design, and names the model that made
them (`model_id`, `version`) so that a store never compares vectors from different models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from trackid.registry import Registry

__all__ = ["EMBEDDERS", "Embedder", "make_embedder", "register_embedder"]


class Embedder(Protocol):
    model_id: str
    version: str
    dim: int

    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """(N, dim) unit vectors for N crops (H x W x 3 uint8 BGR, any size); (0, dim) for no crops."""
        ...


EMBEDDERS: Registry[Embedder] = Registry("embedder")
register_embedder = EMBEDDERS.register
make_embedder = EMBEDDERS.make
