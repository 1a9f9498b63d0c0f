#!/usr/bin/env bash
# Create (or bring up to date) .venv-bench at the repo root: trackid plus the peer trackers that
# bench/mot.py compares it with (boxmot, roboflow `trackers`, norfair) and TrackEval.
#
# Idempotent: safe to re-run; an existing venv is reused and only what differs is (re)installed.
# Usage: bash bench/setup_env.sh            (VENV=path overrides the location)
#
# Order matters. torch==2.13.0 must come first so pip takes the local CPU wheel; everything else
# is then installed from an exact lock with --no-deps, because a normal resolve would pull PyPI's
# torchvision, which replaces that torch with a multi-GB CUDA build (see requirements-peers.txt).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv-bench}"
LOCK="$ROOT/bench/requirements-peers.txt"
TORCH_PIN="torch==2.13.0"
export PIP_DISABLE_PIP_VERSION_CHECK=1

cd "$ROOT"
if [[ ! -x "$VENV/bin/python" ]]; then
    echo ">> creating $VENV"
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
pip_() { "$PY" -m pip "$@"; }

echo ">> $TORCH_PIN (local CPU wheel)"
pip_ install -q "$TORCH_PIN"

# A venv made by an older version of this script (or by hand) may hold the GUI build of OpenCV;
# both wheels own the same cv2/ folder, so remove it and force the headless files back in.
if pip_ show -q opencv-python >/dev/null 2>&1; then
    echo ">> replacing opencv-python with the headless build"
    pip_ uninstall -y -q opencv-python
    pip_ install -q --no-deps --force-reinstall "$(grep -E '^opencv-python-headless==' "$LOCK")"
fi

echo ">> peers from $LOCK (--no-deps)"
pip_ install -q --no-deps -r "$LOCK"

if [[ -f "$ROOT/pyproject.toml" ]]; then
    echo ">> trackid (editable, no extras)"
    # The lock as constraints keeps trackid's own requirements from moving the peers' pins.
    pip_ install -q -c "$LOCK" -e "$ROOT"
else
    echo "!! $ROOT/pyproject.toml not found: trackid NOT installed; re-run once it exists" >&2
fi

echo ">> checking the environment"
"$PY" - <<'EOF'
import importlib.metadata as md
import sys

import torch

assert torch.__version__.startswith("2.13.0") and "+cpu" in torch.__version__, torch.__version__
dists = {d.metadata["Name"].lower() for d in md.distributions()}
bad = sorted(n for n in dists if n.startswith(("nvidia-", "cuda-")) or n in {"triton", "opencv-python", "torchvision"})
assert not bad, f"unwanted packages in .venv-bench: {bad}"

import boxmot  # noqa: E402,F401
import cv2  # noqa: E402
import norfair  # noqa: E402,F401
import supervision  # noqa: E402,F401
import trackeval  # noqa: E402,F401
import trackers  # noqa: E402,F401
from boxmot.trackers.factory import create_tracker  # noqa: E402,F401

print(f"ok: python {sys.version.split()[0]}, torch {torch.__version__}, cv2 {cv2.__version__}, "
      + ", ".join(f"{n} {md.version(n)}" for n in ("boxmot", "trackers", "norfair", "trackeval")))
try:
    import trackid  # noqa: E402,F401
    print("ok: trackid", md.version("trackid"))
except ImportError:
    print("!! trackid is not importable", file=sys.stderr)
EOF
