"""Detectors: one protocol, one file per backend, built by name from config (`make_detector`)."""

from trackid.detect.base import DETECTORS, Detector, make_detector, register_detector

__all__ = ["DETECTORS", "Detector", "make_detector", "register_detector"]
