"""Seeded synthetic MOT scenes: people walking, crossing and occluding each other, seen by a noisy detector.

Honestly labelled stand-in data for demos and tests where real footage is not needed: the ground truth is exact,
so a score on it measures the tracker against *this* noise model, not against real video. Everything is drawn from
one `numpy.random.Generator` seeded by `SceneConfig.seed`, so a config always produces the same scene.

The model, all vectorised over (frame, person):
- people enter from the left or right edge at staggered times and walk in a band of ground lines, so those going
  opposite ways cross; speed and heading change at random frames (piecewise-constant velocity) and each person
  drifts slowly up or down the band;
- boxes follow a simple perspective: the lower a person's feet, the nearer and taller they are, and the nearer
  person occludes the farther one;
- the detector scores visible people near 1 (like Faster R-CNN on MOTChallenge), misses occluded people more
  often and gives them lower scores (so ByteTrack-style low-score matching has
  something to do), jitters every box in proportion to its size, misses a few visible people outright, and adds
  low-score false positives anywhere in the frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from trackid.artifacts import atomic_write_text
from trackid.geometry import box_area, xyxy_to_xywh
from trackid.sources.motchallenge import MotRows, SeqInfo, detections_by_frame
from trackid.types import Detections

__all__ = [
    "GroundTruth",
    "SceneConfig",
    "SyntheticScene",
    "make_scene",
    "write_detections",
    "write_trackeval_gt",
]

BENCHMARK = "SYNTH"
"""Benchmark name of the TrackEval layout written by `write_trackeval_gt` (folder `SYNTH-<split>`)."""


@dataclass(frozen=True, slots=True)
class SceneConfig:
    """What to generate. Rates are per person per frame unless stated otherwise.

    Attributes:
        num_people: people who walk through the scene over the sequence.
        num_frames: sequence length.
        width, height: frame size in pixels.
        frame_rate: frames per second written to `seqinfo.ini` (trackers scale their timeouts with it).
        speed: mean walking speed in pixels per frame; higher speed is harder for IoU association.
        turn_rate: probability that a person changes speed and heading in a given frame.
        jitter: standard deviation of box noise, as a fraction of box width (x, w) or height (y, h).
        miss_rate: probability that a fully visible person is not detected.
        false_positives: mean number of false detections per frame (Poisson), scored 0.05-0.55.
        min_visible: visibility below which a person is never detected.
        seed: seed of the random generator; the same config always gives the same scene.
        name: sequence name.
    """

    num_people: int = 10
    num_frames: int = 200
    width: int = 960
    height: int = 540
    frame_rate: float = 25.0
    speed: float = 5.0
    turn_rate: float = 0.02
    jitter: float = 0.03
    miss_rate: float = 0.05
    false_positives: float = 1.0
    min_visible: float = 0.3
    seed: int = 0
    name: str = "SYNTH-01"

    def __post_init__(self) -> None:
        checks = {
            "num_people": self.num_people >= 1,
            "num_frames": self.num_frames >= 1,
            "width": self.width >= 64,
            "height": self.height >= 64,
            "frame_rate": self.frame_rate > 0,
            "speed": self.speed > 0,
            "turn_rate": 0 <= self.turn_rate <= 1,
            "jitter": self.jitter >= 0,
            "miss_rate": 0 <= self.miss_rate <= 1,
            "false_positives": self.false_positives >= 0,
            "min_visible": 0 <= self.min_visible <= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"SceneConfig: invalid {', '.join(f'{b}={getattr(self, b)!r}' for b in bad)}")


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """Every visible person in every frame, sorted by frame then person.

    Attributes:
        frame: (M,) 1-based frame numbers.
        person_id: (M,) ids starting at 1.
        xyxy: (M, 4) boxes clipped to the frame.
        visibility: (M,) fraction of the box not hidden by nearer people or the frame edge, in [0, 1].
    """

    frame: NDArray[np.int64]
    person_id: NDArray[np.int64]
    xyxy: NDArray[np.float64]
    visibility: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.frame)


@dataclass(frozen=True, slots=True)
class SyntheticScene:
    """A generated sequence: the detector's output per frame and the exact ground truth."""

    config: SceneConfig
    detection_rows: MotRows
    ground_truth: GroundTruth

    @property
    def seqinfo(self) -> SeqInfo:
        c = self.config
        return SeqInfo(name=c.name, frame_rate=c.frame_rate, length=c.num_frames, width=c.width, height=c.height)

    @property
    def detections(self) -> list[Detections]:
        """One `Detections` per frame; index k is frame k + 1."""
        return detections_by_frame(self.detection_rows, self.config.num_frames)


def make_scene(config: SceneConfig | None = None) -> SyntheticScene:
    """Generate a scene; deterministic for a given config."""
    cfg = config or SceneConfig()
    rng = np.random.default_rng(cfg.seed)
    full = _walk(cfg, rng)  # (T, P, 4) unclipped boxes, NaN where a person is not in the scene
    present = np.isfinite(full[..., 0])
    clipped = np.clip(full, 0.0, [cfg.width, cfg.height, cfg.width, cfg.height])
    visibility = _visibility(full, clipped, present)
    in_gt = present & (visibility > 0.05)
    frame_idx, person_idx = np.nonzero(in_gt)  # row-major: sorted by frame, then person
    gt = GroundTruth(
        frame=(frame_idx + 1).astype(np.int64),
        person_id=(person_idx + 1).astype(np.int64),
        xyxy=clipped[frame_idx, person_idx],
        visibility=visibility[frame_idx, person_idx],
    )
    return SyntheticScene(cfg, _detect(cfg, rng, gt), gt)


def write_trackeval_gt(scenes: list[SyntheticScene], root: str | os.PathLike[str], split: str = "train") -> Path:
    """Write TrackEval's MOTChallenge layout under `root` and return the gt folder to pass to `evaluate_mot`.

    Layout: `<root>/gt/SYNTH-<split>/<seq>/{gt/gt.txt,seqinfo.ini}` and `<root>/gt/seqmaps/SYNTH-<split>.txt`.
    Rows are `frame,id,x,y,w,h,1,1,visibility`: TrackEval's preprocessing for non-MOT15 benchmarks keeps only rows
    whose 7th column ("consider") is non-zero and whose class (8th) is 1, pedestrian; visibility is informative only.
    """
    gt_root = Path(root) / "gt"
    split_dir = gt_root / f"{BENCHMARK}-{split}"
    for scene in scenes:
        gt = scene.ground_truth
        xywh = xyxy_to_xywh(gt.xyxy)
        lines = [
            f"{f},{i},{x:.2f},{y:.2f},{w:.2f},{h:.2f},1,1,{v:.3f}\n"
            for f, i, (x, y, w, h), v in zip(
                gt.frame.tolist(), gt.person_id.tolist(), xywh.tolist(), gt.visibility.tolist(), strict=True
            )
        ]
        seq_dir = split_dir / scene.config.name
        atomic_write_text(seq_dir / "gt" / "gt.txt", "".join(lines))
        atomic_write_text(seq_dir / "seqinfo.ini", _seqinfo_text(scene.seqinfo))
    seqmap = "name\n" + "".join(f"{scene.config.name}\n" for scene in scenes)
    atomic_write_text(gt_root / "seqmaps" / f"{BENCHMARK}-{split}.txt", seqmap)
    return gt_root


def write_detections(scene: SyntheticScene, path: str | os.PathLike[str]) -> Path:
    """Write the detector output as a MOTChallenge det file (`frame,-1,x,y,w,h,score,-1,-1,-1`)."""
    rows = scene.detection_rows
    lines = [
        f"{f},-1,{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.4f},-1,-1,-1\n"
        for f, (x, y, w, h), s in zip(rows.frame.tolist(), rows.xywh.tolist(), rows.score.tolist(), strict=True)
    ]
    return atomic_write_text(path, "".join(lines))


def _walk(cfg: SceneConfig, rng: np.random.Generator) -> NDArray[np.float64]:
    """Trajectories as (T, P, 4) boxes; NaN outside each person's time in the scene."""
    t, p = cfg.num_frames, cfg.num_people
    horizon = 0.35 * cfg.height  # feet never above this line: the far end of the walkable ground
    # Alternate directions so that people going opposite ways share the ground band and cross.
    direction = np.where(np.arange(p) % 2 == 0, 1.0, -1.0)
    rng.shuffle(direction)
    speed = cfg.speed * rng.uniform(0.6, 1.4, size=p)
    # Stagger entries over the first 60% of the sequence so crossings happen throughout.
    entry = rng.integers(0, max(1, int(0.6 * t)), size=p)
    # A third of the people are already somewhere in the scene at the first frame, so it does not start empty.
    already_in = np.arange(p) < max(1, p // 3)
    entry[already_in] = 0

    # Piecewise-constant velocity: at random frames a person draws a new speed factor and vertical drift.
    changes = rng.random((t, p)) < cfg.turn_rate
    changes[0] = True
    segment = np.maximum.accumulate(np.where(changes, np.arange(t)[:, None], 0), axis=0)
    speed_factor = rng.uniform(0.5, 1.5, size=(t, p))[segment, np.arange(p)]
    drift = rng.normal(0.0, 0.15, size=(t, p))[segment, np.arange(p)]
    vx = direction * speed * speed_factor
    vy = drift * speed

    foot_y0 = rng.uniform(horizon + 0.2 * cfg.height, 0.98 * cfg.height, size=p)
    x0 = np.where(direction > 0, 0.0, float(cfg.width))
    x0[already_in] = rng.uniform(0.1, 0.9, size=already_in.sum()) * cfg.width
    age = np.arange(t)[:, None] - entry[None, :]
    moving = age >= 0
    # Positions integrate velocity from each person's entry frame only.
    x = x0 + np.cumsum(np.where(moving, vx, 0.0), axis=0)
    foot_y = np.clip(foot_y0 + np.cumsum(np.where(moving, vy, 0.0), axis=0), horizon + 20.0, cfg.height - 1.0)

    # Perspective: height grows linearly from the horizon to the bottom of the frame; aspect ratio ~0.4.
    depth = (foot_y - horizon) / (cfg.height - horizon)
    tall = rng.uniform(0.9, 1.1, size=p) * (0.15 + 0.35 * depth) * cfg.height
    wide = 0.4 * tall
    boxes = np.stack([x - wide / 2, foot_y - tall, x + wide / 2, foot_y], axis=-1)
    gone = (boxes[..., 2] < 0) | (boxes[..., 0] > cfg.width)
    in_scene = moving & ~gone  # heading never reverses, so a person who has left stays gone
    boxes[~in_scene] = np.nan
    return boxes


def _visibility(
    full: NDArray[np.float64], clipped: NDArray[np.float64], present: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Fraction of each box left visible by the frame edge and by every nearer (lower-footed) person.

    Overlaps of several occluders are summed, which can only overstate occlusion; good enough for a noise model.
    """
    t, p, _ = full.shape
    boxes = np.where(present[..., None], clipped, 0.0)
    area = np.where(present, box_area(np.nan_to_num(full).reshape(-1, 4)).reshape(t, p), 0.0)
    inside = box_area(boxes.reshape(-1, 4)).reshape(t, p)
    ix1 = np.maximum(boxes[:, :, None, 0], boxes[:, None, :, 0])
    iy1 = np.maximum(boxes[:, :, None, 1], boxes[:, None, :, 1])
    ix2 = np.minimum(boxes[:, :, None, 2], boxes[:, None, :, 2])
    iy2 = np.minimum(boxes[:, :, None, 3], boxes[:, None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)  # (T, P, P)
    nearer = (boxes[:, None, :, 3] > boxes[:, :, None, 3]) & present[:, None, :]
    hidden = (inter * nearer).sum(axis=2)
    visible = np.divide(inside - hidden, area, out=np.zeros_like(area), where=area > 0)
    return np.clip(visible, 0.0, 1.0)


def _detect(cfg: SceneConfig, rng: np.random.Generator, gt: GroundTruth) -> MotRows:
    """The detector: visibility-dependent misses and scores, size-relative jitter, low-score false positives."""
    vis = gt.visibility
    # Detection probability ramps from 0 at `min_visible` to its maximum at twice that visibility.
    ramp = np.clip((vis - cfg.min_visible) / max(cfg.min_visible, 1e-6), 0.0, 1.0)
    detected = rng.random(len(gt)) < (1.0 - cfg.miss_rate) * ramp
    xywh = xyxy_to_xywh(gt.xyxy[detected])
    size = xywh[:, (2, 3, 2, 3)]
    noisy = xywh + rng.normal(0.0, cfg.jitter, size=xywh.shape) * size
    noisy[:, 2:] = np.maximum(noisy[:, 2:], 2.0)
    # Like Faster R-CNN on MOTChallenge: visible people score ~0.98, the score falls with occlusion.
    score = np.clip(1.0 - 0.7 * (1.0 - vis[detected]) - rng.exponential(0.02, size=len(noisy)), 0.05, 1.0)

    num_fp = rng.poisson(cfg.false_positives, size=cfg.num_frames)
    fp_frame = np.repeat(np.arange(1, cfg.num_frames + 1), num_fp)
    fp_h = rng.uniform(0.1, 0.5, size=len(fp_frame)) * cfg.height
    fp_w = fp_h * rng.uniform(0.3, 0.6, size=len(fp_frame))
    fp_xywh = np.stack(
        [
            rng.uniform(0, cfg.width - fp_w),
            rng.uniform(0, cfg.height - fp_h),
            fp_w,
            fp_h,
        ],
        axis=1,
    )
    fp_score = rng.uniform(0.05, 0.55, size=len(fp_frame))

    frame = np.concatenate([gt.frame[detected], fp_frame]).astype(np.int64)
    # Shuffle within frames so row order carries no hint of identity.
    order = np.lexsort((rng.random(len(frame)), frame))
    return MotRows(
        frame=frame[order],
        track_id=np.full(len(frame), -1, np.int64),
        xywh=np.concatenate([noisy, fp_xywh])[order],
        score=np.concatenate([score, fp_score])[order],
    )


def _seqinfo_text(info: SeqInfo) -> str:
    return (
        "[Sequence]\n"
        f"name={info.name}\n"
        "imDir=img1\n"
        f"frameRate={info.frame_rate:g}\n"
        f"seqLength={info.length}\n"
        f"imWidth={info.width}\n"
        f"imHeight={info.height}\n"
        "imExt=.jpg\n"
    )
