"""The detection sets `bench/generalise.py` and `bench/tune.py` score trackers on: other detectors, score scales,
frame rates and crowds than the two the tracker was first tuned on.

A set is a list of sequences (detections per frame) and the ground-truth folder (TrackEval's layout) they are
scored against. Sets that change the frame rate get their own ground truth, written once under `CACHE`; sets from
trackid's own detectors run them once on the PETS09-S2L1 video and cache the detections there (`--refresh-cache`
in generalise.py redoes both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np

from mot import DATA, SequenceData, jitter_boxes, load_dataset
from report import REPO
from trackid.sources import detections_by_frame, read_mot_file, read_seqinfo

CACHE = REPO / "runs" / "generalise-cache"
PETS = "PETS09-S2L1"
PETS_VIDEO = DATA / "pets09_s2l1" / "vtest.avi"
PETS_FRAME_RATE = 7.0  # seqinfo.ini; the AVI header says 10
JITTER = 0.01
"""Box noise of the jittered copies, as a fraction of box size: a detector a little less precise than FRCNN."""


@dataclass(frozen=True)
class DetectionSet:
    name: str
    description: str
    gt: Path
    sequences: list[SequenceData]

    @property
    def frames(self) -> int:
        return sum(len(s.frames) for s in self.sequences)

    def scores_in_unit_range(self) -> bool:
        scores = np.concatenate([d.score for s in self.sequences for d in s.frames])
        return bool(len(scores) == 0 or (scores.min() >= 0 and scores.max() <= 1))


def remapped(base: DetectionSet, name: str, label: str, remap: Callable[[np.ndarray], np.ndarray]) -> DetectionSet:
    """`base` with every score passed through the strictly increasing `remap`."""
    sequences = [replace(s, frames=[replace(d, score=remap(d.score)) for d in s.frames]) for s in base.sequences]
    return DetectionSet(name, f"{base.description}, scores {label}", base.gt, sequences)


REMAPS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "cubed": ("s^3", lambda s: s**3),
    "squeezed": ("0.3 + 0.6 s (never above 0.9)", lambda s: 0.3 + 0.6 * s),
    "logistic": ("1 / (1 + exp(-8 (s - 0.75)))", lambda s: 1 / (1 + np.exp(-8 * (s - 0.75)))),
}
"""Monotone remaps of FRCNN scores: what detectors with other score scales report for the same boxes."""


@cache
def frcnn(dataset: str) -> DetectionSet:
    """MOT15 or MOT17 with its FRCNN detections, read once per process: the remapped, subsampled, dense and
    jittered sets are all built from it, and none of them changes it."""
    sequences = load_dataset(dataset)
    return DetectionSet(f"{dataset}-frcnn", f"{dataset.upper()} train, FRCNN", DATA / dataset / "gt", sequences)


def mot15_acf() -> DetectionSet:
    """The official ACF detections of MOT15 (7 sequences); their scores are unbounded SVM margins (-1 to ~140)."""
    gt = DATA / "mot15" / "gt"
    sequences = []
    for folder in sorted((DATA / "mot15" / "det_acf").iterdir()):
        info = read_seqinfo(gt / "MOT15-train" / folder.name / "seqinfo.ini")
        frames = detections_by_frame(read_mot_file(folder / "det" / "det.txt"), info.length)
        sequences.append(SequenceData(folder.name, info.frame_rate, (info.width, info.height), frames))
    return DetectionSet("mot15-acf", "MOT15 train, ACF (margins as scores)", gt, sequences)


def subsampled(base: DetectionSet, target_fps: float) -> DetectionSet:
    """Every k-th frame of each sequence (k = round(rate / target), at least 1), with ground truth to match.

    The ground truth keeps its rows of the kept frames, renumbered, in a TrackEval folder of its own under
    `CACHE`; its seqinfo.ini carries the new frame rate and length."""
    split = next(base.gt.glob("*-train"))
    root = CACHE / f"gt-{base.name}-{target_fps:g}fps"
    sequences = []
    for seq in base.sequences:
        step = max(1, round(seq.frame_rate / target_fps))
        kept = seq.frames[::step]
        sequences.append(replace(seq, frame_rate=seq.frame_rate / step, frames=kept))
        _write_subsampled_gt(split / seq.name, root / split.name / seq.name, step, len(kept))
    seqmap = root / "seqmaps" / f"{split.name}.txt"
    seqmap.parent.mkdir(parents=True, exist_ok=True)
    seqmap.write_text("name\n" + "".join(f"{s.name}\n" for s in sequences))
    return DetectionSet(
        f"{base.name}-{target_fps:g}fps",
        f"{base.description}, every k-th frame to ~{target_fps:g} fps",
        root,
        sequences,
    )


def _write_subsampled_gt(source: Path, dest: Path, step: int, length: int) -> None:
    (dest / "gt").mkdir(parents=True, exist_ok=True)
    rows = np.loadtxt(source / "gt" / "gt.txt", delimiter=",", ndmin=2)
    frame = rows[:, 0].astype(int)
    keep = (frame - 1) % step == 0
    rows = rows[keep]
    rows[:, 0] = (frame[keep] - 1) // step + 1
    np.savetxt(dest / "gt" / "gt.txt", rows, delimiter=",", fmt="%g")
    info = read_seqinfo(source / "seqinfo.ini")
    ini = (source / "seqinfo.ini").read_text().splitlines()
    ini = [
        f"frameRate={info.frame_rate / step:g}"
        if line.startswith("frameRate")
        else f"seqLength={length}"
        if line.startswith("seqLength")
        else line
        for line in ini
    ]
    (dest / "seqinfo.ini").write_text("\n".join(ini) + "\n")


DENSE = ("MOT17-02-FRCNN", "MOT17-04-FRCNN")
"""The most crowded sequences we have: 31 and 45 people per frame on average (visible ground truth)."""


def densest(base: DetectionSet) -> DetectionSet:
    sequences = [s for s in base.sequences if s.name in DENSE]
    return DetectionSet(
        f"{base.name}-dense",
        f"{base.description}, its two densest sequences (31-45 people a frame)",
        base.gt,
        sequences,
    )


def jittered(base: DetectionSet, seed: int = 7) -> DetectionSet:
    rng = np.random.default_rng(seed)
    sequences = [replace(s, frames=[jitter_boxes(d, rng, JITTER) for d in s.frames]) for s in base.sequences]
    return DetectionSet(f"{base.name}-jitter", f"{base.description}, boxes jittered {JITTER:.0%}", base.gt, sequences)


PETS_DETECTORS: dict[str, tuple[str, dict[str, object]]] = {
    # label, DetectorConfig fields: the earlier profiles' SSDLite (full frame and 2x2 tiles) and OpenCV's HOG
    "ssdlite": (
        "SSDLite-MobileNetV2, full frame",
        {"name": "ssdlite", "params": {"input_size": [400, 300], "score_threshold": 0.2}},
    ),
    "ssdlite-tiled": (
        "SSDLite-MobileNetV2, 2x2 tiles",
        {"name": "ssdlite", "params": {"input_size": [400, 300], "score_threshold": 0.2}, "tiles": (2, 2)},
    ),
    "hog": ("OpenCV HOG people detector", {"name": "hog"}),
    # issue #13: the shipped NanoDet as the profiles run it (fast_cpu / balanced, and high_accuracy's tiles)
    "nanodet": ("NanoDet-m, full frame", {"name": "nanodet", "params": {"score_threshold": 0.35}}),
    "nanodet-tiled": (
        "NanoDet-m, 2x2 tiles",
        {"name": "nanodet", "params": {"score_threshold": 0.35}, "tiles": (2, 2)},
    ),
}


def pets_own(detector: str, refresh: bool = False) -> DetectionSet:
    """PETS09-S2L1 (795 frames) with one of trackid's own detectors run on the video; detections cached."""
    label, fields = PETS_DETECTORS[detector]
    cache = CACHE / f"pets-{detector}.txt"
    if refresh or not cache.is_file():
        _detect_video(fields, cache)
    gt = DATA / "mot15" / "gt"
    info = read_seqinfo(gt / "MOT15-train" / PETS / "seqinfo.ini")
    frames = detections_by_frame(read_mot_file(cache), info.length)
    sequence = SequenceData(PETS, PETS_FRAME_RATE, (info.width, info.height), frames)
    return DetectionSet(f"pets-{detector}", f"PETS09-S2L1 video, {label}", gt, [sequence])


def _detect_video(fields: dict[str, object], dest: Path) -> None:
    from trackid.config import DetectorConfig
    from trackid.pipelines.video import build_detector
    from trackid.sources.video import VideoSource

    detector = build_detector(DetectorConfig.model_validate(fields))
    lines = []
    for index, image in VideoSource(PETS_VIDEO, frame_rate=PETS_FRAME_RATE):
        dets = detector.detect(image)
        for (x1, y1, x2, y2), score in zip(dets.xyxy, dets.score, strict=True):
            lines.append(f"{index + 1},-1,{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.5f},-1,-1,-1\n")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    tmp.write_text("".join(lines))
    tmp.replace(dest)


def set_builders(refresh: bool = False) -> dict[str, Callable[[], DetectionSet]]:
    """Every set of the generalisation benchmark by name, in table order; each is built (and cached) when called."""
    builders: dict[str, Callable[[], DetectionSet]] = {
        "mot15-frcnn": lambda: frcnn("mot15"),
        "mot15-acf": mot15_acf,
        "mot17-frcnn": lambda: frcnn("mot17"),
    }
    for key, (label, fn) in REMAPS.items():
        builders[f"mot17-frcnn-{key}"] = lambda key=key, label=label, fn=fn: remapped(  # type: ignore[misc]
            frcnn("mot17"), f"mot17-frcnn-{key}", label, fn
        )
    builders["mot17-frcnn-dense"] = lambda: densest(frcnn("mot17"))
    for fps in (15, 10, 5):
        builders[f"mot17-frcnn-{fps}fps"] = lambda fps=fps: subsampled(frcnn("mot17"), fps)  # type: ignore[misc]
    for name in PETS_DETECTORS:
        builders[f"pets-{name}"] = lambda name=name: pets_own(name, refresh)  # type: ignore[misc]
    builders["mot15-frcnn-jitter"] = lambda: jittered(frcnn("mot15"))
    builders["mot17-frcnn-jitter"] = lambda: jittered(frcnn("mot17"))
    return builders


def sets_by_name(names: list[str] | tuple[str, ...] | None = None, refresh: bool = False) -> list[DetectionSet]:
    """The named sets (all of them by default), in table order; unknown names raise ValueError naming them."""
    builders = set_builders(refresh)
    unknown = sorted(set(names or ()) - set(builders))
    if unknown:
        raise ValueError(f"unknown detection sets {unknown}; choose from {list(builders)}")
    return [build() for name, build in builders.items() if names is None or name in names]


TUNING_SETS = ("mot15-frcnn", "mot15-acf", "mot17-frcnn", "mot17-frcnn-5fps", "pets-ssdlite", "pets-hog")
"""What `bench/tune.py` searches on: one set per detector, score scale and frame rate family. The remapped sets are
left out because ranks make them identical to MOT17, the jittered ones because the search jitters itself."""
