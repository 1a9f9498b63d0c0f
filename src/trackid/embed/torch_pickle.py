"""Read a PyTorch state dict into numpy arrays without importing torch.

Users' machines need not have torch, yet the shipped MobileNetV2 weights are a `torch.save` file. This reads the
legacy (pre-1.6, non-zip) format that file uses: five pickles/records in a row — magic number, protocol version,
system info, the state dict whose tensors reference storages by persistent id, the list of storage keys — followed
by each storage as an int64 element count and raw little-endian bytes. The unpickler is restricted to the handful of
globals a state dict needs, so a malicious file cannot run code.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

__all__ = ["load_state_dict"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
}


def load_state_dict(path: str | Path) -> dict[str, NDArray[Any]]:
    """Parameter name -> numpy array (a copy, C-contiguous) for a legacy-format `torch.save`d state dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"torch weights file not found: {path}")
    if zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} uses torch's zip serialization; only the legacy format is read without torch "
            "(re-save with torch.save(..., _use_new_zipfile_serialization=False))"
        )
    with path.open("rb") as f:
        # Every record goes through the restricted unpickler, not just the state dict: any of them could be hostile.
        if _StateDictUnpickler(f).load() != _LEGACY_MAGIC:
            raise ValueError(f"{path} is not a legacy torch.save file (bad magic number)")
        _StateDictUnpickler(f).load()  # protocol version
        if not _StateDictUnpickler(f).load().get("little_endian", False):
            raise ValueError(f"{path} was saved on a big-endian machine; not supported")
        unpickler = _StateDictUnpickler(f)
        state = unpickler.load()
        keys = _StateDictUnpickler(f).load()
        storages = {key: _read_storage(f, unpickler.storage_dtypes[key]) for key in keys}
    return {name: _materialise(ref, storages) for name, ref in state.items() if isinstance(ref, _TensorRef)}


class _TensorRef:
    """What `_rebuild_tensor_v2` was asked to build; materialised once the storages have been read."""

    def __init__(self, key: str, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.key, self.offset, self.size, self.stride = key, offset, size, stride


def _rebuild_tensor_v2(storage: str, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any) -> Any:
    return _TensorRef(storage, offset, tuple(size), tuple(stride))


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = _STORAGE_DTYPES[name]


class _StateDictUnpickler(pickle.Unpickler):
    """Allows only the globals of a plain state dict; storages resolve to their keys."""

    def __init__(self, f: BinaryIO) -> None:
        super().__init__(f)
        self.storage_dtypes: dict[str, type[np.generic]] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid: Any) -> str:
        kind, storage_type, key, _location, _numel, view = pid
        if kind != "storage" or view is not None:
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        self.storage_dtypes[key] = storage_type.dtype
        return str(key)


def _read_storage(f: BinaryIO, dtype: type[np.generic]) -> NDArray[Any]:
    numel = int(np.frombuffer(f.read(8), "<i8")[0])
    item = np.dtype(dtype).newbyteorder("<")
    return np.frombuffer(f.read(numel * item.itemsize), item)


def _materialise(ref: _TensorRef, storages: dict[str, NDArray[Any]]) -> NDArray[Any]:
    flat = storages[ref.key]
    strides = tuple(s * flat.itemsize for s in ref.stride)
    view = np.lib.stride_tricks.as_strided(flat[ref.offset :], shape=ref.size, strides=strides, writeable=False)
    return np.ascontiguousarray(view)
