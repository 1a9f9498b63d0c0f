"""The job types: each a typed request that becomes one `trackid` command line writing into the job's folder.

A job runs the very command a person would type (`python -m trackid ...` in a worker process), so a job's artifacts
are the CLI's by construction, and every check, warning and run-folder rule of the command holds for jobs too. A
request names its inputs (paths under the service's `roots`, checked by `service.paths`), the profile where the
command has profiles, and `overrides` (`key=value`, the command's `--set`), whose precedence is the command's:
request (its fields, then its overrides) > profile > config file > defaults. The output folder is never the
caller's to choose: it is the job's `run/` folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["JOB_TYPES", "JobRequest", "JobSpec", "job_type_names"]

InputPath = Annotated[str, Field(min_length=1, max_length=4096, description="A path under the service's roots.")]
Overrides = Annotated[
    list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]+=.*$", max_length=1024)]],
    Field(max_length=64, description="Config overrides, key=value (the command's --set); beat the profile."),
]
Profile = Literal["fast_cpu", "balanced", "high_accuracy"]
ShippedFilter = Annotated[
    Literal["shipped", "boosted", "transformer"],
    Field(
        description="A persistence filter trackid ships: `shipped` (the default one, the boosted trees), `boosted` "
        "or `transformer`."
    ),
]


class JobSpec(BaseModel):
    """What every job request has; each type adds its inputs and says which fields are paths."""

    model_config = ConfigDict(extra="forbid")
    paths: ClassVar[tuple[str, ...]] = ()
    """Fields holding input paths (each a str, a list of them, or None)."""

    def argv(self, resolved: dict[str, list[Path]], run: Path) -> list[str]:  # pragma: no cover - each type has one
        raise NotImplementedError


class TrackJob(JobSpec):
    """`trackid track VIDEO`: detect, embed and track a video into a run folder."""

    type: Literal["track"]
    video: InputPath
    detections: InputPath | None = Field(None, description="MOT det file to replay instead of running a detector.")
    config: InputPath | None = None
    profile: Profile | None = None
    overrides: Overrides = []
    paths: ClassVar[tuple[str, ...]] = ("video", "detections", "config")

    def argv(self, resolved: dict[str, list[Path]], run: Path) -> list[str]:
        out = ["track", str(resolved["video"][0]), "--out", str(run)]
        out += _option("--detections", resolved.get("detections")) + _option("--config", resolved.get("config"))
        return out + _flag("--profile", self.profile) + _sets(self.overrides)


class MotJob(JobSpec):
    """`trackid track --detections`: MOTChallenge detections (a det file or a folder of sequences) into results."""

    type: Literal["mot"]
    detections: InputPath
    seqinfo: InputPath | None = None
    tracker: Annotated[str, Field(pattern=r"^[a-z0-9_\-]{1,40}$")] = "trackid"
    params: Overrides = Field([], description="Tracker parameters key=value (the command's --param).")
    min_score: float | None = Field(None, ge=-1e6, le=1e6)
    config: InputPath | None = None
    profile: Profile | None = None
    overrides: Overrides = []
    filter: ShippedFilter | None = Field(
        None, description="Leave out the tracks a shipped persistence filter calls transient."
    )
    paths: ClassVar[tuple[str, ...]] = ("detections", "seqinfo", "config")

    def argv(self, resolved: dict[str, list[Path]], run: Path) -> list[str]:
        detections = resolved["detections"][0]
        out = run if detections.is_dir() else run / f"{detections.parent.parent.name or 'result'}.txt"
        argv = ["track", "--detections", str(detections), "--out", str(out), "--tracker", self.tracker]
        argv += _option("--seqinfo", resolved.get("seqinfo")) + _option("--config", resolved.get("config"))
        argv += [a for p in self.params for a in ("--param", p)]
        argv += [] if self.min_score is None else ["--min-score", repr(self.min_score)]
        return argv + _flag("--profile", self.profile) + _flag("--filter", self.filter) + _sets(self.overrides)


class EpisodeJob(JobSpec):
    """`trackid episode VIDEO`: faces -> tracks -> identities -> cleanup (resumable stage by stage)."""

    type: Literal["episode"]
    video: InputPath
    stages: list[Literal["detect-track", "embed", "cluster", "cleanup", "report"]] = Field(
        [], max_length=5, description="Only these stages (default all)."
    )
    config: InputPath | None = None
    profile: Profile | None = None
    overrides: Overrides = []
    paths: ClassVar[tuple[str, ...]] = ("video", "config")

    def argv(self, resolved: dict[str, list[Path]], run: Path) -> list[str]:
        out = ["episode", str(resolved["video"][0]), "--out", str(run)]
        out += [a for s in self.stages for a in ("--stage", s)] + _option("--config", resolved.get("config"))
        return out + _flag("--profile", self.profile) + _sets(self.overrides)


class MulticamJob(JobSpec):
    """`trackid multicam run`: a site's recorded detections -> global tracks on the ground plane."""

    type: Literal["multicam"]
    site: InputPath = Field(description="The site YAML (its relative paths are read from its folder).")
    overrides: Overrides = []
    paths: ClassVar[tuple[str, ...]] = ("site",)

    def argv(self, resolved: dict[str, list[Path]], run: Path) -> list[str]:
        return ["multicam", "run", "--config", str(resolved["site"][0]), "--out", str(run), *_sets(self.overrides)]


class StereoJob(JobSpec):
    """`trackid stereo run`: a calibrated site -> triangulated 3D trajectories, optionally after the filter."""

    type: Literal["stereo"]
    site: InputPath
    filter: ShippedFilter | None = Field(None, description="A persistence filter trackid ships.")
    smooth: bool = True
    overrides: Overrides = []
    paths: ClassVar[tuple[str, ...]] = ("site",)

    def argv(self, resolved: dict[str, list[Path]], run: Path) -> list[str]:
        out = ["stereo", "run", "--config", str(resolved["site"][0]), "--out", str(run)]
        out += [*_flag("--filter", self.filter), "--smooth" if self.smooth else "--no-smooth"]
        return out + _sets(self.overrides)


class PhotosIngestJob(JobSpec):
    """`trackid photos ingest`: photo folders -> bursts -> one profile per individual in the gallery."""

    type: Literal["photos-ingest"]
    folders: Annotated[list[InputPath], Field(min_length=1, max_length=64)]
    site: Annotated[str, Field(min_length=1, max_length=200)]
    tuned: InputPath
    store: str | None = Field(
        None,
        max_length=4096,
        description="Gallery: a SQLite path under the roots, or a URL from the service's `stores`.",
    )
    labels: InputPath | None = None
    label_pattern: Annotated[str, Field(max_length=500)] | None = None
    config: InputPath | None = None
    overrides: Overrides = []
    paths: ClassVar[tuple[str, ...]] = ("folders", "tuned", "labels", "config", "store")

    def argv(self, resolved: dict[str, list[Path]], run: Path) -> list[str]:
        out = ["photos", "ingest", *map(str, resolved["folders"]), "--site", self.site, "--out", str(run)]
        out += ["--tuned", str(resolved["tuned"][0]), *_store(self.store, resolved)]
        out += _option("--labels", resolved.get("labels")) + _flag("--label-pattern", self.label_pattern)
        return out + _option("--config", resolved.get("config")) + _sets(self.overrides)


class PhotosTuneJob(JobSpec):
    """`trackid photos tune`: labelled (or, label-free, unlabelled) photos -> tuned.json and its report."""

    type: Literal["photos-tune"]
    folders: Annotated[list[InputPath], Field(min_length=1, max_length=64)]
    labels: InputPath | None = None
    label_pattern: Annotated[str, Field(max_length=500)] | None = None
    seed: int = Field(0, ge=0, le=2**31 - 1)
    label_free: bool = False
    site_travel_s: float | None = Field(None, ge=0, le=1e9)
    config: InputPath | None = None
    overrides: Overrides = []
    paths: ClassVar[tuple[str, ...]] = ("folders", "labels", "config")

    def argv(self, resolved: dict[str, list[Path]], run: Path) -> list[str]:
        out = ["photos", "tune", *map(str, resolved["folders"]), "--out", str(run), "--seed", str(self.seed)]
        out += _option("--labels", resolved.get("labels")) + _flag("--label-pattern", self.label_pattern)
        out += ["--label-free"] if self.label_free else []
        out += [] if self.site_travel_s is None else ["--site-travel-s", repr(self.site_travel_s)]
        return out + _option("--config", resolved.get("config")) + _sets(self.overrides)


class GalleryReprocessJob(JobSpec):
    """`trackid gallery reprocess --unassigned`: re-decide unassigned sightings after a calibration change."""

    type: Literal["gallery-reprocess"]
    store: Annotated[str, Field(min_length=1, max_length=4096)]
    model_id: Annotated[str, Field(min_length=1, max_length=200)]
    model_version: Annotated[str, Field(min_length=1, max_length=200)]
    calibrator: InputPath
    threshold: float = Field(0.5, ge=0, le=1)
    paths: ClassVar[tuple[str, ...]] = ("calibrator", "store")

    def argv(self, resolved: dict[str, list[Path]], run: Path) -> list[str]:
        return [
            "gallery",
            "reprocess",
            *_store(self.store, resolved),
            "--model-id",
            self.model_id,
            "--model-version",
            self.model_version,
            "--calibrator",
            str(resolved["calibrator"][0]),
            "--threshold",
            repr(self.threshold),
            "--unassigned",
            "--out",
            str(run),
        ]


JobRequest = Annotated[
    TrackJob | MotJob | EpisodeJob | MulticamJob | StereoJob | PhotosIngestJob | PhotosTuneJob | GalleryReprocessJob,
    Field(discriminator="type"),
]
JOB_TYPES: dict[str, type[JobSpec]] = {
    t.model_fields["type"].annotation.__args__[0]: t  # type: ignore[union-attr]
    for t in (TrackJob, MotJob, EpisodeJob, MulticamJob, StereoJob, PhotosIngestJob, PhotosTuneJob, GalleryReprocessJob)
}


def job_type_names() -> list[str]:
    return sorted(JOB_TYPES)


def _option(name: str, paths: list[Path] | None) -> list[str]:
    return [name, str(paths[0])] if paths else []


def _flag(name: str, value: str | None) -> list[str]:
    return [] if value is None else [name, value]


def _sets(overrides: list[str]) -> list[str]:
    return [a for item in overrides for a in ("--set", item)]


def _store(store: str | None, resolved: dict[str, list[Path]]) -> list[str]:
    """A URL store as given (the service checked it against its `stores`), a path store resolved."""
    if store is None:
        return []
    return ["--store", store if "://" in store else str(resolved["store"][0])]
