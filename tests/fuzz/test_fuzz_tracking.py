"""Property-based fuzzing of what `trackid track` reads (issue #15): MOTChallenge det/gt files, `seqinfo.ini`, YAML
config files and `--set` / `--param` values. Each target feeds arbitrary input and holds the parser to one promise:
it parses, or it raises the project's clean input error (`trackid.cli.common.USER_ERRORS`, which the CLI prints as
`where: what is wrong`, exit 2); any other exception is a bug. What parses must also be usable: the tracker runs on
parsed detections and is built from a parsed config without raising.

`make test` runs each target at the default 200 examples (a few seconds); `make fuzz` and `bench/fuzz.py` at
TRACKID_FUZZ_EXAMPLES (10,000).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackid.cli.common import USER_ERRORS, InputError, parse_params
from trackid.config import RunConfig, load_config, parse_value
from trackid.pipelines.mot import run_tracker
from trackid.sources.motchallenge import FrameDetections, SeqInfo, read_mot_file, read_seqinfo
from trackid.track.tracker import TRACKERS, make_tracker

FUZZ = settings(
    max_examples=int(os.environ.get("TRACKID_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

NUMBER_TEXT = st.one_of(
    st.integers(-(10**7), 10**7).map(str),
    st.integers().map(str),
    st.floats().map(repr),
    st.sampled_from(["1e300", "-1e300", "1e400", "nan", "NaN", "inf", "-inf", "", " 1 ", "0x10", "1_000", "1e-300"]),
)
FIELD = st.one_of(NUMBER_TEXT, st.text(max_size=6))
MOT_ROW = st.one_of(
    # near-valid rows: frame, id, x, y, w, h, score and the optional columns
    st.tuples(st.integers(-2, 60), st.integers(-2, 9), *[st.floats(-50, 700) for _ in range(4)], st.floats(-1, 2)).map(
        lambda r: ",".join(str(v) for v in r) + ",-1,-1,-1"
    ),
    st.lists(FIELD, min_size=1, max_size=11).map(",".join),
    st.text(max_size=30),
)
TEXT_FILE = st.one_of(
    st.tuples(st.booleans(), st.lists(MOT_ROW, max_size=25)).map(
        lambda t: ("\ufeff" if t[0] else "") + "\n".join(t[1])
    ),
    st.binary(max_size=300),
)
SEQINFO_KEYS = st.sampled_from(["name", "frameRate", "seqLength", "imWidth", "imHeight", "imDir"]) | st.text(max_size=8)
SEQINFO = st.one_of(
    st.lists(st.tuples(SEQINFO_KEYS, FIELD).map("=".join) | st.text(max_size=20), max_size=10).map(
        lambda lines: "[Sequence]\n" + "\n".join(lines)
    ),
    st.text(max_size=200),
    st.binary(max_size=200),
)
DOTTED_KEYS = sorted(
    f"{section}.{key}" if isinstance(value, dict) else section
    for section, fields in RunConfig().model_dump().items()
    for key, value in (fields.items() if isinstance(fields, dict) else [(section, fields)])
)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10))
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
CONFIG_TREE = st.dictionaries(
    st.sampled_from(["detector", "embedder", "tracker", "quality", "photos", "gallery", "profile", "frame_rate"])
    | st.text(max_size=8),
    st.dictionaries(st.sampled_from([k.split(".")[-1] for k in DOTTED_KEYS]) | st.text(max_size=8), VALUE, max_size=4)
    | VALUE,
    max_size=4,
)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="trackid-fuzz-") as folder:
        yield Path(folder)


def _write(folder: Path, content: str | bytes, name: str) -> Path:
    path = folder / name
    path.write_bytes(content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content)
    return path


@FUZZ
@given(content=TEXT_FILE)
def test_det_and_gt_files_parse_or_fail_cleanly(scratch: Path, content: str | bytes) -> None:
    path = _write(scratch, content, "det.txt")
    try:
        rows = read_mot_file(path)
    except USER_ERRORS as exc:
        assert str(path) in str(exc)
        return
    if len(rows):  # what parses, the tracker can take: its first frames
        frames = FrameDetections.from_rows(rows, min(int(rows.frame[-1]), 30))
        run_tracker(frames, "trackid", SeqInfo("fuzz", 25.0, len(frames), 640, 480), {}, lambda: None)


@FUZZ
@given(content=SEQINFO)
def test_seqinfo_files_parse_or_fail_cleanly(scratch: Path, content: str | bytes) -> None:
    path = _write(scratch, content, "seqinfo.ini")
    try:
        info = read_seqinfo(path)
    except USER_ERRORS as exc:
        assert str(path) in str(exc)
        return
    make_tracker("trackid", info.frame_rate)


@FUZZ
@given(tree=CONFIG_TREE, as_text=st.text(max_size=80), raw=st.booleans())
def test_yaml_config_files_load_or_fail_cleanly(scratch: Path, tree: dict[str, Any], as_text: str, raw: bool) -> None:
    path = _write(scratch, as_text if raw else yaml.safe_dump(tree), "run.yaml")
    try:
        config, _ = load_config(path, environ={})
    except USER_ERRORS:
        return
    make_tracker("trackid", 25.0, **config.tracker.model_dump())


@FUZZ
@given(key=st.sampled_from(DOTTED_KEYS) | st.text(max_size=12), value=FIELD | st.text(max_size=30))
def test_set_values_load_or_fail_cleanly(key: str, value: str) -> None:
    try:
        config, _ = load_config(overrides=[f"{key}={value}"], environ={})
    except USER_ERRORS:
        return
    make_tracker("trackid", 25.0, **config.tracker.model_dump())


@FUZZ
@given(
    key=st.sampled_from(sorted(TRACKERS.params_model("trackid").model_fields)) | st.text(max_size=8),
    value=FIELD | st.text(max_size=30),
)
def test_param_values_parse_or_fail_cleanly(key: str, value: str) -> None:
    try:
        params = parse_params([f"{key}={value}"])
        TRACKERS.validate("trackid", params)
    except (*USER_ERRORS, ValueError) as exc:  # the CLI turns the registry's ValueError into an InputError
        assert isinstance(exc, InputError) or "tracker 'trackid'" in str(exc)
        return
    try:  # what the CLI's tracker check does: the tracker refuses what its params model lets through
        make_tracker("trackid", 25.0, **params)
    except (ValueError, OverflowError) as exc:
        assert key in str(exc)


@FUZZ
@given(raw=st.text(max_size=40))
def test_parse_value_returns_a_value_or_a_clean_error(raw: str) -> None:
    with contextlib.suppress(*USER_ERRORS):
        parse_value(raw)
