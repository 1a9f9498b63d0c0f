"""Embedder throughput (crops/s at batch 1, 8 and 32) on real crops, with a re-ID accuracy check alongside.

    .venv/bin/python bench/embed.py                  # prints the table and appends it to BENCHMARKS.md
    .venv/bin/python bench/embed.py --repeat 3 --no-append

Person embedders run on VIPeR crops (48 x 128), dlib on ORL faces (92 x 112, grey as BGR). "batch B" calls
`embed` on B crops at a time with the embedder's own `batch_size` set to B, so a row shows what batching buys each
backend (dlib and the histograms have no batch size: they loop or vectorise internally); crops/s is the best of
`--repeat` passes after one warm-up call, so a busy moment on the shared machine does not decide a row. Accuracy
is rank-1 / rank-10 over all 632 VIPeR people (camera A queries, camera B gallery, cosine) for person embedders,
and leave-one-out rank-1 over the 400 ORL faces for dlib. The generic-ONNX row runs a small random-weight CNN built
here (2 stride-2 convolutions, 256 x 128 input): it measures the backend's overhead, not a model.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from datasets import DATA, load_viper
from report import append_section  # bench/ is on sys.path when a script here runs
from trackid.embed import (
    ColourTextureEmbedder,
    DlibFaceEmbedder,
    Embedder,
    EnsembleEmbedder,
    MobileNetV2Embedder,
    OnnxEmbedder,
)

BATCHES = (1, 8, 32)

Crops = list[NDArray[np.uint8]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=256, help="person crops timed per pass (dlib: an eighth)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; the best counts")
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to BENCHMARKS.md")
    args = parser.parse_args(argv)

    viper_a, viper_b = load_viper()
    faces, face_labels = load_orl()
    with tempfile.TemporaryDirectory() as tmp:
        tiny_path = tiny_cnn(Path(tmp) / "tiny_cnn.onnx")
        rows: list[tuple[str, Callable[[int], Embedder], bool]] = [
            ("MobileNetV2 (ONNX, 256x128)", lambda b: MobileNetV2Embedder(batch_size=b), True),
            ("colour + texture histograms", lambda b: ColourTextureEmbedder(), True),
            (
                "ensemble MobileNetV2 + colour",
                lambda b: EnsembleEmbedder([MobileNetV2Embedder(batch_size=b), ColourTextureEmbedder()]),
                True,
            ),
            ("generic ONNX (tiny random CNN)", lambda b: OnnxEmbedder(tiny_path, batch_size=b), True),
            ("dlib face ResNet", lambda b: DlibFaceEmbedder(), False),
        ]
        lines = [
            "| embedder | dim | crops | crops/s batch 1 | batch 8 | batch 32 | accuracy |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, make, person in rows:
            n = args.crops if person else args.crops // 8
            crops = (viper_a if person else faces)[:n]
            speeds = [crops_per_second(make(batch), crops, batch, args.repeat) for batch in BATCHES]
            embedder = make(8)
            if name.startswith("generic"):
                accuracy = "n/a (random weights)"
            elif person:
                accuracy = viper_accuracy(embedder, viper_a, viper_b)
            else:
                accuracy = face_accuracy(embedder, faces, face_labels)
            kind = "VIPeR" if person else "ORL faces"
            cells = " | ".join(f"{v:,.0f}" for v in speeds)
            lines.append(f"| {name} | {embedder.dim} | {n} {kind} | {cells} | {accuracy} |")
            print(lines[-1], flush=True)
    table = "\n".join(lines) + "\n"
    print("\n" + table)
    if not args.no_append:
        append_report(table)
    return 0


def crops_per_second(embedder: Embedder, crops: Crops, batch: int, repeat: int) -> float:
    embedder.embed(crops[:batch])  # warm-up: first-call allocations and thread-pool start
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        for i in range(0, len(crops), batch):
            embedder.embed(crops[i : i + batch])
        best = min(best, time.perf_counter() - start)
    return len(crops) / best


def viper_accuracy(embedder: Embedder, cam_a: Crops, cam_b: Crops) -> str:
    sims = embedder.embed(cam_a) @ embedder.embed(cam_b).T
    rank = (sims > np.diag(sims)[:, None]).sum(axis=1)
    return f"VIPeR rank-1 {100 * (rank == 0).mean():.1f} %, rank-10 {100 * (rank < 10).mean():.1f} %"


def face_accuracy(embedder: Embedder, faces: Crops, labels: NDArray[np.int64]) -> str:
    sims = embedder.embed(faces) @ embedder.embed(faces).T
    np.fill_diagonal(sims, -np.inf)
    return f"ORL leave-one-out rank-1 {100 * (labels[sims.argmax(axis=1)] == labels).mean():.1f} %"


def load_orl() -> tuple[Crops, NDArray[np.int64]]:
    folder = DATA / "faces" / "orl_att"
    crops, labels = [], []
    for person in range(1, 41):
        for image in range(1, 11):
            grey = cv2.imread(str(folder / f"s{person}" / f"{image}.pgm"), cv2.IMREAD_GRAYSCALE)
            if grey is None:
                raise SystemExit(f"cannot read ORL face {folder}/s{person}/{image}.pgm")
            crops.append(np.asarray(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), np.uint8))
            labels.append(person)
    # Interleave people so the first crops timed are not all one person (dlib's time does not depend on it anyway).
    order = np.argsort(np.arange(400) % 10, kind="stable")
    return [crops[i] for i in order], np.asarray(labels)[order]


def tiny_cnn(path: Path) -> Path:
    """Conv 3x3/2 (16) -> ReLU -> conv 3x3/2 (32) -> ReLU -> global average pool: a 32-d 'model'."""
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.1, (16, 3, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.1, (32, 16, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 256, 128])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 32])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def append_report(table: str) -> None:
    notes = ["crops/s: best of the passes, onnxruntime on all cores; accuracy: all 632 VIPeR people / 400 ORL faces"]
    append_section("embed.py", notes, table)


if __name__ == "__main__":
    raise SystemExit(main())
