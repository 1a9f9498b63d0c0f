"""The `episode:` section of a run's config: faces in a video -> face tracks -> identities.

Profiles (`trackid.config.PROFILES`) set the speed/accuracy dials (`frame_stride`, `max_crops_per_track`); the
precedence is the run config's: `--set` > environment > `--profile` > YAML file > the default profile > these
defaults.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

__all__ = ["EpisodeConfig"]


class EpisodeConfig(BaseModel):
    """What `trackid episode` does at each stage."""

    model_config = ConfigDict(extra="forbid")

    face_detector: Literal["yunet", "dlib-face"] = Field(
        "yunet", description="yunet: frontal and turned faces from ~10 px (recall 0.996 on the assembled episode)."
    )
    face_detector_params: dict[str, Any] = Field(default_factory=dict, description="The detector's parameters.")
    frame_stride: PositiveInt = Field(1, description="Detect and track every n-th frame.")
    detection_fps_limit: float | None = Field(
        None, gt=0, description="At most this many frames per second of video are processed (raises the stride)."
    )
    min_face_px: float = Field(16.0, ge=1, description="Faces smaller than this (shorter side, px) are dropped.")
    short_track_s: float = Field(
        0.5, ge=0, description="A track shorter than this counts as short (`short_track_fraction`)."
    )
    max_crops_per_track: PositiveInt = Field(10, description="Faces of a track that are embedded.")
    crop_sampling: Literal["uniform", "quality", "stratified"] = Field(
        "stratified",
        description="uniform: evenly over the track; quality: the sharpest; stratified: the sharpest of each of "
        "max_crops_per_track equal stretches of the track (covers the track and avoids blur).",
    )
    max_crops_per_episode: PositiveInt = Field(
        20_000, description="Embedded faces in all; beyond it tracks get fewer, with a warning."
    )
    min_blur: float = Field(
        15.0, ge=0, description="Faces whose Laplacian variance is below this are rejected as blurred."
    )
    max_yaw_deg: float = Field(
        60.0, gt=0, le=90, description="Faces turned further sideways (from five landmarks) are not embedded."
    )
    max_pitch_deg: float = Field(
        45.0,
        gt=0,
        le=90,
        description="Faces tilted further up or down than this from the episode's median face are not embedded.",
    )
    embedder: Literal["auto", "dlib", "faceres", "faceres-aligned"] = Field(
        "auto",
        description="dlib: the ResNet shipped with face_recognition_models; faceres: HSE FaceRes (`trackid models "
        "fetch`; YouTube Faces AUC 0.95 vs dlib's 0.92, 8x faster); faceres-aligned: FaceRes on chips aligned on "
        "five landmarks (better apart on the assembled episode's tracks, no better on single faces: "
        "bench/faces.py); auto: faceres when fetched, else dlib.",
    )
    fallback_threshold: float | None = Field(
        None,
        gt=0,
        le=2,
        description="Cosine distance used when the episode has no pairs to choose the threshold from (one face on "
        "screen at a time); null: the embedder's own (dlib 0.05, faceres 0.26, faceres-aligned 0.24: between its "
        "farthest tracks of one person and nearest of two, bench/episode_tracks.py).",
    )
    split_min_faces: PositiveInt = Field(
        3,
        description="cleanup splits a track where its faces' embeddings jump only if each part keeps at least this "
        "many embedded faces (fewer cannot tell a jump from one bad crop).",
    )
    rejoin_gap_s: float = Field(
        1.0,
        ge=0,
        description="A track starting within this long after another ended, in the same shot and where its last face "
        "was, is clustered with it (must-link: the tracker lost the face behind an occlusion).",
    )
    outliers: Literal["treat_as_singletons", "keep"] = Field(
        "treat_as_singletons",
        description="Tracks far from every other (an outlier) become their own identity, or stay where clustering "
        "put them.",
    )
