"""Appearance embedders: one protocol, one file per backend, built by name (`make_embedder`).

Registered names: `mobilenetv2` (ImageNet MobileNetV2 via onnxruntime), `mobilenetv2-pyramid` (pooled by depth and
stripe, for photos), `dlib-face` (128-d faces), `faceres` (1024-d faces, fetched), `onnx` (a user's re-ID model),
`colour` (histogram baseline), `lomo` (the LOMO re-ID descriptor), `ensemble` (weighted combination of the others),
`learned` (any of them followed by a metric fitted on labelled pairs: XQDA, KISSME, LDA, in `METRICS`); each with
its params model (`EMBEDDERS.params_model(name)`: the parameters, their defaults and trade-offs).
"""

from trackid.embed.base import EMBEDDERS, Embedder, make_embedder, register_embedder
from trackid.embed.colour import ColourTextureEmbedder, ColourTextureParams
from trackid.embed.crops import clamp_boxes, crop_boxes, l2_normalise
from trackid.embed.dlib_face import DlibFaceEmbedder, DlibFaceParams
from trackid.embed.ensemble import EnsembleEmbedder, EnsembleParams, fuse_scores
from trackid.embed.faceres import FaceResEmbedder, FaceResParams
from trackid.embed.frame import embed_detections
from trackid.embed.lomo import LomoDescriptor, LomoEmbedder, LomoParams
from trackid.embed.metric import (
    KISSME,
    METRICS,
    XQDA,
    KissmeParams,
    LdaParams,
    LearnedParams,
    MetricEmbedder,
    PairMetric,
    RegularisedLDA,
    XqdaParams,
    load_metric,
    make_metric,
)
from trackid.embed.mobilenet import (
    MobileNetV2Embedder,
    MobileNetV2Params,
    MobileNetV2PyramidEmbedder,
    MobileNetV2PyramidParams,
)
from trackid.embed.onnx_embedder import OnnxEmbedder, OnnxEmbedderParams
from trackid.embed.quality import CropQuality, QualityConfig, crop_quality, score_crops

__all__ = [
    "EMBEDDERS",
    "KISSME",
    "METRICS",
    "XQDA",
    "ColourTextureEmbedder",
    "ColourTextureParams",
    "CropQuality",
    "DlibFaceEmbedder",
    "DlibFaceParams",
    "Embedder",
    "EnsembleEmbedder",
    "EnsembleParams",
    "FaceResEmbedder",
    "FaceResParams",
    "KissmeParams",
    "LdaParams",
    "LearnedParams",
    "LomoDescriptor",
    "LomoEmbedder",
    "LomoParams",
    "MetricEmbedder",
    "MobileNetV2Embedder",
    "MobileNetV2Params",
    "MobileNetV2PyramidEmbedder",
    "MobileNetV2PyramidParams",
    "OnnxEmbedder",
    "OnnxEmbedderParams",
    "PairMetric",
    "QualityConfig",
    "RegularisedLDA",
    "XqdaParams",
    "clamp_boxes",
    "crop_boxes",
    "crop_quality",
    "embed_detections",
    "fuse_scores",
    "l2_normalise",
    "load_metric",
    "make_embedder",
    "make_metric",
    "register_embedder",
    "score_crops",
]
