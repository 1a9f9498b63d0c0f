"""The online tracker's parameters: each with its trade-off and with what it adapts to (detector, frame rate, crowd).

Kept apart from `tracker.py` because the configuration tree (`trackid.config`), the CLI and the benchmarks read it
without needing the tracker, and because a tracker reads top to bottom better without 250 lines of fields first.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trackid.track.association import AssignmentMethod

__all__ = ["TrackerConfig"]


class TrackerConfig(BaseModel):
    """Every parameter with its trade-off, and what it adapts to: times are in seconds (converted with the stream's
    frame rate), score thresholds are quantiles of the stream's own scores, box noise is a fraction of box size.

    One set of defaults serves every detector and sequence: no per-sequence or per-detector values. They were set by
    `bench/tune.py` (issue #12): a TPE search scoring each candidate by the smallest of its mean HOTA margins over
    the best peer on six detection sets (MOT15 and MOT17 with FRCNN, MOT15 with ACF margins, MOT17 at 5 frames/s,
    PETS09-S2L1 with trackid's own SSDLite and HOG detections), the mean taken over the detections as given and
    jittered, so that neither one detector nor chaotic luck is what gets selected. `bench/generalise.py` scores them
    on nine more sets, and `bench/tune.py --loso` shows what a search that never saw a set scores on it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    high_score: float = Field(
        0.13,
        ge=0,
        le=1,
        description="Detections at or above this score take part in the first association. Raising it keeps "
        "doubtful boxes from steering tracks but hands more true people to the weaker second stage. Adapts to the "
        "detector: with `score_scale` 'rank' (the default) it is a quantile of the stream's own scores.",
    )
    low_score: float = Field(
        0.002,
        ge=0,
        le=1,
        description="Detections between this and `high_score` can only continue tracks seen in the previous frame "
        "(ByteTrack). Lowering it keeps occluded people tracked, at the risk of continuing tracks onto clutter. "
        "A quantile of the stream's scores, like `high_score`.",
    )
    new_track_score: float = Field(
        0.39,
        ge=0,
        le=1,
        description="A detection needs this score to start a track. Raising it suppresses short false tracks, "
        "but people who are only ever weakly detected are never tracked. A quantile of the stream's scores, like "
        "`high_score`; a stream where none reaches it is reported (`OnlineTracker.warnings`).",
    )
    iou_gate: float = Field(
        0.28,
        ge=0,
        le=1,
        description="Minimum IoU between a track's predicted box and a detection for them to be matched. Lowering "
        "it follows fast or erratic motion and low frame rates, but lets tracks jump to neighbours in crowds. "
        "Not adapted: the gate is taken against the motion model's prediction, so what it must absorb is the "
        "prediction's error, which the adaptive process noise keeps in line with the frame rate; checked at 5 to 30 "
        "frames/s and on the densest sequences by bench/generalise.py.",
    )
    low_score_iou_gate: float = Field(
        0.62,
        ge=0,
        le=1,
        description="The IoU gate for low-score detections, stricter because they are less trustworthy. Not "
        "adapted, for the reason `iou_gate` is not.",
    )
    height_iou: bool = Field(
        True,
        description="Multiply IoU by the overlap of the boxes' vertical extents (Hybrid-SORT's height-modulated "
        "IoU): people at different depths differ in height and foot position, so it separates occluder from "
        "occluded better than IoU alone.",
    )
    score_weighted_iou: bool = Field(
        True,
        description="Multiply the similarity by the detection score (ByteTrack's score fusion): among overlapping "
        "candidates a track prefers the confident one. Off treats all detections above the gate alike. The score "
        "is the one the thresholds see (a rank by default), so the weighting does not depend on the detector.",
    )
    direction_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of the heading-consistency penalty (turn angle / pi x weight x detection score; OC-SORT's "
        "momentum). Raising it resists identity swaps between people crossing, but penalises genuine turns. Off by "
        "default: over ten detection sets, jittered runs included, 0.16 lost up to 1.2 HOTA at low frame rates "
        "(a heading over a few observations is a longer, less predictive walk there) and with HOG's jittery boxes "
        "(bench/mot.py ablation). Dimensionless (an angle over pi), so it needs no adapting.",
    )
    direction_span: int = Field(
        3,
        ge=1,
        le=7,
        description="Heading is measured between the latest observation and the one this many observations "
        "earlier. Longer spans average out box jitter but react later to real turns. A count of observations, not a "
        "time: at a low frame rate each step is a longer walk, so the heading is as trustworthy in fewer seconds.",
    )
    confirmed_first: bool = Field(
        True,
        description="Match confirmed tracks before tentative ones, so a fresh (possibly false) track cannot take "
        "the detection of an established track that is passing by. Only matters with `min_hits` above 1.",
    )
    min_hits: int = Field(
        1,
        ge=1,
        description="Matched detections a tentative track needs before it is reported. A count, not a time: it is "
        "evidence that the object is real. Raising it removes short false tracks but drops the first frames of "
        "every real one. (2 before issue #12: with a stricter `new_track_score` quantile, reporting from the first "
        "detection won the search; at 5 frames/s the frame a tentative track waits is a fifth of a second of it.)",
    )
    max_lost_s: float = Field(
        2.46,
        gt=0,
        le=3600,
        description="Seconds a confirmed track survives without a detection, waiting to be recovered. Longer "
        "bridges longer occlusions but gives a lost track more time to steal someone else's detection. "
        "Seconds, so it means the same at every frame rate (converted with the stream's rate).",
    )
    reupdate: bool = Field(
        True,
        description="Re-run the filter along a virtual straight path when a track is recovered after a gap "
        "(OC-SORT's ORU), so the drift accumulated while unobserved does not leak into its velocity.",
    )
    recover_by_last_box: bool = Field(
        True,
        description="Match leftover detections to the last *observed* box of unmatched tracks (OC-SORT's OCR).",
    )
    appearance_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of appearance (cosine distance between a track's appearance memory and a detection's "
        "embedding) in the association cost, the rest being motion. Used only when detections carry embeddings. "
        "Raising it keeps identities through crossings, but trusts embeddings that occlusion or a generic "
        "(non re-ID) model make noisy; 0 ignores embeddings. (0.9 before issue #6: with its motion model, 0.9 "
        "costs PETS09-S2L1 with MobileNetV2 about 2 HOTA against motion alone, 0.5 does not, and with DeepSORT "
        "re-ID features on MOT17-05/09 every weight from 0.3 to 0.9 gains the same 4 HOTA; bench/appearance.py.) "
        "A share, so it needs no adapting to the detector; how far to trust appearance depends on the embedder.",
    )
    appearance_gate: float = Field(
        0.3,
        ge=0,
        le=2,
        description="Cosine distance above which a track and a detection may not match, however well they overlap. "
        "Lowering it prevents more identity swaps but splits tracks whose look changes (turning, lighting). "
        "Depends on the embedder's distance scale, which this issue's benchmarks (boxes only) do not exercise: "
        "set it per embedder (bench/appearance.py).",
    )
    appearance_momentum: float = Field(
        0.9,
        ge=0,
        lt=1,
        description="Exponential moving average of a track's appearance memory: the weight kept by the old memory "
        "at each update. Higher is steadier against one bad crop, slower to follow a real change of look. Per "
        "update, not per second: a look changes with what the camera saw, not with the time between frames.",
    )
    appearance_min_quality: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Only confident detections whose crop quality reaches this update a track's appearance memory, "
        "so blurred, truncated or occluded crops cannot teach a track the wrong look. On the quality model's own "
        "[0, 1] scale (`embed.quality`), not the detector's.",
    )
    assignment: AssignmentMethod = Field(
        "optimal",
        description="'optimal' (Jonker-Volgenant) or 'greedy' (cheapest pair first; kept for ablations only).",
    )
    report_filtered_box: bool = Field(
        True,
        description="Report the Kalman-filtered box rather than the raw detection. Filtering removes detector "
        "jitter (mostly a localisation gain); turn it off when boxes must match detections exactly.",
    )
    motion_noise: tuple[float, float, float] = Field(
        (0.054, 0.00255, 0.056),
        description="Kalman standard deviations (position, velocity, measurement) as fractions of box size per "
        "frame at 30 fps. The velocity noise is scaled by 30 / frame rate, since a walker's change of speed "
        "between frames grows with the time between them. More velocity noise follows manoeuvres but predicts "
        "worse through occlusion; more measurement noise smooths jitter but lags real motion. These are the "
        "noise at scale 1; `adaptive_noise` rescales the process part to the scene. Fractions of box size, so they "
        "serve near and far people alike; the frame rate is handled by the scaling above.",
    )
    mahalanobis_gate: float = Field(
        0.0,
        ge=0,
        description="Squared Mahalanobis distance (box, 4 axes) above which a detection may not match a track; "
        "0 turns the gate off. An uncertainty-aware gate (wide for a track lost a while, tight for a steady one); "
        "CV Kalman only. It costs HOTA on MOT15 at every level tried (9.49 = chi-square 95 %: 40.81 -> 31.66; "
        "40: 39.58) and gains MOT17 only 0.14 at 40 (bench/mot.py ablation, 2026-12-01), so it is off.",
    )
    scene_motion_z: float = Field(
        2.23,
        ge=0,
        description="Camera motion read off the tracks: when the confirmed tracks matched in the first pass were all "
        "displaced the same way from their predictions (the median displacement more than this many standard errors "
        "from zero, `cmc.shift_from_tracks`), the tracks left unmatched are moved by it and matched again. This is "
        "how a camera's pan or jolt reaches people who were not detected, without frames. Lower follows smaller "
        "common motions but starts moving lost tracks by chance in a fixed camera; 0 turns it off. A z-score: it is "
        "measured against the spread of the tracks' own displacements, so box noise, frame rate and crowd size "
        "enter through that spread and need no other adapting.",
    )
    coast_s: float = Field(
        0.48,
        ge=0,
        le=3600,
        description="Seconds a lost confirmed track keeps being reported at its predicted box while it is hidden "
        "behind a nearer tracked person (see `coast_min_cover`): the person is still there, only not detected. "
        "Longer covers longer occlusions but reports more boxes for people who have really gone; 0 reports only "
        "matched tracks. Seconds, converted with the stream's frame rate.",
    )
    coast_min_cover: float = Field(
        0.26,
        ge=0,
        le=1,
        description="Share of a lost track's predicted box that must be covered by the box of a track matched this "
        "frame whose bottom edge is lower in the image (nearer the camera) for the lost track to be reported. Lower "
        "reports more occluded people, and more people who simply left. A share of the box: scale-free.",
    )
    coast_min_hits: int = Field(
        2,
        ge=1,
        description="Matched detections a track needs before it is reported through an occlusion: a short track is "
        "more often a false one. A count of observations, as `min_hits`: evidence, not time.",
    )
    adaptive_noise: float = Field(
        0.0025,
        ge=0,
        lt=1,
        description="Per-frame weight, at 30 frames/s, of the running estimate that scales every filter's process "
        "noise: the median normalised innovation of tracks matched in consecutive frames (1 when the noise settings "
        "fit the scene). Higher adapts faster to a change of scene, lower is steadier; 0 keeps the noise fixed. At "
        "other frame rates the weight is converted so that the estimate forgets at the same rate per second "
        "(before issue #12 it was per frame, so a 5 frames/s stream adapted six times slower).",
    )
    noise_scale_range: tuple[float, float] = Field(
        (0.27, 7.4),
        description="Bounds of that scale of the process noise variance, so a few frames of odd boxes cannot "
        "freeze or unleash the filters. Ratios to the configured noise: they bound the adaptation, whatever the "
        "scene.",
    )
    score_scale: Literal["rank", "calibrated", "raw"] = Field(
        "rank",
        description="How the score thresholds (`high_score`, `low_score`, `new_track_score`) and the score weighting "
        "read a detection's score. 'rank': its rank among the stream's recent scores (`trackid.track.score_scale`), "
        "so every threshold is a quantile and any monotone remap of the detector's scores changes nothing; this "
        "is what makes one set of defaults serve FRCNN, YOLO-style and margin-scored detectors alike. 'calibrated': "
        "the share of detections at that score that end on a confirmed track, learnt online from the tracker's own "
        "outcomes (`ScoreCalibration`); as invariant, but no better than ranks in the ablation and unstable at strict "
        "thresholds, where it can talk itself out of starting tracks. 'raw': the detector's own numbers, for a "
        "detector whose scores are calibrated probabilities; the thresholds must then be set for that detector.",
    )
    score_window: int = Field(
        20_000,
        ge=100,
        le=1_000_000,
        description="Scores the rank is taken over (the latest ones). Larger is steadier; smaller follows a scene "
        "whose crowd or lighting changes sooner. A count, not a time: ranks need a sample, whatever the frame rate. At "
        "most 1,000,000 (the window is held in memory).",
    )
    motion_model: Literal["cv", "imm"] = Field(
        "cv",
        description="Motion filter: constant-velocity Kalman, or the IMM of `trackid.track.imm` (cruise, manoeuvre, "
        "stop; same noise). On MOT15/MOT17 train the IMM scores lower (HOTA -3.93 / -1.32, bench/mot.py ablation, "
        "2026-12-01).",
    )
