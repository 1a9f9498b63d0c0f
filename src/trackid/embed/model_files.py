"""How ONNX model files are opened for CPU inference."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

__all__ = ["cpu_session"]


def cpu_session(path: Path, num_threads: int) -> ort.InferenceSession:
    """An onnxruntime CPU session whose idle threads sleep instead of spinning.

    Spinning keeps cores busy for a while after every call; with a detector and tracker running between embedding
    calls, or other processes on the machine, that stole enough CPU to halve MobileNetV2's throughput (2 cores).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
