"""How far ahead can a motion model predict people? A study on real ground-truth trajectories.

    .venv/bin/python bench/prediction.py

For every ground-truth track of MOT17 train and MOT15 train, probes start every 0.5 s: the filter is fed the track's
boxes for a 1 s warm-up, then predicts without observations (a simulated occlusion) up to 2 s ahead. The error is
the distance between predicted and true box centres divided by the true box height (so near and far people count
alike). Probes are labelled by what the person really did over the first second of the gap, judged from the ground
truth: *stopping* (speed falls below a third of the warm-up speed), *turning* (heading changes by more than 30
degrees), or *straight*. People standing still during the warm-up are left out: there is no motion to predict.

All probes run at once as rows of one filter (`trackid.track.kalman.BoxKalman`), so a new motion model is compared
by adding it to `MODELS`. Appends a table (median and 90th-percentile error per class and horizon) to BENCHMARKS.md.

Two rows bound what any predictor could do here. The *oracle* picks, per probe and horizon, whichever of the CV
prediction and standing still lands closer: it knows the future, so it is the most that hedging between walking
on and stopping can give. The *learned* row is a causal predictor fitted to the data: gradient-boosted trees
(scikit-learn) map the warm-up's velocities over six time spans, the box height and its change, and the CV
prediction to the displacement at each horizon, fitted on the probes of other sequences (6-fold grouped
cross-validation), so it is scored on sequences it never saw.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from report import REPO, append_section  # bench/ is on sys.path when a script here runs
from trackid.geometry import xywh_to_xyxy
from trackid.sources.motchallenge import read_seqinfo
from trackid.track.imm import ImmBoxFilter, ImmNoise
from trackid.track.kalman import BoxKalman, KalmanNoise, cxcywh_to_xyxy
from trackid.track.tracker import TrackerConfig

DATA = REPO.parent / "shared" / "data"
WARMUP_S, HORIZON_S, PROBE_EVERY_S = 1.0, 2.0, 0.5
HORIZONS_S = (0.5, 1.0, 2.0)
CLASSES = ("straight", "turning", "stopping")
MIN_SPEED = 0.05  # box heights per second: below this the person is standing, nothing to predict


@dataclass
class Probes:
    """Aligned windows: boxes (P, W + H + 1, 4) xyxy from warm-up start to horizon end, with their frame rate."""

    boxes: NDArray[np.float64]
    warmup: int
    frame_rate: float
    label: NDArray[np.str_]


def cv_kalman(frame_rate: float) -> BoxKalman:
    """The tracker's own filter with its default noise, scaled to the frame rate as the tracker does."""
    position, velocity, measurement = TrackerConfig().motion_noise
    velocity *= 30.0 / frame_rate
    return BoxKalman(KalmanNoise(position, velocity, measurement, initial_velocity=10 * velocity))


def imm(frame_rate: float, **overrides: float) -> ImmBoxFilter:
    """The IMM with the same cruise noise as the CV filter; per-frame dynamics scaled to the frame rate."""
    position, velocity, measurement = TrackerConfig().motion_noise
    ratio = 30.0 / frame_rate
    base = ImmNoise(position, velocity * ratio, measurement)
    decay = overrides.pop("stop_decay", base.stop_decay) ** ratio
    return ImmBoxFilter(replace(base, stop_decay=decay, **overrides))


def backtested_models(probes: Probes) -> NDArray[np.float64]:
    """Not an IMM but its question asked over a longer window: three predictors (constant velocity, velocity decaying
    to a stop, constant turn rate) are each run open-loop over the last third of a second of the warm-up, and
    weighed by how close they landed (softmax of the negative error, temperature 0.005 box heights). Per-frame IMM
    likelihoods cannot tell them apart: the difference only shows after several frames."""
    window = max(1, round(0.33 * probes.frame_rate))
    steps = probes.boxes.shape[1] - probes.warmup - 1
    decay = 0.05 ** (1 / probes.frame_rate)  # a stopping walker keeps 5 % of its speed after a second

    def runs(upto: int, count: int) -> list[NDArray[np.float64]]:
        kalman = cv_kalman(probes.frame_rate)
        rows = np.arange(len(probes.boxes))
        kalman.initiate(probes.boxes[:, 0])
        headings = []
        for k in range(1, upto + 1):
            kalman.predict()
            kalman.update(rows, probes.boxes[:, k])
            headings.append(np.arctan2(kalman.velocity[:, 1], kalman.velocity[:, 0]))
        span = min(window, len(headings) - 1)
        turn = np.angle(np.exp(1j * (headings[-1] - headings[-1 - span]))) / span
        out = []
        for keep, rate in ((1.0, 0.0), (decay, 0.0), (1.0, 1.0)):
            mean, velocity = kalman.mean.copy(), kalman.velocity.copy()
            path = np.empty((len(rows), count, 4))
            for k in range(count):
                angle = rate * turn
                vx, vy = velocity[:, 0].copy(), velocity[:, 1].copy()
                velocity[:, 0], velocity[:, 1] = (
                    np.cos(angle) * vx - np.sin(angle) * vy,
                    np.sin(angle) * vx + np.cos(angle) * vy,
                )
                velocity[:, :2] *= keep
                mean[:, :2] += velocity[:, :2]
                path[:, k] = cxcywh_to_xyxy(mean)
            out.append(path)
        return out

    back = runs(probes.warmup - window, window)
    errors = np.stack([_centre_error(b[:, -1], probes.boxes[:, probes.warmup]) for b in back], axis=1)
    weights = np.exp(-(errors - errors.min(axis=1, keepdims=True)) / 0.005)
    weights /= weights.sum(axis=1, keepdims=True)
    ahead = runs(probes.warmup, steps)
    return sum(weights[:, i, None, None] * ahead[i] for i in range(len(ahead)))


def oracle_cv_or_stop(probe_sets: list[Probes]) -> list[NDArray[np.float64]]:
    """Per probe and step, the CV prediction or the box at the gap start, whichever is closer to the truth."""
    out = []
    for probes, walked in zip(probe_sets, _cv_predictions(probe_sets), strict=True):
        truth = probes.boxes[:, probes.warmup + 1 :]
        stood = np.repeat(probes.boxes[:, probes.warmup, None], truth.shape[1], axis=1)
        closer = _centre_distance(walked, truth) <= _centre_distance(stood, truth)
        out.append(np.where(closer[..., None], walked, stood))
    return out


def learned_from_the_past(probe_sets: list[Probes]) -> list[NDArray[np.float64]]:
    """Displacement at each horizon learned from warm-up features, scored on held-out sequences (see the module
    docstring); steps other than the reported horizons are NaN."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.model_selection import GroupKFold

    walked = _cv_predictions(probe_sets)
    features, groups = [], []
    for g, (probes, cv) in enumerate(zip(probe_sets, walked, strict=True)):
        features.append(_past_features(probes, cv))
        groups.append(np.full(len(probes.boxes), g))
    x, group = np.concatenate(features), np.concatenate(groups)
    out = [np.full_like(cv, np.nan) for cv in walked]
    for horizon in HORIZONS_S:
        steps = [round(horizon * p.frame_rate) for p in probe_sets]
        height = np.concatenate([_heights(p.boxes[:, p.warmup]) for p in probe_sets])
        cv_end = np.concatenate([_centres(cv[:, k - 1]) for cv, k in zip(walked, steps, strict=True)])
        truth = np.concatenate([_centres(p.boxes[:, p.warmup + k]) for p, k in zip(probe_sets, steps, strict=True)])
        target = (truth - cv_end) / height[:, None]  # what CV missed, in box heights
        correction = np.zeros_like(target)
        for train, test in GroupKFold(6).split(x, groups=group):
            for axis in range(2):
                model = HistGradientBoostingRegressor(loss="absolute_error", max_iter=300, random_state=0)
                correction[test, axis] = model.fit(x[train], target[train, axis]).predict(x[test])
        centre = cv_end + correction * height[:, None]
        offset = 0
        for probes, cv, k, box in zip(probe_sets, walked, steps, out, strict=True):
            n = len(probes.boxes)
            half = 0.5 * (cv[:, k - 1, 2:] - cv[:, k - 1, :2])
            box[:, k - 1] = np.concatenate([centre[offset : offset + n] - half, centre[offset : offset + n] + half], 1)
            offset += n
    return out


def _each(model: Callable[[Probes], NDArray[np.float64]]) -> Callable[[list[Probes]], list[NDArray[np.float64]]]:
    return lambda probe_sets: [model(p) for p in probe_sets]


def _cv_predictions(probe_sets: list[Probes]) -> list[NDArray[np.float64]]:
    return [predict(cv_kalman(p.frame_rate), p) for p in probe_sets]


MODELS: dict[str, Callable[[list[Probes]], list[NDArray[np.float64]]]] = {
    "CV Kalman": _cv_predictions,
    "IMM": _each(lambda probes: predict(imm(probes.frame_rate), probes)),
    "backtested CV / stop / turn": _each(backtested_models),
    "learned from the past second (held-out sequences)": learned_from_the_past,
    "oracle: CV or standing still, whichever is right": oracle_cv_or_stop,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to BENCHMARKS.md")
    args = parser.parse_args(argv)
    probe_sets = [p for dataset in ("mot17", "mot15") for p in load_probes(dataset)]
    counts = {c: sum(int((p.label == c).sum()) for p in probe_sets) for c in CLASSES}
    lines = [
        "| model | segment | probes | " + " | ".join(f"median / p90 at {h:g} s" for h in HORIZONS_S) + " |",
        "|---|---|---|" + "---|" * len(HORIZONS_S),
    ]
    for name, model in MODELS.items():
        errors = {c: {h: [] for h in HORIZONS_S} for c in CLASSES}
        for probes, predicted in zip(probe_sets, model(probe_sets), strict=True):
            for h in HORIZONS_S:
                step = round(h * probes.frame_rate)
                err = _centre_error(predicted[:, step - 1], probes.boxes[:, probes.warmup + step])
                for c in CLASSES:
                    errors[c][h].append(err[probes.label == c])
        for c in CLASSES:
            cells = []
            for h in HORIZONS_S:
                e = np.concatenate(errors[c][h])
                cells.append(f"{np.median(e):.3f} / {np.percentile(e, 90):.3f}")
            lines.append(f"| {name} | {c} | {counts[c]} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    if not args.no_append:
        notes = [
            "data: ground-truth tracks of MOT17 train (7 sequences, pedestrians, considered boxes) and MOT15 train "
            f"(11 sequences); a probe every {PROBE_EVERY_S:g} s of a track: {WARMUP_S:g} s of observations, then "
            f"prediction without observations up to {HORIZON_S:g} s",
            "error: distance between predicted and true box centres / true box height; segments judged on the first "
            "second of the gap: stopping (speed < 1/3 of the warm-up speed), turning (heading change > 30 degrees), "
            "else straight",
        ]
        append_section("prediction.py", notes, table)
    return 0


def predict(kalman: BoxKalman | ImmBoxFilter, probes: Probes) -> NDArray[np.float64]:
    """Warm the filter up on each probe's observed boxes, then predict; returns (P, H, 4) predicted xyxy."""
    rows = np.arange(len(probes.boxes))
    kalman.initiate(probes.boxes[:, 0])
    for k in range(1, probes.warmup + 1):
        kalman.predict()
        kalman.update(rows, probes.boxes[:, k])
    steps = probes.boxes.shape[1] - probes.warmup - 1
    out = np.empty((len(rows), steps, 4))
    for k in range(steps):
        kalman.predict()
        out[:, k] = kalman.boxes()
    return out


def load_probes(dataset: str) -> list[Probes]:
    split = next((DATA / dataset / "gt").glob("*-train"))
    sets = []
    for seq_dir in sorted(p for p in split.iterdir() if p.is_dir()):
        info = read_seqinfo(seq_dir / "seqinfo.ini")
        table = np.loadtxt(seq_dir / "gt" / "gt.txt", delimiter=",", ndmin=2)
        if dataset != "mot15":  # MOT16/17: pedestrians (class 1) that are scored (consider flag 1)
            table = table[(table[:, 6] == 1) & (table[:, 7] == 1)]
        probes = _windows(table, info.frame_rate)
        if probes is not None:
            sets.append(probes)
    return sets


def _windows(table: NDArray[np.float64], frame_rate: float) -> Probes | None:
    warmup = round(WARMUP_S * frame_rate)
    horizon = round(HORIZON_S * frame_rate)
    every = max(1, round(PROBE_EVERY_S * frame_rate))
    length = warmup + horizon + 1
    windows = []
    for track_id in np.unique(table[:, 1]):
        track = table[table[:, 1] == track_id]
        track = track[np.argsort(track[:, 0])]
        frames = track[:, 0].astype(int)
        boxes = xywh_to_xyxy(track[:, 2:6])
        # only stretches without missing frames: a gap in the ground truth is not a gap we simulate
        breaks = np.flatnonzero(np.diff(frames) != 1) + 1
        for run in np.split(np.arange(len(frames)), breaks):
            for start in range(0, len(run) - length + 1, every):
                windows.append(boxes[run[start : start + length]])
    if not windows:
        return None
    stacked = np.stack(windows)
    label, moving = _label(stacked, warmup, frame_rate)
    return Probes(stacked[moving], warmup, frame_rate, label[moving])


def _label(boxes: NDArray[np.float64], warmup: int, frame_rate: float) -> tuple[NDArray[np.str_], NDArray[np.bool_]]:
    """Straight / turning / stopping from the true motion, and which probes moved during the warm-up."""
    centre = 0.5 * (boxes[..., :2] + boxes[..., 2:])
    height = boxes[:, warmup, 3] - boxes[:, warmup, 1]
    half = max(1, round(0.5 * frame_rate))
    second = round(frame_rate)
    before = (centre[:, warmup] - centre[:, warmup - half]) / (half / frame_rate)
    after = (centre[:, warmup + second] - centre[:, warmup]) / (second / frame_rate)
    speed_before = np.linalg.norm(before, axis=1) / height
    speed_after = np.linalg.norm(after, axis=1) / height
    cos = (before * after).sum(axis=1) / np.maximum(
        np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1), 1e-9
    )
    turning = np.degrees(np.arccos(np.clip(cos, -1, 1))) > 30
    stopping = speed_after < speed_before / 3
    label = np.where(stopping, "stopping", np.where(turning, "turning", "straight"))
    return label, speed_before > MIN_SPEED


def _past_features(probes: Probes, walked: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per probe: velocities over the last 0.1-1 s and the CV displacement at 1 s (box heights per second), the log
    height and its relative change over the warm-up."""
    w, rate = probes.warmup, probes.frame_rate
    centre, height = _centres(probes.boxes), _heights(probes.boxes[:, w])
    columns = [(_centres(walked[:, round(rate) - 1]) - centre[:, w]) / height[:, None]]
    for span in (0.1, 0.2, 0.35, 0.5, 0.75, 1.0):
        k = max(1, min(w, round(span * rate)))
        columns.append((centre[:, w] - centre[:, w - k]) / height[:, None] / (k / rate))
    columns.append(np.stack([np.log(height), (height - _heights(probes.boxes[:, 0])) / height], axis=1))
    return np.concatenate(columns, axis=1)


def _centres(xyxy: NDArray[np.float64]) -> NDArray[np.float64]:
    return 0.5 * (xyxy[..., :2] + xyxy[..., 2:])


def _heights(xyxy: NDArray[np.float64]) -> NDArray[np.float64]:
    return xyxy[..., 3] - xyxy[..., 1]


def _centre_distance(predicted: NDArray[np.float64], truth: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.linalg.norm(_centres(predicted) - _centres(truth), axis=-1)


def _centre_error(predicted: NDArray[np.float64], truth: NDArray[np.float64]) -> NDArray[np.float64]:
    distance = np.linalg.norm(0.5 * (predicted[:, :2] + predicted[:, 2:]) - 0.5 * (truth[:, :2] + truth[:, 2:]), axis=1)
    return distance / (truth[:, 3] - truth[:, 1])


if __name__ == "__main__":
    raise SystemExit(main())
