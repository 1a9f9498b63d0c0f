"""Configuration layers: CLI > environment > chosen profile > file > the file's or the default profile > defaults,
and errors that name the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trackid.config import PROFILES, ConfigError, load_config
from trackid.track import TrackerConfig


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_defaults_are_the_balanced_profile() -> None:
    config, profile = load_config(environ={})
    assert profile == "balanced"
    assert config.embedder is not None and config.embedder.name == "mobilenetv2"
    assert config.tracker.max_lost_s == TrackerConfig().max_lost_s


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    path = _file(tmp_path, "tracker:\n  max_lost_s: 5\n  min_hits: 4\n  iou_gate: 0.4\nframe_stride: 2\n")
    env = {"TRACKID_TRACKER__MIN_HITS": "6", "TRACKID_TRACKER__IOU_GATE": "0.2"}
    config, _ = load_config(path, "fast_cpu", ["tracker.iou_gate=0.1"], environ=env)
    assert config.frame_stride == 2  # file only
    assert config.tracker.max_lost_s == 5  # file beats defaults
    assert config.tracker.min_hits == 6  # environment beats file
    assert config.tracker.iou_gate == 0.1  # command line beats environment
    assert config.embedder is None  # the profile beats the file's default embedder


def test_profile_beats_file_but_not_environment(tmp_path: Path) -> None:
    path = _file(tmp_path, "embedder:\n  name: colour\ndetector:\n  tiles: [3, 3]\n")
    config, _ = load_config(path, "high_accuracy", environ={"TRACKID_DETECTOR__TILES": "[1, 2]"})
    assert config.embedder is not None and config.embedder.name == "ensemble"  # profile over file
    assert config.detector.tiles == (1, 2)  # environment over profile


def test_a_file_beats_the_profile_it_did_not_choose_against(tmp_path: Path) -> None:
    """Issue #14's trap: a file's tracker.high_score 0.8 loaded as the default profile's value, silently."""
    path = _file(tmp_path, "tracker:\n  iou_gate: 0.4\ndetector:\n  tiles: [3, 3]\n")
    config, chosen = load_config(path, environ={})
    assert chosen == "balanced" and config.tracker.iou_gate == 0.4 and config.detector.tiles == (3, 3)
    named = _file(tmp_path, "profile: high_accuracy\ndetector:\n  tiles: [3, 3]\n")
    config, chosen = load_config(named, environ={})
    assert chosen == "high_accuracy" and config.detector.tiles == (3, 3)  # the file edits the profile it names
    assert config.embedder is not None and config.embedder.name == "ensemble"  # and keeps the rest of it


def test_the_precedence_holds_through_the_real_cli(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from trackid.cli import app

    clip = Path(__file__).resolve().parent.parent / "demo" / "pets09_s2l1_clip.mp4"
    path = _file(tmp_path, "tracker:\n  iou_gate: 0.4\n  max_lost_s: 3\n  min_hits: 2\nframe_stride: 30\n")
    args = ["track", str(clip), "--config", str(path), "--profile", "fast_cpu", "--set", "tracker.min_hits=3"]
    env = {"TRACKID_TRACKER__MAX_LOST_S": "4"}
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run")], env=env)
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "manifest.json").read_text())["config"]
    assert config["tracker"]["iou_gate"] == 0.4  # file
    assert config["tracker"]["max_lost_s"] == 4  # environment over file
    assert config["tracker"]["min_hits"] == 3  # command line over both
    assert config["embedder"] is None  # the chosen profile (fast_cpu) over the file's default embedder


def test_profile_is_chosen_by_cli_then_env_then_file(tmp_path: Path) -> None:
    path = _file(tmp_path, "profile: high_accuracy\n")
    assert load_config(path, environ={})[1] == "high_accuracy"
    assert load_config(path, environ={"TRACKID_PROFILE": "fast_cpu"})[1] == "fast_cpu"
    assert load_config(path, "balanced", environ={"TRACKID_PROFILE": "fast_cpu"})[1] == "balanced"


def test_profiles_differ_in_what_they_promise() -> None:
    fast, balanced, accurate = (load_config(profile=p, environ={})[0] for p in PROFILES)
    assert fast.embedder is None and balanced.embedder is not None
    assert accurate.detector.tiles is not None and balanced.detector.tiles is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"overrides": ["tracker.no_such=1"]}, "tracker.no_such"),
        ({"overrides": ["tracker.max_lost_s=-1"]}, "tracker.max_lost_s"),
        ({"overrides": ["novalue"]}, "expected key=value"),
        ({"profile": "turbo"}, "profile 'turbo'"),
        ({"environ": {"TRACKID_FRAME_STRIDE__X": "1"}}, "frame_stride"),
    ],
)
def test_bad_configuration_names_the_key(kwargs: dict[str, object], message: str) -> None:
    kwargs.setdefault("environ", {})
    with pytest.raises(ConfigError, match=message):
        load_config(**kwargs)  # type: ignore[arg-type]


def test_bad_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml", environ={})
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_file(tmp_path, "tracker: [unclosed\n"), environ={})
    with pytest.raises(ConfigError, match="mapping"):
        load_config(_file(tmp_path, "- a\n- b\n"), environ={})


def test_profiles_are_not_mutated_by_overrides() -> None:
    before = repr(PROFILES)
    load_config(profile="high_accuracy", overrides=["detector.params.score_threshold=0.5"], environ={})
    assert repr(PROFILES) == before


def test_gallery_section_layers_and_opens_its_store(tmp_path: Path) -> None:
    path = _file(tmp_path, f"gallery:\n  store: {tmp_path / 'g.db'}\n  log_retention:\n    max_rows: 100\n")
    env = {"TRACKID_GALLERY__LOG_RETENTION__MAX_AGE_DAYS": "30"}
    config, _ = load_config(path, overrides=["gallery.index.ef_search=128"], environ=env)
    retention = config.gallery.log_retention
    assert (retention.max_rows, retention.max_age_days) == (100, 30.0)
    store = config.gallery.open_store()
    try:
        assert store.index_params == {"connectivity": 32, "ef_construction": 200, "ef_search": 128, "dtype": "bf16"}
        assert store.max_prototypes == 5
    finally:
        store.close()
    with pytest.raises(ConfigError, match=r"gallery\.index\.dtype"):
        load_config(overrides=["gallery.index.dtype=f64"], environ={})


def test_a_nested_override_keeps_its_sections_defaults_and_a_new_backend_starts_clean() -> None:
    config, _ = load_config(overrides=["photos.embedder.params.weights=[0.3, 0.7]"], environ={})
    assert config.photos.embedder.name == "ensemble"
    assert config.photos.embedder.params["weights"] == [0.3, 0.7] and len(config.photos.embedder.params["members"]) == 2
    config, _ = load_config(overrides=["photos.embedder.name=colour"], environ={})
    assert (config.photos.embedder.name, config.photos.embedder.params) == ("colour", {})
    config, _ = load_config(overrides=["photos.embedder.name=colour", "photos.embedder.params.stripes=3"], environ={})
    assert config.photos.embedder.params == {"stripes": 3}


def test_param_and_set_read_values_alike() -> None:
    """Issue #14: `--param` parsed JSON and `--set` YAML, so 1e-3 was a number in one and a string in the other."""
    from trackid.cli import parse_params
    from trackid.config import parse_value

    cases = {"0.5": 0.5, "1e-3": 0.001, "true": True, "[1, 2]": [1, 2], "[dog, horse]": ["dog", "horse"], "x": "x"}
    for raw, value in cases.items():
        assert parse_value(raw) == value
        assert parse_params([f"k={raw}"]) == {"k": value}
    config, _ = load_config(overrides=["tracker.adaptive_noise=1e-3"], environ={})
    assert config.tracker.adaptive_noise == 0.001


def test_crop_quality_is_reachable_from_the_run_config() -> None:
    config, _ = load_config(overrides=["quality.min_height=40", "min_embed_quality=0.3"], environ={})
    assert config.quality.min_height == 40 and config.min_embed_quality == 0.3
    with pytest.raises(ConfigError, match=r"quality\.nonsense"):
        load_config(overrides=["quality.nonsense=1"], environ={})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("detector.params.score_threshold=abc", r"detector\.params: detector 'nanodet': score_threshold: .*number"),
        (
            "detector.params.score_treshold=0.3",
            r"detector\.params: detector 'nanodet' has no parameter 'score_treshold'",
        ),
        ("detector.name=nope", r"detector\.name: unknown detector 'nope'; choose from \[.*'nanodet'"),
        (
            "embedder.params.batch_size=0",
            r"embedder\.params: embedder 'mobilenetv2': batch_size: Input should be greater",
        ),
        ("photos.embedder.params.weights=[a, b]", r"photos\.embedder\.params: embedder 'ensemble': weights\.0"),
    ],
)
def test_backend_params_are_checked_against_the_chosen_backend_when_read(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override], environ={})


def test_a_yaml_typo_in_backend_params_names_the_setting(tmp_path: Path) -> None:
    path = _file(tmp_path, "embedder:\n  name: colour\n  params:\n    strips: 3\n")
    with pytest.raises(ConfigError, match=r"embedder\.params: embedder 'colour' has no parameter 'strips'; .*stripes"):
        load_config(path, environ={})
    path = _file(tmp_path, "detector:\n  name: ssdlite\n  params:\n    input_size: [400, 300]\n")
    config, _ = load_config(path, environ={})
    assert config.detector.params == {"input_size": [400, 300]}  # kept as written; the model fills in the rest


def test_a_bad_backend_param_is_one_clean_error_through_the_real_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trackid.cli import app

    clip = Path(__file__).resolve().parent.parent / "demo" / "pets09_s2l1_clip.mp4"
    args = ["track", str(clip), "--set", "detector.params.score_threshold=abc", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "detector.params" in result.output and "score_threshold" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tracker.max_lost_s=1e400", "tracker.max_lost_s=1e400: the value is inf; give a finite number"),
        ("tracker.max_lost_s=NaN", "the value is nan; give a finite number"),
        ("tracker.motion_noise=[1, -Infinity]", "tracker.motion_noise=[1, -Infinity]: [1] is -inf"),
        ("detector.tiles=[0,0]", "detector.tiles.0: Input should be greater than 0"),
    ],
    ids=["overflowing", "nan", "infinite in a list", "zero tiles"],
)
def test_values_a_run_cannot_use_are_refused_when_read(override: str, message: str) -> None:
    """Issue #15, item 11: these reached the tracker or the tiler and ended in OverflowError / ValueError tracebacks."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(overrides=[override], environ={})


def test_non_finite_numbers_in_a_file_or_the_environment_name_where(tmp_path: Path) -> None:
    path = _file(tmp_path, "tracker:\n  max_lost_s: .inf\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: tracker.max_lost_s is inf")):
        load_config(path, environ={})
    with pytest.raises(ConfigError, match=re.escape("tracker.max_lost_s=1e400: the value is inf")):
        load_config(environ={"TRACKID_TRACKER__MAX_LOST_S": "1e400"})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(128, 256)), "not a UTF-8 text file"),
        (b"a: &a [*a]\n", "refers to itself"),
        (b"[" * 5000, "nested too deeply"),
        (b"profile: [1]\n", "profile [1]: unknown"),
    ],
    ids=["binary", "self-referring alias", "deep nesting", "unhashable profile"],
)
def test_config_files_no_yaml_reader_expects_fail_cleanly(tmp_path: Path, content: bytes, message: str) -> None:
    """Issue #15, item 11: a binary YAML file raised UnicodeDecodeError."""
    path = tmp_path / "run.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path, environ={})


def test_a_byte_order_mark_in_a_config_file_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_bytes(b"\xef\xbb\xbftracker:\n  max_lost_s: 5\n")
    assert load_config(path, environ={})[0].tracker.max_lost_s == 5
