"""A site file: the cameras of one scene, how each is calibrated, where its recorded detections are.

```yaml
site: wildtrack              # names the run folder (runs/multicam/<site>)
fps: 2                       # frame numbers -> seconds (time = frame / fps)
unit_per_metre: 1.0          # ground units in a metre (EPFL Terrace's homographies: ~50.83)
method: group-with-tracks    # one of trackid.multiview.site_tracking.METHODS
min_views: 2                 # views that must see a person
min_score: 0.5               # default detection threshold of cameras that give none
cameras:
  - id: WILDTRACK-C1         # names its result file views/<id>.txt (as the ground truth names the view)
    calibration: {intrinsics: intr_CVLab1.xml, extrinsics: extr_CVLab1.xml, unit: 0.01}   # or {homography: H.txt}
    detections: det/WILDTRACK-C1/det/det.txt   # recorded detections; or, for an edge worker:
    # source: cam1.mp4 | rtsp://host/stream       # frames through OpenCV, detected by the site's `detector:`
    image_size: [1920, 1080]
    min_score: 0.5
detector: {name: nanodet}    # optional: what finds people in the frames of cameras with a `source` (DetectorConfig)
identities:                  # optional: global ids become persistent gallery identities (see below)
  gallery: runs/site-gallery.db   # a store URL (postgresql://...) or SQLite path, as `trackid gallery` takes it
  window_s: 1.0              # re-attach a person lost for at most this long (geometry alone: keep it short)
  max_speed_mps: 2.5         # how far such a person may have walked meanwhile
  start_time_s: 0.0          # the time of frame 0 of this recording, so a later recording continues the ids
world:                       # optional: the ground tracker's settings (`WorldConfig`; defaults shown)
  birth_gate: 0.75           # no new track inside this share of a tracked person's gate
  handover_s: 2.0            # seconds before a camera's tracklet may pass to another track
  view_tracklets: true       # track each camera first and link its tracklets
service:                     # optional: `trackid multicam edge` / `central` (`ServiceConfig`; defaults shown)
  broker: {url: "redis://localhost:6379/0", password_env: TRACKID_REDIS_PASSWORD, tls: false}
  spool_dir: spool           # the edges' outboxes, <site>/<camera>.db
  spool_max_messages: 100000
  camera_timeout_s: 15       # the linker goes on without a camera silent this long
```

Relative paths are read from the site file's folder, so a site folder can be moved whole. Every key is checked
(a typo is an error naming it), and `--set key=value` overrides a key (`cameras.<id>.<key>` for one camera's) with
the command line's one value syntax (`trackid.config.parse_value`). Mistakes raise `ConfigError` naming the file
and the key; the files themselves are read later, by the run, which names the camera whose file is at fault.

Without `identities` a run's global ids are its own track numbers. With it the run maps them to identities of the
gallery (`trackid.identity.global_ids.GlobalIdentities`, `site` as the identities' site), so a person the tracker
lost for up to `window_s` keeps the id, and so does one walking on from the previous recording (its `start_time_s`
+ duration is this one's `start_time_s`). A relative SQLite path is read from the site file's folder, like the others.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from trackid.config import ConfigError, DetectorConfig, parse_value, read_yaml, refuse_non_finite
from trackid.identity.global_ids import DEFAULT_WINDOW_S
from trackid.multiview import site_tracking
from trackid.multiview.world_tracking import WorldTracker
from trackid.pipelines.multicam.broker import BrokerConfig
from trackid.sources.video import is_stream_url

__all__ = [
    "CalibrationConfig",
    "CameraConfig",
    "IdentitiesConfig",
    "ServiceConfig",
    "SiteConfig",
    "WorldConfig",
    "load_site",
]

_WORLD = WorldTracker()
"""The ground tracker's defaults, read from it so the site file cannot drift from them."""

_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
"""Site names and camera ids become file and folder names: no separators, no leading dot."""


class CalibrationConfig(BaseModel):
    """OpenCV XML `intrinsics` + `extrinsics` (WILDTRACK's layout), or an image -> ground `homography` text file
    (EPFL's); `unit` converts the calibration's world unit to the ground unit (centimetres -> metres: 0.01)."""

    model_config = ConfigDict(extra="forbid")

    intrinsics: Path | None = Field(None, description="OpenCV XML with camera_matrix (zero distortion).")
    extrinsics: Path | None = Field(None, description="OpenCV XML with rvec and tvec.")
    homography: Path | None = Field(None, description="Text file with the 3x3 image -> ground homography.")
    unit: PositiveFloat = Field(1.0, description="Ground units per calibration world unit.")

    @field_validator("intrinsics", "extrinsics", "homography")
    @classmethod
    def _from_site_folder(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve(path, info)

    @model_validator(mode="after")
    def _one_kind(self) -> CalibrationConfig:
        opencv = (self.intrinsics, self.extrinsics)
        if self.homography is not None and any(p is not None for p in opencv):
            raise ValueError("give either homography, or intrinsics and extrinsics, not both")
        if self.homography is None and any(p is None for p in opencv):
            raise ValueError("give homography, or both intrinsics and extrinsics")
        return self


class CameraConfig(BaseModel):
    """One view of the site."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The view's name; its result file is views/<id>.txt.")
    calibration: CalibrationConfig
    detections: Path | None = Field(
        None, description="MOTChallenge det file (frame, -1, x, y, w, h, score, ...), 1-based frames."
    )
    source: str | None = Field(
        None,
        description="For an edge worker: a video file (relative: site folder) or a stream URL (rtsp://, http://...) "
        "read through OpenCV; its frames go through the site's detector. Used instead of `detections`.",
    )
    image_size: tuple[PositiveInt, PositiveInt] | None = Field(
        None,
        description="Width, height in pixels: tells a box cut by the bottom edge (its feet are out of the frame) and "
        "which side of a homography's horizon is ground. None: no box is taken for cut.",
    )
    min_score: float | None = Field(
        None,
        description="This camera's detection threshold (detectors and light differ between cameras); None: the "
        "site's min_score.",
    )

    @field_validator("id")
    @classmethod
    def _file_name(cls, name: str) -> str:
        return _checked_name(name)

    @field_validator("detections")
    @classmethod
    def _from_site_folder(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve(path, info)

    @field_validator("source")
    @classmethod
    def _file_from_site_folder(cls, source: str | None, info: ValidationInfo) -> str | None:
        if source is None or is_stream_url(source):
            return source
        return str(_resolve(Path(source), info))

    @model_validator(mode="after")
    def _something_to_track(self) -> CameraConfig:
        if self.detections is None and self.source is None:
            raise ValueError(f"camera {self.id!r}: give its recorded `detections` or a `source` (video file or URL)")
        return self


class IdentitiesConfig(BaseModel):
    """Where the site's persistent identities live and when a track continues one (see `GlobalIdentities`)."""

    model_config = ConfigDict(extra="forbid")

    gallery: str = Field(
        min_length=1,
        description="Gallery store: postgresql://... or an SQLite path (created when missing; relative paths from "
        "the site file's folder). Several recordings of the site share it.",
    )
    window_s: NonNegativeFloat = Field(
        DEFAULT_WINDOW_S,
        description="How long after someone was last seen a new track may continue their identity. Longer re-attaches "
        "longer absences, but with geometry alone also hands a departed person's id to a newcomer (WILDTRACK IDF1 "
        "57.5 -> 27.5 at 600 s); 1 s holds it.",
    )
    max_speed_mps: NonNegativeFloat = Field(
        2.5, description="Walking speed bounding how far a person got during a gap; higher: more candidates per track."
    )
    start_time_s: FiniteFloat = Field(
        0.0,
        description="Time (s) of frame 0 of this recording; a later recording of the site into the same gallery starts "
        "where the earlier one ended (or give epoch seconds).",
    )

    @field_validator("gallery")
    @classmethod
    def _from_site_folder(cls, gallery: str, info: ValidationInfo) -> str:
        if "://" in gallery:  # a URL (postgresql://, sqlite:///abs) is taken as written
            return gallery
        resolved = _resolve(Path(gallery), info)
        return str(resolved)


class WorldConfig(BaseModel):
    """The ground tracker's settings (`trackid.multiview.world_tracking.WorldTracker`, whose docstring says how each
    default was chosen); the defaults serve 2 fps and 25 fps alike."""

    model_config = ConfigDict(extra="forbid")

    accel_sigma: PositiveFloat = Field(_WORLD.accel_sigma, description="People's acceleration noise, m/s^2.")
    position_sigma: NonNegativeFloat = Field(_WORLD.position_sigma, description="Metres all views are off together.")
    gate_probability: float = Field(
        _WORLD.gate_probability, gt=0, lt=1, description="Chi-square(2) share a position may join a track in."
    )
    min_hits: PositiveInt = Field(_WORLD.min_hits, description="Positions a track needs before it is reported.")
    min_age_s: NonNegativeFloat = Field(_WORLD.min_age_s, description="Seconds a track lives unreported.")
    max_lost_s: NonNegativeFloat = Field(_WORLD.max_lost_s, description="Seconds unseen after which a track ends.")
    handover_s: NonNegativeFloat = Field(_WORLD.handover_s, description="Seconds before a tracklet moves.")
    birth_gate: float = Field(
        _WORLD.birth_gate, ge=0, lt=1, description="Share of a tracked person's gate where no track starts; 0: off."
    )
    view_tracklets: bool = Field(True, description="Track each camera first and let its tracklets steer (linking).")
    view_disagreement_m: NonNegativeFloat | None = Field(
        None, description="Metres two views put one person apart; None: measured as the site runs."
    )

    def tracker(self, unit_per_metre: float) -> WorldTracker:
        settings = self.model_dump(exclude={"view_tracklets", "view_disagreement_m"})
        return WorldTracker(unit_per_metre=unit_per_metre, **settings)


class ServiceConfig(BaseModel):
    """The multi-camera service's settings (`trackid multicam edge` / `central`): the broker, the edges' spools,
    and how long the linker waits for a silent camera."""

    model_config = ConfigDict(extra="forbid")

    broker: BrokerConfig = Field(default_factory=BrokerConfig, description="Where Redis is and how to reach it.")
    spool_dir: Path = Field(
        Path("spool"),
        validate_default=True,
        description="Folder of the edges' spool files (<site>/<camera>.db); relative: site folder.",
    )
    spool_max_messages: int = Field(
        100_000, ge=2, description="Unsent messages an edge keeps (100,000: ~3 h of one 10 fps camera's outage)."
    )
    spool_policy: Literal["block", "drop-oldest"] | None = Field(
        None,
        description="At the cap: block (wait for the broker) or drop-oldest (a live camera cannot wait); None: "
        "block for recorded detections, drop-oldest for live sources.",
    )
    camera_timeout_s: PositiveFloat = Field(
        15.0,
        description="Seconds the linker waits for a silent camera before going on without it (its late frames are "
        "then dropped, counted and logged). Longer rides out longer edge restarts; shorter keeps the lag low when a "
        "camera dies.",
    )
    lease_ttl_s: PositiveFloat = Field(
        10.0, description="Seconds a linker's claim on a site outlives it: how soon a standby takes over."
    )

    @field_validator("spool_dir")
    @classmethod
    def _from_site_folder(cls, path: Path, info: ValidationInfo) -> Path:
        resolved = _resolve(path, info)
        assert resolved is not None
        return resolved


class SiteConfig(BaseModel):
    """A site: its cameras and how their detections become global tracks (see `track_site`)."""

    model_config = ConfigDict(extra="forbid")

    site: str = Field(description="The site's name; the default run folder is runs/multicam/<site>.")
    fps: PositiveFloat = Field(description="Frames per second of the detections' frame numbers.")
    unit_per_metre: PositiveFloat = Field(1.0, description="Ground units in a metre (1 when the ground is in metres).")
    method: str = Field(site_tracking.METHODS[0], description="How views become global tracks; one of METHODS.")
    min_views: PositiveInt = Field(
        2,
        description="Views that must see a person: 1 trusts single views (and their false detections), more needs "
        "more overlap.",
    )
    min_score: float = Field(0.5, description="Detection threshold of the cameras that set none.")
    detector: DetectorConfig = Field(
        default_factory=DetectorConfig, description="Finds people in the frames of cameras that have a `source`."
    )
    cameras: list[CameraConfig] = Field(min_length=1)
    identities: IdentitiesConfig | None = Field(
        None, description="Persistent gallery identities instead of per-run track ids; None: the run's track ids."
    )
    world: WorldConfig = Field(default_factory=WorldConfig, description="The ground tracker's settings.")
    service: ServiceConfig = Field(
        default_factory=dict,  # validated, so its paths resolve from the site folder
        validate_default=True,
        description="The multi-camera service: broker, spools, waits.",
    )

    @field_validator("site")
    @classmethod
    def _file_name(cls, name: str) -> str:
        return _checked_name(name)

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        methods = site_tracking.METHODS  # read when validating: the multiview package may add methods
        if method not in methods:
            raise ValueError(f"{method!r} is unknown; choose from {', '.join(methods)}")
        return method

    @field_validator("cameras")
    @classmethod
    def _distinct_ids(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        ids = [c.id for c in cameras]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"camera ids must differ; {', '.join(repeated)} appear more than once")
        return cameras

    def min_score_of(self, camera: CameraConfig) -> float:
        return self.min_score if camera.min_score is None else camera.min_score

    def tracking_options(self) -> dict[str, Any]:
        """The keyword arguments of `track_site` / `SiteStepper` this site sets (the recorded run and the linker
        must track alike)."""
        return {
            "fps": self.fps,
            "unit_per_metre": self.unit_per_metre,
            "method": self.method,
            "min_views": self.min_views,
            "tracker": self.world.tracker(self.unit_per_metre),
            "view_tracklets": self.world.view_tracklets,
            "view_disagreement_m": self.world.view_disagreement_m,
        }


def load_site(path: str | Path, overrides: Sequence[str] = ()) -> SiteConfig:
    """Read and check a site file, with `key=value` overrides on top; relative paths are read from its folder.

    Raises:
        ConfigError: the file is missing or not YAML, a key is unknown, a value is invalid, an override names no
            key or camera; the message names the file and the key.
    """
    path = Path(path)
    data = read_yaml(path)
    refuse_non_finite(data, str(path))
    for item in overrides:
        _override(data, item)
    try:
        return SiteConfig.model_validate(data, context={"folder": path.parent})
    except ValidationError as exc:
        problems = "; ".join(f"{_location(e['loc'], data)}: {_message(e)}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply (or refers to itself) to be a site file") from None


def _override(data: dict[str, Any], item: str) -> None:
    """Apply one `--set key=value` in place: a site key, or `cameras.<id>.<key>` (nested with dots)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected key=value (e.g. min_views=3 or cameras.<id>.min_score=0.4)")
    try:
        value = parse_value(raw.strip())
    except ConfigError as exc:
        raise ConfigError(f"--set {item!r}: {exc}") from None
    node: Any = data
    parts = key.split(".")
    if parts[0] == "cameras" and len(parts) > 2:
        cameras = data.get("cameras")
        by_id = {c.get("id"): c for c in cameras if isinstance(c, dict)} if isinstance(cameras, list) else {}
        if parts[1] not in by_id:
            known = ", ".join(str(i) for i in by_id) or "none"
            raise ConfigError(f"--set {item!r}: no camera {parts[1]!r} in the site (cameras: {known})")
        node, parts = by_id[parts[1]], parts[2:]
    *parents, leaf = parts
    for name in parents:
        node = node.setdefault(name, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {item!r}: {name} is not a section")
    node[leaf] = copy.deepcopy(value)


def _resolve(path: Path | None, info: ValidationInfo) -> Path | None:
    if path is None:
        return None
    path = path.expanduser()
    folder = (info.context or {}).get("folder")
    return path if path.is_absolute() or folder is None else Path(folder) / path


def _checked_name(name: str) -> str:
    if not _FILE_NAME.match(name):
        raise ValueError(
            f"{name!r} names files and folders: use letters, digits and _ . + - (not starting with . _ + -)"
        )
    return name


def _location(loc: Sequence[int | str], data: Mapping[str, Any]) -> str:
    """pydantic's location as the file reads: `cameras[2] (WILDTRACK-C3).calibration.intrinsics`."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
            cameras = data.get("cameras")
            if loc[i - 1] == "cameras" and isinstance(cameras, list) and part < len(cameras):
                camera = cameras[part]
                if isinstance(camera, dict) and isinstance(camera.get("id"), str):
                    out += f" ({camera['id']})"
        else:
            out += f".{part}" if out else str(part)
    return out or "site"


def _message(error: Mapping[str, Any]) -> str:
    """pydantic's message, or a validator's own words without pydantic's "Value error, " before them; an unknown
    key lists the keys its section knows."""
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    if error["type"] == "extra_forbidden":
        parents = [p for p in error["loc"][:-1] if isinstance(p, str)]
        sections: dict[str, type[BaseModel]] = {
            "calibration": CalibrationConfig,
            "cameras": CameraConfig,
            "identities": IdentitiesConfig,
            "world": WorldConfig,
            "service": ServiceConfig,
            "broker": BrokerConfig,
        }
        model = sections.get(parents[-1], SiteConfig) if parents else SiteConfig
        return f"unknown key; expected one of {', '.join(model.model_fields)}"
    return str(error["msg"])
