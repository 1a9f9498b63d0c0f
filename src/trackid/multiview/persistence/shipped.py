"""The persistence filters that ship inside the package, and loading a filter file by its kind.

Both are rebuilt by `bench/persistence.py` from every labelled track of its sets (MOT15 FRCNN and ACF, MOT17 FRCNN
at 30 and 5 fps and with DeepSORT embeddings, PETS09-S2L1 with NanoDet, HOG and SSDLite): `--save-boosted` writes the
trees' file, `--save-transformer` the transformer's ONNX. `DEFAULT` is the one that won on held-out sequences there.
"""

from __future__ import annotations

from pathlib import Path

from trackid.multiview.persistence.models import BoostedPersistence, PersistenceFilter
from trackid.multiview.persistence.transformer import SHIPPED as SHIPPED_TRANSFORMER
from trackid.multiview.persistence.transformer import TransformerPersistence

__all__ = [
    "DEFAULT",
    "SHIPPED",
    "SHIPPED_BOOSTED",
    "SHIPPED_TRANSFORMER",
    "TRAINED_FPS",
    "filter_file",
    "frame_rate_warning",
    "is_shipped",
    "load_filter",
]

SHIPPED_BOOSTED = Path(__file__).with_name("persistence_boosted.npz")
SHIPPED = {"boosted": SHIPPED_BOOSTED, "transformer": SHIPPED_TRANSFORMER}
DEFAULT = "boosted"
"""The boosted trees: split by sequence, more accurate than the transformer on every set and than the length rule on 7
of 8 (bench/persistence.py); with a whole set held out the three are mixed."""
TRAINED_FPS = (5.0, 30.0)
"""The frame rates of the sequences the shipped filters learnt from; outside it a run is warned."""


def load_filter(path: str | Path) -> PersistenceFilter:
    """The filter in `path`: a `.npz` is `BoostedPersistence.save`'s, anything else a transformer's ONNX.
    FileNotFoundError when it is missing; ValueError naming the file when it is not a filter of its kind."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"persistence filter model not found: {path}")
    if path.suffix == ".npz":
        return BoostedPersistence(model_path=path)
    try:
        return TransformerPersistence(model_path=path)
    except Exception as exc:  # onnxruntime's own errors for a file that is not its model
        raise ValueError(f"{path}: not a persistence filter model ({exc})") from None


def filter_file(choice: str) -> Path:
    """A `--filter` value as a file: `shipped` is `DEFAULT`'s, `boosted` and `transformer` name the shipped ones,
    anything else is a path."""
    return SHIPPED.get(DEFAULT if choice == "shipped" else choice, Path(choice))


def is_shipped(path: str | Path) -> bool:
    """Whether `path` is one of the filters that ship (their frame rates, `TRAINED_FPS`, are known)."""
    return Path(path) in SHIPPED.values()


def frame_rate_warning(path: str | Path | None, fps: float) -> str | None:
    """What a run at `fps` with the filter from `path` must be told, when that is a shipped filter and `fps` is outside
    the `TRAINED_FPS` it learnt from; None otherwise (another filter's frame rates are not known)."""
    if path is None or not is_shipped(path) or TRAINED_FPS[0] <= fps <= TRAINED_FPS[1]:
        return None
    return (
        f"the shipped persistence filter learnt from {TRAINED_FPS[0]:g}-{TRAINED_FPS[1]:g} fps sequences; at {fps:g} "
        "fps its track lengths and motion are outside what it saw (check how much it removes, and of whom)"
    )
