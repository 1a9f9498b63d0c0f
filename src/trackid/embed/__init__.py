"""Appearance embedders: one protocol, one file per backend, built by name (`make_embedder`).

Registered names: `mobilenetv2` (ImageNet MobileNetV2 via onnxruntime), `dlib-face` (128-d faces), `faceres`
(1024-d faces, fetched), `onnx` (a user's re-ID model), `colour` (histogram baseline), `ensemble` (weighted
combination of the others).
"""

from trackid.embed.base import EMBEDDERS, Embedder, make_embedder, register_embedder
from trackid.embed.colour import ColourTextureEmbedder
from trackid.embed.crops import clamp_boxes, crop_boxes, l2_normalise
from trackid.embed.dlib_face import DlibFaceEmbedder
from trackid.embed.ensemble import EnsembleEmbedder, fuse_scores
from trackid.embed.faceres import FaceResEmbedder
from trackid.embed.frame import embed_detections
from trackid.embed.mobilenet import MobileNetV2Embedder
from trackid.embed.onnx_embedder import OnnxEmbedder
from trackid.embed.quality import CropQuality, QualityConfig, crop_quality, score_crops

__all__ = [
    "EMBEDDERS",
    "ColourTextureEmbedder",
    "CropQuality",
    "DlibFaceEmbedder",
    "Embedder",
    "EnsembleEmbedder",
    "FaceResEmbedder",
    "MobileNetV2Embedder",
    "OnnxEmbedder",
    "QualityConfig",
    "clamp_boxes",
    "crop_boxes",
    "crop_quality",
    "embed_detections",
    "fuse_scores",
    "l2_normalise",
    "make_embedder",
    "register_embedder",
    "score_crops",
]
