"""One typed configuration tree for a run (video or gallery), with profiles and a fixed precedence.

Precedence, highest first: command-line `--set key=value` > environment (`TRACKID_SECTION__KEY=value`) > a profile
chosen on the command line (`--profile`) or in the environment (`TRACKID_PROFILE`) > YAML config file > a profile
the file names (`profile:`), else the default profile > defaults. So a file's own settings always beat the profile
it did not ask to override it with: `tracker.high_score: 0.8` in a file is 0.8, whatever the default profile says.
Layers are merged as nested dictionaries and validated once by pydantic, so a wrong key or type anywhere fails with
the key's dotted path. A NaN or infinite number is refused in every layer (`1e400` reads as infinity): no setting
means "forever" by it, and time-based settings multiplied by a frame rate would overflow.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, ValidationInfo, field_validator

from trackid.detect import DETECTORS
from trackid.embed import EMBEDDERS
from trackid.embed.metric import METRICS
from trackid.embed.quality import QualityConfig
from trackid.identity.settings import GalleryConfig
from trackid.pipelines.episode.settings import EpisodeConfig
from trackid.registry import Registry
from trackid.track.tracker import TrackerConfig

__all__ = [
    "PROFILES",
    "ConfigError",
    "DetectorConfig",
    "EmbedderConfig",
    "PhotoTargets",
    "PhotosConfig",
    "RunConfig",
    "load_config",
    "parse_value",
    "read_yaml",
    "refuse_non_finite",
    "validation_problems",
]

ENV_PREFIX = "TRACKID_"


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key or file at fault."""


class _BackendChoice(BaseModel):
    """A registered backend's `name` and its `params`, both checked against `registry` when the config is read. The
    params stay as given (a saved config reads as it was written); the backend's model fills in the rest when it is
    built."""

    model_config = ConfigDict(extra="forbid")
    registry: ClassVar[Registry[Any]]

    @field_validator("name", check_fields=False)
    @classmethod
    def _registered(cls, name: str) -> str:
        cls.registry.entry(name)
        return name

    @field_validator("params", check_fields=False)
    @classmethod
    def _fit_backend(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "name" in info.data:  # else the name was wrong, and said so
            cls.registry.validate(info.data["name"], params)
        return params


class DetectorConfig(_BackendChoice):
    registry: ClassVar[Registry[Any]] = DETECTORS

    name: str = Field("nanodet", description="Registered detector (see `trackid.detect.DETECTORS`).")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="The detector's parameters, checked against its params model (e.g. `trackid.detect.NanoDetParams`"
        " for nanodet, where each is documented); unset ones keep its defaults.",
    )
    tiles: tuple[PositiveInt, PositiveInt] | None = Field(
        None,
        description="Run the detector on rows x cols overlapping tiles plus the full frame and merge: finds small, "
        "far people at roughly (1 + rows*cols)x the cost. None: the full frame only.",
    )
    min_score: float = Field(0.0, ge=0, le=1, description="Detections below this score are dropped.")


class EmbedderConfig(_BackendChoice):
    registry: ClassVar[Registry[Any]] = EMBEDDERS

    name: str = Field("mobilenetv2", description="Registered embedder (see `trackid.embed.EMBEDDERS`).")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="The embedder's parameters, checked against its params model (e.g. "
        "`trackid.embed.MobileNetV2Params` for mobilenetv2, where each is documented); unset ones keep its defaults.",
    )


class MetricConfig(_BackendChoice):
    """A metric `photos tune` learns on the labelled photos' features (see `trackid.embed.metric`)."""

    registry: ClassVar[Registry[Any]] = METRICS

    name: str = Field(
        "xqda",
        description="Registered metric learner: xqda (best on VIPeR/PRID), kissme or lda (see `bench/reid.py`).",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="The learner's parameters, checked against its params model."
    )
    features: EmbedderConfig = Field(
        default_factory=lambda: EmbedderConfig(name="lomo"),
        description="The descriptor the metric is learned on; LOMO's colour and texture maxima suit a linear metric.",
    )


class PhotoTargets(BaseModel):
    """What `trackid photos validate` calls a PASS."""

    model_config = ConfigDict(extra="forbid")

    max_false_match_rate: float = Field(
        0.05, ge=0, le=1, description="Share of all decisions that took another individual's profile."
    )
    min_accuracy_5plus: float = Field(
        0.8, ge=0, le=1, description="Share of sightings of individuals with >= 5 sightings in their main profile."
    )
    min_assignment_rate: float = Field(
        0.0, ge=0, le=1, description="Share of sightings matched to an existing profile rather than a new one."
    )


def _photo_embedder() -> EmbedderConfig:
    # Two different descriptors: deep features pooled by depth and stripe, and colour/texture histograms after a
    # grey-world balance (cameras differ in colour cast: PRID 2011 colour-only mAP 4.4 % -> 10.0 %).
    # Equal weights until `trackid photos tune` picks them from labelled photos.
    members = [{"name": "mobilenetv2-pyramid"}, {"name": "colour", "params": {"white_balance": True}}]
    return EmbedderConfig(name="ensemble", params={"members": members, "weights": [0.5, 0.5]})


class PhotosConfig(BaseModel):
    """Photo collections (e.g. trail cameras) -> individual profiles."""

    model_config = ConfigDict(extra="forbid")

    extensions: tuple[str, ...] = Field((".jpg", ".jpeg", ".png"), description="Files ingested (case-insensitive).")
    burst_gap_s: float = Field(
        10.0, ge=0, description="Photos of one camera this close in capture time form one burst = one sighting."
    )
    bursts_from_file_times: bool = Field(
        False,
        description="Also group photos without EXIF time by file time. Off: copying or unpacking resets file times, "
        "so they rarely say when a photo was taken.",
    )
    detector: DetectorConfig | None = Field(
        None, description="Finds individuals in a photo; null embeds the whole image (crops, or no detector fits)."
    )
    whole_image_fallback: bool = Field(
        True, description="A photo in which the detector finds nothing is embedded whole instead of skipped."
    )
    embedder: EmbedderConfig = Field(default_factory=_photo_embedder)
    metric: MetricConfig | None = Field(
        default_factory=MetricConfig,
        description="`tune` fits this metric on the tuning photos and adds it to the ensemble as one more member "
        "(saved as metric.npz in the tuned folder); null: the ensemble as configured. VIPeR rank-1 ~40 % for LOMO + "
        "XQDA against ~12 % for the generic ensemble; costs one LOMO description per crop.",
    )
    camera_centring: bool = Field(
        True,
        description="`tune` learns each camera's mean embedding and matching subtracts it (a camera's light and "
        "background make everyone it sees look alike): VIPeR mAP 13.9 -> 18.0 %, PRID 2011 25.1 -> 34.4 %.",
    )
    target_false_positive_rate: float = Field(
        0.02,
        gt=0,
        lt=1,
        description="`tune` picks the threshold at which this share of ingest decisions takes another individual's "
        "profile (replayed on labelled photos; not a pairwise rate, which hundreds of profiles would multiply).",
    )
    adaptation_warmup: int = Field(
        50,
        ge=0,
        description="Individuals (crops) a camera `tune` never saw must give before ingest fixes its camera mean and "
        "matches its photos; until then they are held back (and stored as new, unmatched, if the ingest ends first). "
        "Higher: a steadier mean (its noise falls as 1/sqrt(n)), later matching, small cameras left waiting; lower: "
        "sooner, noisier. 0 turns adaptation off: such cameras are matched uncentred, as before issue #16.",
    )
    drift_action: Literal["stop", "warn"] = Field(
        "warn",
        description="When a camera's decision scores leave the tuned distribution (the drift watch, "
        "`trackid.identity.drift`): only warn, or stop auto-matching it (its sightings become new identities, "
        "flagged, until re-tuned). Stop trades missed recognitions for no wave of false merges; warn is the default "
        "because a camera that adapts needs no stop (`bench/adaptation.py`: <= 0.4 % false matches after the "
        "warm-up either way), while ingesting one camera after another (everyone returning) can trip the watch on "
        "cameras tune saw (VIPeR's held-out half: 266 sightings stopped for nothing).",
    )
    drift_min_scores: int = Field(
        50,
        ge=10,
        description="Best-match scores between two drift tests of a camera (each test looks at the latest 4x as many). "
        "Higher: later, firmer alarms; lower: sooner, noisier.",
    )
    min_travel_s: float = Field(
        3600.0, ge=0, description="`monitor` flags one individual at two sites closer in time than this."
    )
    targets: PhotoTargets = Field(default_factory=PhotoTargets)


class RunConfig(BaseModel):
    """Everything a run needs besides its input."""

    model_config = ConfigDict(extra="forbid")

    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    embedder: EmbedderConfig | None = Field(
        default_factory=EmbedderConfig, description="Appearance embedder; null tracks by motion alone."
    )
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    quality: QualityConfig = Field(
        default_factory=QualityConfig,
        description="Crop-quality score (blur, size, truncation, overlap): picks each track's best crop and which "
        "crops may update its appearance memory.",
    )
    min_embed_quality: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Crops scoring below this are not embedded (zero vector): saves embedding time and keeps poor "
        "vectors out of the appearance memory, at the risk of losing appearance for far people.",
    )
    frame_stride: int = Field(1, ge=1, description="Process every n-th frame: n-times faster, coarser motion.")
    frame_rate: float | None = Field(
        None, gt=0, description="Override the container's frame rate (time-based tracker parameters use it)."
    )
    write_video: bool = Field(True, description="Write the annotated video (costs ~10% of a fast run).")
    camera_motion: Literal["none", "sparse", "ecc"] = Field(
        "none",
        description="Compensate camera motion from the frames (`trackid.track.cmc`): sparse optical flow (about 4 ms "
        "per 1080p frame) or ECC (20-65 ms, and it can lose a fast pan). For moving or shaking cameras; a fixed "
        "camera gains nothing.",
    )
    gallery: GalleryConfig = Field(default_factory=GalleryConfig)
    photos: PhotosConfig = Field(default_factory=PhotosConfig)
    episode: EpisodeConfig = Field(default_factory=EpisodeConfig, description="`trackid episode`: faces -> identities.")


# NanoDet-m (shipped, Apache-2.0) replaced SSDLite in every profile (issue #13): on PETS09-S2L1 it finds people down
# to ~40 px, at about SSDLite's cost. Its boxes are tight, so the tracker keeps its defaults (SSDLite's profiles needed
# an IoU gate of 0.1). Its score threshold of 0.35 keeps static clutter (rocks, cones: 0.25-0.35) from becoming
# tracks; 0.3-0.45 all give HOTA 53-57 there, 0.25 gives 44 (bench/video.py sweep, 2026-12-02).
_NANODET = {"name": "nanodet", "params": {"score_threshold": 0.35}}

PROFILES: dict[str, dict[str, Any]] = {
    # >= 25 frames/s on 2 cores at 768x576: no embedder, NanoDet on the full frame only.
    "fast_cpu": {
        "detector": {**_NANODET, "tiles": None},
        "embedder": None,
        # episodes: every 3rd frame, YuNet on frames shrunk to 480 px (2.5x faster, recall 0.99), 3 faces a track
        "episode": {"frame_stride": 3, "max_crops_per_track": 3, "face_detector_params": {"max_side": 480}},
    },
    # the default: MobileNetV2 appearance keeps identities through crossings and occlusions. Episodes: every 2nd frame.
    "balanced": {
        "detector": {**_NANODET, "tiles": None},
        "embedder": {"name": "mobilenetv2"},
        "episode": {"frame_stride": 2, "max_crops_per_track": 10},
    },
    # tiles find far, small people in crowds (MOT17 first frames: recall 0.30 -> 0.46); an ensemble adds
    # colour/texture to MobileNetV2; camera motion is compensated (neutral on a fixed camera); several times slower.
    "high_accuracy": {
        "camera_motion": "sparse",
        "detector": {**_NANODET, "tiles": (2, 2)},
        "embedder": {"name": "ensemble", "params": {"members": [{"name": "mobilenetv2"}, {"name": "colour"}]}},
        "tracker": {"appearance_weight": 0.9},
        "episode": {"frame_stride": 1, "max_crops_per_track": 20},
    },
}
DEFAULT_PROFILE = "balanced"


def load_config(
    config_file: str | os.PathLike[str] | None = None,
    profile: str | None = None,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> tuple[RunConfig, str]:
    """Merge the layers and validate; returns the config and the profile that was applied."""
    env = dict(os.environ if environ is None else environ)
    file_layer = read_yaml(Path(config_file)) if config_file is not None else {}
    explicit = profile or env.get(f"{ENV_PREFIX}PROFILE")
    named_in_file = file_layer.pop("profile", None)
    chosen = explicit or named_in_file or DEFAULT_PROFILE
    if not isinstance(chosen, str) or chosen not in PROFILES:
        raise ConfigError(f"profile {chosen!r}: unknown; choose from {', '.join(PROFILES)}")
    env_layer = _nested(
        (key[len(ENV_PREFIX) :].lower().replace("__", "."), value)
        for key, value in env.items()
        if key.startswith(ENV_PREFIX) and key != f"{ENV_PREFIX}PROFILE" and "__" in key
    )
    cli_layer = _nested(_split_assignment(item) for item in overrides)
    # The defaults are the lowest layer, so that setting one nested key keeps the rest of its section's defaults
    # (e.g. `photos.embedder.params.weights` keeps the default ensemble's members).
    merged: dict[str, Any] = RunConfig().model_dump()
    below = (file_layer, PROFILES[chosen]) if explicit else (PROFILES[chosen], file_layer)
    try:
        refuse_non_finite(file_layer, str(config_file))
        for layer in (*below, env_layer, cli_layer):
            _merge(merged, copy.deepcopy(layer))
        return RunConfig.model_validate(merged), chosen
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {validation_problems(exc)}") from None
    except RecursionError:  # a YAML alias that contains itself, or nesting no config has
        raise ConfigError(f"{config_file}: nested too deeply (or refers to itself) to be a config file") from None


def validation_problems(exc: ValidationError) -> str:
    """pydantic's errors on one line, each as `dotted.key: message` (no pydantic links or input echoes)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {_message(e)}" for e in exc.errors())


def _message(error: Mapping[str, Any]) -> str:
    """pydantic's message, or a validator's own words without pydantic's "Value error, " before them."""
    return str(error["ctx"]["error"]) if error["type"] == "value_error" else str(error["msg"])


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {exc.start} is {exc.object[exc.start]:#04x})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a config file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _split_assignment(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected key=value (e.g. tracker.max_lost_s=3)")
    return key.strip(), value.strip()


def _nested(pairs: Any) -> dict[str, Any]:
    """{'a.b': '1'} -> {'a': {'b': 1}}; values parsed by `parse_value` (3, 1e-3, true, null, [2, 2])."""
    out: dict[str, Any] = {}
    for dotted, raw in pairs:
        node = out
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{dotted}: {key} is not a section")
        try:
            node[leaf] = parse_value(raw)
        except ConfigError as exc:
            raise ConfigError(f"{dotted}={raw}: {exc}") from None
    return out


def parse_value(raw: str) -> Any:
    """One value syntax for every `key=value` of the command line (`--set` and `--param`): JSON first (so `1e-3` is
    a number, which YAML 1.1 reads as a string), else YAML (`[dog, horse]`, `{input_size: [400, 300]}`, `true`,
    `null`), else the text itself. A NaN or infinite number (`1e400`, `.inf`) raises `ConfigError`."""
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        try:
            value = yaml.safe_load(raw)
        except (yaml.YAMLError, RecursionError):
            value = raw
    try:
        refuse_non_finite(value)
    except RecursionError:
        raise ConfigError("nested too deeply to be a setting") from None
    return value


def refuse_non_finite(value: Any, where: str = "", key: str = "") -> None:
    """Raise `ConfigError` naming the first NaN or infinite number in nested dicts and lists (and `where` it is)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where + ': ' if where else ''}{key or 'the value'} is {value}; give a finite number")
    if isinstance(value, Mapping):
        for name, item in value.items():
            refuse_non_finite(item, where, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            refuse_non_finite(item, where, f"{key}[{index}]")


def _merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    """Deep merge; a None value replaces a whole section (e.g. `embedder: null`). A layer that names another
    backend (`name`) starts its `params` afresh: the old backend's would not fit it."""
    if "name" in layer and into.get("name") != layer["name"] and "params" in into:
        into["params"] = {}
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
