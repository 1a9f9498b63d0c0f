"""The persistence filter on real detectors' tracks: which tracks are people and which are transient false positives.

    .venv/bin/python bench/persistence.py [--sets mot15-frcnn mot15-acf mot17-frcnn mot17-deepsort pets-nanodet
        pets-hog-video pets-ssdlite-video mot17-frcnn-5fps] [--filters ...] [--appearance] [--margins] [--no-append]
    .venv/bin/python bench/persistence.py --save-boosted src/trackid/multiview/persistence/persistence_boosted.npz
    .venv/bin/python bench/persistence.py --save-transformer src/trackid/multiview/persistence/persistence.onnx
        # the transformer needs '.[train]'; these two rebuild the filters that ship in the package


Per set (detections from `sets.py`; MOT17 also every 6th frame, at 5 fps, to check that the filter holds at another
frame rate; `mot17-deepsort`: MOT17-05 and -09, the two sequences whose FRCNN detections come with DeepSORT re-ID
embeddings in `../shared/data`, tracked with them, so the appearance-consistency features are real there and zero
elsewhere; `pets-hog-video` and `pets-ssdlite-video`: PETS09-S2L1 with two of trackid's own detectors, whose false
positives on a real video are the transient tracks with real appearance, each box embedded from the video by
MobileNetV2 as the `balanced` profile does, vectors cached), trackid (defaults) runs over every sequence; each
output track is labelled persistent, transient or ignored by its frames' matches to the ground truth
(`multiview.persistence.tracks`).
Two splits, never by track: by sequence (folds of sequences, a sequence's tracks from every detector in one fold),
and leave-one-set-out (fitted on the other sets' tracks minus any sequence the held-out set also has: PETS09-S2L1
and the ACF sequences are MOT15 sequences too). Scored on the held-out tracks:
- accuracy and balanced accuracy (scikit-learn) over its labelled tracks;
- as a post-filter on the tracker's output: the share of transient tracks removed, the share of persistent
  track-frames lost, and HOTA / IDF1 (TrackEval) with and without the filter;
- online: the accuracy when each track is judged on its first 5 / 10 / 20 frames only;
- each filter's frame importance, by a deletion test (`_deletion_test`);
- with `--appearance`, the same with the appearance-consistency features (the ablation that decided to leave them
  out by default).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from report import append_section
from sets import CACHE, DATA, PETS_FRAME_RATE, PETS_VIDEO, DetectionSet, frcnn, pets_own, set_builders
from trackid.embed import make_embedder
from trackid.embed.crops import crop_boxes
from trackid.eval.mot import evaluate_mot
from trackid.multiview.persistence import BoostedPersistence, LengthRule, TrackRecord, collect_tracks, label_tracks
from trackid.multiview.persistence.tracks import match_shares
from trackid.multiview.persistence.transformer import TransformerPersistence
from trackid.sources import read_deepsort_detections, write_mot_results
from trackid.sources.video import VideoSource
from trackid.track import make_tracker
from trackid.types import Detections

DEFAULT_SETS = [
    "mot15-frcnn",
    "mot15-acf",
    "mot17-frcnn",
    "mot17-deepsort",
    "pets-nanodet",
    "pets-hog-video",
    "pets-ssdlite-video",
    "mot17-frcnn-5fps",
]
DISTRACTOR_CLASSES = (2, 7, 8, 12)  # MOT17: person on vehicle, static person, distractor, reflection
PREFIXES = (5, 10, 20)
FILTERS: dict[str, Callable[[], Any]] = {"length rule": LengthRule, "boosted trees": BoostedPersistence}
if importlib.util.find_spec("torch") is not None:  # the transformer trains in torch (the `train` extra)
    FILTERS["transformer"] = TransformerPersistence


@dataclass
class SetTracks:
    name: str
    data: DetectionSet
    tracks: list[TrackRecord]
    labels: np.ndarray
    outputs: dict[str, list[tuple[int, Detections]]]
    share: np.ndarray  # per track, the share of its frames matched to a person at IoU >= 0.5 (what labels it)
    loose: np.ndarray  # the same at IoU >= 0.3: a box on a person, but not well placed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=DEFAULT_SETS)
    parser.add_argument("--folds", type=int, default=5, help="sequence folds of the by-sequence split")
    parser.add_argument(
        "--save-transformer",
        type=Path,
        default=None,
        help="also fit the transformer on every labelled track and write its ONNX here (for `trackid stereo run "
        "--filter`), then stop",
    )
    parser.add_argument(
        "--save-boosted",
        type=Path,
        default=None,
        help="also fit the boosted trees on every labelled track and write their file here, then stop",
    )
    parser.add_argument(
        "--appearance", action="store_true", help="fit the filters with the appearance-consistency features (ablation)"
    )
    parser.add_argument("--filters", nargs="+", default=list(FILTERS), choices=list(FILTERS), help="filters to compare")
    parser.add_argument(
        "--margins",
        action="store_true",
        help="only the table of how clear-cut the labels are, and the by-sequence trees' accuracy on each kind",
    )
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)
    for name in set(FILTERS) - set(args.filters):
        del FILTERS[name]
    if args.appearance:
        for name in ("boosted trees", "transformer"):
            if name in FILTERS:
                FILTERS[name] = functools.partial(FILTERS[name], appearance=True)
    builders = {
        **set_builders(),
        "mot17-deepsort": _deepsort_set,
        "pets-hog-video": lambda: _pets_with_looks("hog"),
        "pets-ssdlite-video": lambda: _pets_with_looks("ssdlite"),
    }
    unknown = sorted(set(args.sets) - set(builders))
    if unknown:
        parser.error(f"unknown sets {unknown}; choose from {list(builders)}")
    collected = [_collect(builders[name]()) for name in args.sets]
    saving = [
        (make, path)
        for make, path in ((BoostedPersistence, args.save_boosted), (TransformerPersistence, args.save_transformer))
        if path is not None
    ]
    if saving:
        everything = [(t, y) for c in collected for t, y in zip(c.tracks, c.labels, strict=True) if y >= 0]
        for make, path in saving:
            model = make(appearance=args.appearance).fit([t for t, _ in everything], [y for _, y in everything])
            print(f"{len(everything)} tracks -> {model.save(path)}")
        return 0
    if args.margins:
        table = _margins(collected, args.folds)
        print(table)
        if not args.no_append:
            append_section(
                "persistence.py",
                ["the labels' margins; boosted trees fitted by sequence folds as in the main table"],
                table,
            )
        return 0
    header = (
        "| held-out | tracks (persistent / transient / ignored) | filter | accuracy | balanced accuracy | "
        "transient removed | persistent frames lost | HOTA off -> on | IDF1 off -> on | online accuracy @5/10/20 |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    sections = []
    for title, split in (
        (
            f"By sequence ({args.folds} folds over every set's sequences; a sequence's tracks from every detector in "
            "one fold)",
            _by_sequence(collected, args.folds),
        ),
        ("Leave one set out (fitted on the other sets minus shared sequences)", _by_set(collected)),
    ):
        rows = []
        for held in collected:
            off = _scores(held, None)
            for name in FILTERS:
                rows.append(_row(held, name, split[name], off))
                print(rows[-1], flush=True)
        sections.append(f"{title}:\n\n{header}" + "\n".join(rows) + "\n")
    for name in ("boosted trees", "transformer"):
        if name in FILTERS:
            sections.append(_deletion_test(collected, name))
    table = "\n".join(sections)
    print(table)
    if not args.no_append:
        append_section(
            "persistence.py",
            [
                "trackid defaults on each set's detections; a track is persistent when >= 50 % of its frames match a "
                "person at IoU >= 0.5 (Hungarian per frame), ignored when they match MOT17 distractors",
                "HOTA / IDF1 by TrackEval on the held-out tracks with the filter off and on (on: tracks judged "
                "transient removed from the output)",
                "appearance-consistency features "
                + (
                    "on (--appearance; real where detections carry embeddings: mot17-deepsort, pets-*-video)"
                    if args.appearance
                    else "off (the default)"
                ),
            ],
            table,
        )
    return 0


Verdicts = dict[tuple[str, str, int], tuple[int, list[int]]]
"""(set, sequence, track id) -> (verdict on the whole track, verdicts on its first PREFIXES frames)."""


def _by_sequence(collected: list[SetTracks], folds: int) -> dict[str, Verdicts]:
    """Out-of-fold verdicts: sequences (by name, across sets) split into `folds` groups, each judged by filters
    fitted on the others."""
    names = sorted({t.sequence for c in collected for t in c.tracks})
    fold_of = {name: k % folds for k, name in enumerate(names)}
    out: dict[str, Verdicts] = {name: {} for name in FILTERS}
    for fold in range(folds):
        train = [(t, y) for c in collected for t, y in zip(c.tracks, c.labels, strict=True) if y >= 0]
        train = [(t, y) for t, y in train if fold_of[t.sequence] != fold]
        judged = [(c.name, t) for c in collected for t in c.tracks if fold_of[t.sequence] == fold]
        _judge(out, train, judged)
    return out


def _by_set(collected: list[SetTracks]) -> dict[str, Verdicts]:
    """Verdicts on each set from filters fitted on the other sets, minus any sequence the set also has."""
    out: dict[str, Verdicts] = {name: {} for name in FILTERS}
    for held in collected:
        _judge(out, _training_tracks(collected, held), [(held.name, t) for t in held.tracks])
    return out


def _training_tracks(collected: list[SetTracks], held: SetTracks) -> list[tuple[TrackRecord, int]]:
    """The labelled tracks of every set but `held`, minus the sequences `held` also has."""
    names = {s.name for s in held.data.sequences}
    return [
        (t, y)
        for other in collected
        if other is not held
        for t, y in zip(other.tracks, other.labels, strict=True)
        if y >= 0 and t.sequence not in names
    ]


def _judge(
    out: dict[str, Verdicts], train: list[tuple[TrackRecord, int]], judged: list[tuple[str, TrackRecord]]
) -> None:
    if not judged:
        return
    tracks = [t for _, t in judged]
    for name, make in FILTERS.items():
        model = make().fit([t for t, _ in train], [y for _, y in train])
        whole = model.predict(tracks)
        prefixes = [model.predict([t.prefix(n) for t in tracks]) for n in PREFIXES]
        for k, (set_name, t) in enumerate(judged):
            out[name][(set_name, t.sequence, t.track_id)] = (int(whole[k]), [int(p[k]) for p in prefixes])


def _row(held: SetTracks, name: str, verdicts: Verdicts, off: dict[str, float]) -> str:
    keys = [(held.name, t.sequence, t.track_id) for t in held.tracks]
    keep = np.array([verdicts[k][0] for k in keys])
    labelled = held.labels >= 0
    y, judged = held.labels[labelled], keep[labelled]
    frames = np.array([len(t) for t in held.tracks])[labelled]
    removed = float(np.mean(judged[y == 0] == 0)) if (y == 0).any() else float("nan")
    lost = float(frames[(y == 1) & (judged == 0)].sum() / max(frames[y == 1].sum(), 1))
    on = _scores(held, {(t.sequence, t.track_id) for t, k in zip(held.tracks, keep, strict=True) if k})
    online = "/".join(
        f"{accuracy_score(y, np.array([verdicts[k][1][i] for k in keys])[labelled]):.3f}" for i in range(len(PREFIXES))
    )
    counts = f"{(y == 1).sum()} / {(y == 0).sum()} / {(~labelled).sum()}"
    return (
        f"| {held.name} | {counts} | {name} | {accuracy_score(y, judged):.3f} | "
        f"{balanced_accuracy_score(y, judged):.3f} | {'-' if np.isnan(removed) else f'{removed:.1%}'} | {lost:.2%} | "
        f"{off['HOTA']:.2f} -> {on['HOTA']:.2f} | {off['IDF1']:.2f} -> {on['IDF1']:.2f} | {online} |"
    )


def _margins(collected: list[SetTracks], folds: int) -> str:
    """How clear-cut the labels are, and whether the filter fails on the borderline ones only: per set, the
    transient tracks whose boxes sit on a person loosely (IoU >= 0.3 in half their frames: a misplaced box, not a
    false positive), and the by-sequence trees' accuracy on clear-cut tracks (matched share < 0.1 or >= 0.9) and on
    the rest."""
    for name in set(FILTERS) - {"boosted trees"}:
        del FILTERS[name]
    verdicts = _by_sequence(collected, folds)["boosted trees"]
    out = (
        "| set | labelled tracks | transient | transient on a person at IoU >= 0.3 | clear-cut tracks | accuracy on "
        "clear-cut | borderline tracks | accuracy on borderline | transient tracks by sequence (most first) |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    for c in collected:
        labelled = c.labels >= 0
        judged = np.array([verdicts[(c.name, t.sequence, t.track_id)][0] for t in c.tracks])
        right = judged == c.labels
        clear = labelled & ((c.share < 0.1) | (c.share >= 0.9))
        border = labelled & ~clear
        transient = labelled & (c.labels == 0)
        counts = defaultdict(int)
        for t, y in zip(c.tracks, c.labels, strict=True):
            counts[t.sequence] += int(y == 0)
        top = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:3] if v)
        accuracy = [f"{right[m].mean():.3f}" if m.any() else "-" for m in (clear, border)]
        out += (
            f"| {c.name} | {labelled.sum()} | {transient.sum()} | {(transient & (c.loose >= 0.5)).sum()} | "
            f"{clear.sum()} | {accuracy[0]} | {border.sum()} | {accuracy[1]} | {top or '-'} |\n"
        )
    return out


def _deletion_test(collected: list[SetTracks], name: str, decisions: int = 20, k: int = 3) -> str:
    """Do the frames a filter names most important move its score most? For `decisions` tracks of one set (the
    model fitted on the others, minus shared sequences; tracks it sees whole, 8-32 frames), the change of the
    persistent probability when the `k` most important frames are deleted, against `k` random ones. MOT17 is held
    out where it is among the sets (the others then train it). For the trees, importance is itself measured by
    deleting one frame at a time, so this checks only that one-frame effects add up; for the transformer's
    attention it is a real test."""
    held = next((c for c in collected if c.name == "mot17-frcnn"), collected[-1])
    train = _training_tracks(collected, held)
    model = FILTERS[name]().fit([t for t, _ in train], [y for _, y in train])
    rng = np.random.default_rng(0)
    pool = [t for t in held.tracks if 8 <= len(t) <= 32]
    sample = [pool[i] for i in rng.choice(len(pool), min(decisions, len(pool)), replace=False)]
    top, random, wins = [], [], 0
    for track in sample:
        base = model.predict_proba([track])[0, 1]
        _, weight = model.frame_importance(track)
        chosen = np.argsort(-weight)[:k]
        others = rng.choice(len(track), k, replace=False)
        top.append(abs(model.predict_proba([_without(track, chosen)])[0, 1] - base))
        random.append(abs(model.predict_proba([_without(track, others)])[0, 1] - base))
        wins += top[-1] > random[-1]
    return (
        f"Frame importance of the {name}, deletion test ({held.name} held out, {len(sample)} decisions, {k} frames "
        f"deleted): mean |change of p(persistent)| {np.mean(top):.3f} deleting the most important frames "
        f"({model.importance_method}) vs {np.mean(random):.3f} deleting random ones; the important frames moved it "
        f"more in {wins} of {len(sample)}.\n"
    )


def _without(track: TrackRecord, rows: np.ndarray) -> TrackRecord:
    return track.select(np.setdiff1d(np.arange(len(track)), rows))


def _deepsort_set() -> DetectionSet:
    """MOT17's FRCNN sequences that come with DeepSORT embeddings of their detections (the same rows as det.txt)."""
    base = frcnn("mot17")
    features = DATA / "mot17" / "deepsort_features"
    sequences = [
        replace(seq, frames=read_deepsort_detections(features / f"{seq.name}.npy", len(seq.frames)))
        for seq in base.sequences
        if (features / f"{seq.name}.npy").is_file()
    ]
    return DetectionSet("mot17-deepsort", "MOT17 train, FRCNN + DeepSORT embeddings", base.gt, sequences)


def _pets_with_looks(detector: str) -> DetectionSet:
    """PETS09-S2L1 with one of trackid's detectors (`sets.pets_own`), every box embedded from the video frame by
    MobileNetV2 (cached beside the detections)."""
    base = pets_own(detector)
    seq = base.sequences[0]
    cache = CACHE / f"pets-{detector}-mobilenetv2.npz"
    counts = np.array([len(d) for d in seq.frames])
    if cache.is_file():
        with np.load(cache) as saved:
            vectors, cached_counts = saved["vectors"], saved["counts"]
    if not cache.is_file() or not np.array_equal(cached_counts, counts):
        embedder = make_embedder("mobilenetv2")
        parts = []
        for (_, image), d in zip(VideoSource(PETS_VIDEO, frame_rate=PETS_FRAME_RATE), seq.frames, strict=True):
            crops = crop_boxes(image, d.xyxy)
            good = np.array([c.size > 0 for c in crops], bool)
            part = np.zeros((len(d), 0), np.float32)
            if good.any():
                got = embedder.embed([c for c, g in zip(crops, good, strict=True) if g])
                part = np.zeros((len(d), got.shape[1]), np.float32)
                part[good] = got
            parts.append(part)
        width = max(p.shape[1] for p in parts)
        vectors = np.concatenate([p if p.shape[1] else np.zeros((len(p), width), np.float32) for p in parts])
        np.savez(cache, vectors=vectors, counts=counts)
    starts = np.concatenate([[0], np.cumsum(counts)])
    frames = [replace(d, embedding=vectors[starts[k] : starts[k + 1]]) for k, d in enumerate(seq.frames)]
    name = f"pets-{detector}-video"
    return DetectionSet(name, f"{base.description} + MobileNetV2 embeddings", base.gt, [replace(seq, frames=frames)])


def _collect(data: DetectionSet) -> SetTracks:
    """Run trackid over every sequence of `data`; its tracks, their labels and the per-frame output."""
    split = next(data.gt.glob("*-train"))
    tracks: list[TrackRecord] = []
    labels, shares, loose = [], [], []
    outputs = {}
    for seq in data.sequences:
        tracker = make_tracker("trackid", frame_rate=seq.frame_rate)
        found, outputs[seq.name] = collect_tracks(seq.name, seq.frames, tracker, seq.size, seq.frame_rate)
        people, distractors = _ground_truth(
            split / seq.name / "gt" / "gt.txt", classes=not split.name.startswith("MOT15")
        )
        tracks += found
        labels.append(label_tracks(found, people, distractors))
        shares.append(match_shares(found, people, distractors)[0])
        loose.append(match_shares(found, people, distractors, min_iou=0.3)[0])
    print(f"{data.name}: {len(tracks)} tracks", file=sys.stderr, flush=True)
    joined = [np.concatenate(x) for x in (labels, shares, loose)]
    return SetTracks(data.name, data, tracks, joined[0], outputs, joined[1], joined[2])


def _ground_truth(path: Path, classes: bool) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Frame -> person boxes and frame -> distractor boxes (xyxy). MOT15's files carry no classes (columns 7-9 are
    world coordinates where known): every row is a person, as TrackEval scores MOT15 without preprocessing."""
    table = np.loadtxt(path, delimiter=",", ndmin=2)
    xyxy = np.concatenate([table[:, 2:4], table[:, 2:4] + table[:, 4:6]], axis=1)
    if classes:
        person = (table[:, 7] == 1) & (table[:, 6] == 1)
        distractor = np.isin(table[:, 7], DISTRACTOR_CLASSES)
    else:
        person, distractor = np.ones(len(table), bool), np.zeros(len(table), bool)
    people: dict[int, list[np.ndarray]] = defaultdict(list)
    others: dict[int, list[np.ndarray]] = defaultdict(list)
    for frame, box, p, d in zip(table[:, 0].astype(int), xyxy, person, distractor, strict=True):
        if p:
            people[frame].append(box)
        elif d:
            others[frame].append(box)
    return {f: np.array(b) for f, b in people.items()}, {f: np.array(b) for f, b in others.items()}


def _scores(held: SetTracks, kept: set[tuple[str, int]] | None) -> dict[str, float]:
    """TrackEval's HOTA / IDF1 of the held-out set's output, all tracks or only the `kept` ones."""
    with tempfile.TemporaryDirectory(prefix="trackid-persistence-") as tmp:
        for seq in held.data.sequences:
            frame, ids, boxes = [], [], []
            for number, tracked in held.outputs[seq.name]:
                mask = np.array([kept is None or (seq.name, int(t)) in kept for t in tracked.track_id], bool)
                frame.append(np.full(int(mask.sum()), number))
                ids.append(tracked.track_id[mask])
                boxes.append(tracked.xyxy[mask])
            write_mot_results(
                Path(tmp) / f"{seq.name}.txt", np.concatenate(frame), np.concatenate(ids), np.concatenate(boxes)
            )
        scores = evaluate_mot(held.data.gt, tmp, sequences=[s.name for s in held.data.sequences]).combined
    return scores


if __name__ == "__main__":
    sys.exit(main())
