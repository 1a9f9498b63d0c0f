"""Model files that trackid builds itself (see `trackid.models.convert`); nothing here imports TensorFlow."""

from trackid.models.files import FETCHED, SHIPPED, bundled_model, fetched_model_path

__all__ = ["FETCHED", "SHIPPED", "bundled_model", "fetched_model_path"]
