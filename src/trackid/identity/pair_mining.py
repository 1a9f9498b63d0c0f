"""Labelled pairs without labels: what the data itself says is the same individual, or is not.

A new deployment has no labels, yet it needs a threshold that fits the similarities it will meet (a threshold
copied from elsewhere can sit above every similarity ever seen, or below every impostor). Some pairs are known
without anyone labelling them:
- positives: two parts of one tracklet (frames of one track, photos of one burst) are one individual, seconds apart;
- negatives: two tracklets seen in one frame (or photo) of one camera are two individuals, since no one is twice in
  a frame; two sightings at far-apart sites closer in time than the travel between them are two individuals.

Each source makes its own errors (a tracker's identity switch puts two people in one tracklet; a duplicate track of
one person co-occurs with itself; two "far-apart" sites may not be), which `bench/label_free.py` measures on labelled
sets. The positives are also easier than the pairs a gallery must accept: two parts of one track share the camera,
the light and the pose of a few seconds earlier. So `label_free_calibration` sets the threshold from the negatives
alone (what a target false-match rate of decisions needs is the impostor distribution of best matches) and uses the
positives only to fit the calibrator's slope, from parts of a track far apart in time.

The impostors come from a replay (`replay_impostors`): the sightings in time order, each against the earlier
sightings of every track known to be someone else. A negative says two *tracks* differ, so every sighting of one
differs from every sighting of the other, minutes apart, in another pose or at another spot, as the impostors a
gallery meets are; and a decision meets an impostor track through the best of its sightings, which the replay takes.
The pairs seen in one frame alone are a poor sample of them: on PETS09-S2L1 their largest cosine was 0.57-0.71
where the replay's best impostors reach 0.82-0.83 (people side by side stand at different spots of the scene).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trackid.geometry import iou_matrix
from trackid.identity.calibration import MatchCalibrator
from trackid.types import Tracklet

__all__ = [
    "MIN_TAIL",
    "NEGATIVE_SOURCES",
    "POSITIVE_SOURCES",
    "TAIL_QUANTILE",
    "ImpostorReplay",
    "LabelFreeCalibration",
    "MinedPairs",
    "label_free_calibration",
    "mine_pairs",
    "pool_vectors",
    "replay_impostors",
]

POSITIVE_SOURCES = ("within-tracklet", "within-burst")
NEGATIVE_SOURCES = ("same-frame", "far-sites")
PositiveSource = Literal["within-tracklet", "within-burst"]


@dataclass(frozen=True)
class MinedPairs:
    """Pairs of sightings with the label the data gives them, aligned arrays.

    Attributes:
        vectors: (N, D) each tracklet's pooled unit vector (what a gallery compares), in the order given.
        first, second: the tracklets of each pair; equal for a positive (two parts of one tracklet).
        similarity: cosine similarity of the pair (of the two parts' pooled vectors for a positive).
        same: the mined label: True for a positive source, False for a negative one.
        source: one of `POSITIVE_SOURCES` or `NEGATIVE_SOURCES`.
        time_gap_s: seconds between the two (0 for tracklets seen together; NaN where times are unknown).
    """

    vectors: NDArray[np.float32]
    first: NDArray[np.intp]
    second: NDArray[np.intp]
    similarity: NDArray[np.float64]
    same: NDArray[np.bool_]
    source: NDArray[np.str_]
    time_gap_s: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.first)

    def select(self, rows: NDArray[np.bool_]) -> MinedPairs:
        """The pairs where `rows` is true (the vectors are kept whole, so indices stay valid)."""
        return MinedPairs(
            self.vectors,
            self.first[rows],
            self.second[rows],
            self.similarity[rows],
            self.same[rows],
            self.source[rows],
            self.time_gap_s[rows],
        )

    def counts(self) -> dict[str, int]:
        """Pairs per source, every source named (0 where none was found)."""
        return {s: int(np.sum(self.source == s)) for s in (*POSITIVE_SOURCES, *NEGATIVE_SOURCES)}


def mine_pairs(
    tracklets: Sequence[Tracklet],
    crop_vectors: Sequence[ArrayLike],
    *,
    segments: int = 3,
    min_gap_s: float = 0.0,
    positive_source: PositiveSource = "within-tracklet",
    max_shared_iou: float = 0.3,
    site_travel_s: float | None = None,
) -> MinedPairs:
    """Positive and negative pairs among `tracklets`, from their times, frames, boxes and cameras alone.

    Args:
        tracklets: one camera's or several cameras' tracklets (photo bursts' individuals are tracklets too).
        crop_vectors: per tracklet, (len(crops), D) vectors of its crops in `crops` order.
        segments: a tracklet's crops, in frame order, are cut into up to this many consecutive parts, each pooled
            into one vector; every two parts at least `min_gap_s` apart make a positive. More parts give more
            positives, each pooled over fewer crops (noisier, and closer in time).
        min_gap_s: the least time between two parts of a positive. Raising it makes positives more like the
            pairs a gallery meets (another pose, other light) but leaves fewer, and none from short tracklets;
            parts whose times are unknown never pass a positive `min_gap_s`.
        positive_source: the name positives are tagged with: "within-burst" for photo bursts.
        max_shared_iou: two tracklets sharing frames are a negative only if their boxes' median IoU over the shared
            frames is at most this: a duplicate track of one person shares its frames with the original at a high
            IoU, while two people cross each other only for a few frames. Lowering it drops those crossings too.
        site_travel_s: when given, every two cameras are at least this many seconds of travel apart: tracklets of
            two cameras whose time spans come closer than this are a negative ("far-sites"). None: no such
            negatives (cameras that may see one individual at once must not claim this).
    """
    if len(crop_vectors) != len(tracklets):
        raise ValueError(f"crop_vectors has {len(crop_vectors)} entries for {len(tracklets)} tracklets")
    if segments < 2:
        raise ValueError(f"segments must be >= 2 (a positive needs two parts), got {segments}")
    if not min_gap_s >= 0:
        raise ValueError(f"min_gap_s must be >= 0 seconds, got {min_gap_s}")
    if positive_source not in POSITIVE_SOURCES:
        raise ValueError(f"positive_source must be one of {POSITIVE_SOURCES}, got {positive_source!r}")
    if not 0 <= max_shared_iou <= 1:
        raise ValueError(f"max_shared_iou must be in [0, 1], got {max_shared_iou}")
    if site_travel_s is not None and not site_travel_s > 0:
        raise ValueError(f"site_travel_s must be positive seconds (or None), got {site_travel_s}")
    vectors = [_check_vectors(t, v, k) for k, (t, v) in enumerate(zip(tracklets, crop_vectors, strict=True))]
    dims = {v.shape[1] for v in vectors}
    if len(dims) > 1:
        raise ValueError(f"crop_vectors: tracklets' vectors differ in width ({sorted(dims)})")
    pooled = np.stack([pool_vectors(t, v) for t, v in zip(tracklets, vectors, strict=True)])
    parts = [_positives(t, v, segments, min_gap_s) for t, v in zip(tracklets, vectors, strict=True)]
    positives = [(k, s, gap) for k, found in enumerate(parts) for s, gap in found]
    together = _seen_together(tracklets, max_shared_iou)
    apart = _far_sites(tracklets, site_travel_s) if site_travel_s is not None else []
    negatives = [(a, b, 0.0, "same-frame") for a, b in together] + [(a, b, g, "far-sites") for a, b, g in apart]
    first = np.array([k for k, _, _ in positives] + [a for a, _, _, _ in negatives], np.intp)
    second = np.array([k for k, _, _ in positives] + [b for _, b, _, _ in negatives], np.intp)
    similarity = np.array(
        [s for _, s, _ in positives] + [float(pooled[a] @ pooled[b]) for a, b, _, _ in negatives], np.float64
    )
    return MinedPairs(
        vectors=pooled,
        first=first,
        second=second,
        similarity=similarity,
        same=np.r_[np.ones(len(positives), bool), np.zeros(len(negatives), bool)],
        source=np.array([positive_source] * len(positives) + [n[3] for n in negatives], dtype=np.str_),
        time_gap_s=np.array([g for _, _, g in positives] + [n[2] for n in negatives], np.float64),
    )


def pool_vectors(tracklet: Tracklet, vectors: ArrayLike) -> NDArray[np.float32]:
    """The tracklet's unit vector from its crops' `vectors`, each weighted by its frame's crop quality (as
    `trackid.track.tracklets` and the photo bursts pool)."""
    v = np.asarray(vectors, np.float64)
    weights = _crop_weights(tracklet)
    total = (weights[:, None] * v).sum(axis=0)
    if not np.any(total):  # every crop scored quality 0: the plain mean still says what it looked like
        total = v.sum(axis=0)
    return (total / max(float(np.linalg.norm(total)), 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class ImpostorReplay:
    """An ingest of the sightings in time order, as far as the mined negatives can tell its impostors.

    Attributes:
        best: per (decision, earlier track known to be someone else): the decision's best cosine among that track's
            sightings before it; what the decision would take if that impostor were its best.
        query, other: per entry of `best`, the decision's sighting and the impostor's best sighting (indices into
            the tracklets given), so labelled sets can say how often "known to be someone else" was wrong.
        candidates: per decision, the tracks with sightings before it other than its own: the impostors it may
            meet, known or not.
    """

    best: NDArray[np.float64]
    query: NDArray[np.intp]
    other: NDArray[np.intp]
    candidates: NDArray[np.int64]


def replay_impostors(tracklets: Sequence[Tracklet], pairs: MinedPairs) -> ImpostorReplay:
    """Each sighting, in order of its end, against the earlier sightings of the tracks known to be someone else.

    Tracklets of one camera, source and track id are pieces of one track (a tracker's track shipped in parts):
    one individual. Two tracks are known to differ when any of their pieces make a mined negative. The replay
    keeps per decision each such track's best sighting: one entry per impostor track, not per sighting, since a
    track's sightings are alike and a decision's false match is the best of them.
    """
    if len(pairs.vectors) != len(tracklets):
        raise ValueError(f"pairs were mined from {len(pairs.vectors)} tracklets, not these {len(tracklets)}")
    keys = [(t.camera_id, t.source, t.track_id) for t in tracklets]
    number = {k: n for n, k in enumerate(dict.fromkeys(keys))}
    track = np.array([number[k] for k in keys], np.intp)
    negative = ~pairs.same
    differ = np.zeros((len(number), len(number)), bool)
    differ[track[pairs.first[negative]], track[pairs.second[negative]]] = True
    differ |= differ.T
    ends = [float(np.nan_to_num(t.times[-1])) if len(t.times) else 0.0 for t in tracklets]
    order = sorted(range(len(tracklets)), key=lambda k: (ends[k], keys[k]))
    vectors = np.asarray(pairs.vectors, np.float64)
    best, query, other, candidates = [], [], [], []
    for i, q in enumerate(order):
        earlier = np.asarray(order[:i], np.intp)
        seen = np.unique(track[earlier])
        candidates.append(int(np.sum(seen != track[q])))
        known = earlier[differ[track[q], track[earlier]]]
        if len(known) == 0:
            continue
        similarity = vectors[known] @ vectors[q]
        # per impostor track, its best sighting: sort by track, then by similarity, and keep each track's last
        rows = np.lexsort((similarity, track[known]))
        last = np.r_[track[known][rows][1:] != track[known][rows][:-1], True]
        best.extend(similarity[rows][last].tolist())
        other.extend(known[rows][last].tolist())
        query.extend([q] * int(last.sum()))
    return ImpostorReplay(
        best=np.asarray(best, np.float64),
        query=np.asarray(query, np.intp),
        other=np.asarray(other, np.intp),
        candidates=np.asarray(candidates, np.int64),
    )


@dataclass(frozen=True)
class LabelFreeCalibration:
    """What the mined pairs chose.

    Attributes:
        calibrator: P(same | similarity), Platt-fitted on the mined positives and negatives.
        threshold: the probability threshold (accept p >= it) for the target false-match rate of decisions.
        similarity_threshold: the same threshold on cosine similarity (the calibrator is monotone).
        expected_false_match_rate: the estimated false-match rate of decisions at the threshold.
        tail_start: the similarity above which the impostor tail is modelled (the top `1 - TAIL_QUANTILE` of the
            replay's best impostors, at least `MIN_TAIL` of them).
        tail_scale: the exponential tail's scale (the mean excess above `tail_start`); NaN when the replay holds
            no more than `MIN_TAIL` impostors (the smoothed empirical share alone is used then).
    """

    calibrator: MatchCalibrator
    threshold: float
    similarity_threshold: float
    expected_false_match_rate: float
    tail_start: float
    tail_scale: float


TAIL_QUANTILE = 0.99
"""Where the impostor tail model starts: the top 1 % of the replay's best impostors (at least `MIN_TAIL` of them) are
its sample (peaks over threshold). Below it the empirical share is fine enough; from the 90th percentile on, the best
impostors of PETS09-S2L1 fall off faster than an exponential (chosen after seeing that: it accepted nothing there)."""
MIN_TAIL = 20
"""The fewest impostors the tail is fitted to: where 1 % of them is fewer, the tail starts lower (a small deployment
leans more on the model); with no more than this many impostors, only the smoothed empirical share counts."""


def label_free_calibration(pairs: MinedPairs, impostors: ImpostorReplay, *, target: float) -> LabelFreeCalibration:
    """The calibrator and threshold from mined pairs alone, for a target false-match rate of decisions.

    A decision takes the best of the `impostors.candidates[q]` tracks seen before it (its own aside); it is a false
    match when that best is someone else and passes the threshold. Its rate is at most the chance that the best of
    `candidates[q]` impostor tracks passes, 1 - (1 - f(t))^candidates[q], f being the share of the replay's
    per-track best impostors (`impostors.best`) at or above t: their empirical share up to their 99th percentile,
    and beyond it, where a share of a few hundred is too coarse for a rate of 1 in thousands, an exponential tail
    fitted to the top (extreme-value theory's peaks over threshold, with the shape fixed at 0: see the code). With
    no more than `MIN_TAIL` impostors, the share is counted as (k + 1) / (n + 1), so that a handful never promises
    a rate of 0. Counting every candidate as an impostor and ignoring that the true match may outrank the
    impostor both err towards fewer false matches, as do wrongly mined negatives (similar pairs, in the tail). The
    positives do not enter the threshold: two parts of one track are far easier than the pairs a gallery must
    accept, so a threshold leaning on them would believe in recall that is not there. They fit the calibrator's
    slope.

    Args:
        pairs: from `mine_pairs`; needs both positives and negatives.
        impostors: from `replay_impostors` on the same tracklets.
        target: the false-match rate of decisions to stay within.
    """
    if not 0 < target < 1:
        raise ValueError(f"target must be a false-match rate in (0, 1), got {target}")
    m = np.asarray(impostors.candidates, np.float64).reshape(-1)
    if len(m) == 0 or (m < 0).any() or not np.isfinite(m).all():
        raise ValueError("impostors.candidates must be a non-empty array of counts >= 0")
    if pairs.same.sum() < 2 or (~pairs.same).sum() < 2:
        counts = pairs.counts()
        raise ValueError(f"pairs: label-free calibration needs at least 2 positives and 2 negatives, got {counts}")
    best = np.sort(np.asarray(impostors.best, np.float64))
    n = len(best)
    if n < 2:
        raise ValueError(f"impostors: the replay met {n} known impostors; the threshold needs at least 2")
    k = min(max(int(np.ceil((1 - TAIL_QUANTILE) * n)), MIN_TAIL), n - 1)
    start = float(best[n - k - 1])
    excess = best[n - k :] - start
    # an exponential tail (the generalised Pareto with shape 0), its scale the mean excess: a shape fitted to a few
    # dozen exceedances is too noisy to trust, and a negative one ends the tail at the largest impostor seen,
    # while the impostors of another hour reach further
    scale = float(excess.mean()) if n > MIN_TAIL else np.nan

    def impostor_rate(t: NDArray[np.float64]) -> NDArray[np.float64]:
        above = n - np.searchsorted(best, t, side="left")
        if not np.isfinite(scale):
            return np.asarray((above + 1) / (n + 1), np.float64)
        tail = (k / n) * np.exp(-np.maximum(t - start, 0.0) / max(scale, 1e-12))
        return np.asarray(np.where(t > start, tail, above / n), np.float64)

    # the rate falls as t rises: the lowest t within the target, to 1e-4 in cosine (finer than any embedder's noise)
    grid = np.linspace(float(best[0]), 1.0 + 1e-4, 20_001)
    f = impostor_rate(grid)
    rates = np.mean(1.0 - (1.0 - f[:, None]) ** m[None, :], axis=1)
    ok = np.flatnonzero(rates <= target)
    row = int(ok[0]) if len(ok) else len(grid) - 1  # nothing reaches the target: accept nothing automatically
    t = float(grid[row])
    calibrator = MatchCalibrator("platt").fit(pairs.similarity, pairs.same)
    if not calibrator.coef_[0] > 0:
        raise ValueError(
            "pairs: the mined positives are not more similar than the negatives (the calibrator's slope is "
            f"{calibrator.coef_[0]:.3g}); the embedder cannot tell these individuals apart"
        )
    return LabelFreeCalibration(
        calibrator=calibrator,
        threshold=float(calibrator.predict_proba([t])[0]),
        similarity_threshold=t,
        expected_false_match_rate=float(rates[row]),
        tail_start=start,
        tail_scale=scale,
    )


def _check_vectors(tracklet: Tracklet, vectors: ArrayLike, k: int) -> NDArray[np.float64]:
    v = np.asarray(vectors, np.float64)
    if v.ndim != 2 or len(v) != len(tracklet.crops) or len(v) == 0:
        raise ValueError(
            f"crop_vectors[{k}] must be ({len(tracklet.crops)}, D), one row per crop of tracklet "
            f"{tracklet.track_id} (a tracklet needs at least one crop), got shape {v.shape}"
        )
    if not np.isfinite(v).all():
        raise ValueError(f"crop_vectors[{k}] contains NaN or inf")
    return v


def _crop_weights(tracklet: Tracklet) -> NDArray[np.float64]:
    rows = np.searchsorted(tracklet.frames, np.asarray(tracklet.crop_frames, np.int64))
    return np.asarray(tracklet.quality[np.minimum(rows, len(tracklet.frames) - 1)], np.float64)


def _crop_times(tracklet: Tracklet) -> NDArray[np.float64]:
    rows = np.searchsorted(tracklet.frames, np.asarray(tracklet.crop_frames, np.int64))
    return np.asarray(tracklet.times[np.minimum(rows, len(tracklet.frames) - 1)], np.float64)


def _positives(
    tracklet: Tracklet, vectors: NDArray[np.float64], segments: int, min_gap_s: float
) -> list[tuple[float, float]]:
    """(similarity, time gap) of every two parts of the tracklet at least `min_gap_s` apart."""
    order = np.argsort(np.asarray(tracklet.crop_frames, np.int64), kind="stable")
    if len(order) < 2:
        return []
    times, weights = _crop_times(tracklet)[order], _crop_weights(tracklet)[order]
    parts = np.array_split(np.arange(len(order)), min(segments, len(order)))
    pooled = []
    for rows in parts:
        total = (weights[rows, None] * vectors[order[rows]]).sum(axis=0)
        if not np.any(total):
            total = vectors[order[rows]].sum(axis=0)
        pooled.append(total / max(float(np.linalg.norm(total)), 1e-12))
    found = []
    for i in range(len(parts)):
        for j in range(i + 1, len(parts)):
            gap = float(times[parts[j][0]] - times[parts[i][-1]])
            if gap >= min_gap_s or (min_gap_s == 0 and np.isnan(gap)):
                found.append((float(pooled[i] @ pooled[j]), gap))
    return found


def _seen_together(tracklets: Sequence[Tracklet], max_shared_iou: float) -> list[tuple[int, int]]:
    """Pairs of tracklets of one camera and source observed in one frame (same frame number and time), whose
    boxes there overlap by a median IoU of at most `max_shared_iou`."""
    seen: defaultdict[tuple[str, str, int, float], list[tuple[int, int]]] = defaultdict(list)
    for k, t in enumerate(tracklets):
        times = np.where(np.isnan(t.times), -np.inf, t.times)  # unknown times: the frame number alone decides
        for row, (frame, time) in enumerate(zip(t.frames.tolist(), times.tolist(), strict=True)):
            seen[(t.camera_id, t.source, frame, time)].append((k, row))
    overlaps: defaultdict[tuple[int, int], list[float]] = defaultdict(list)
    for members in seen.values():
        if len(members) < 2:
            continue
        boxes = np.stack([tracklets[k].boxes[row] for k, row in members])
        iou = iou_matrix(boxes, boxes)
        for i in range(len(members)):
            for j in range(i + 1, len(members)):
                a, b = members[i][0], members[j][0]
                if a != b:
                    overlaps[(min(a, b), max(a, b))].append(float(iou[i, j]))
    return sorted(pair for pair, iou in overlaps.items() if float(np.median(iou)) <= max_shared_iou)


def _far_sites(tracklets: Sequence[Tracklet], travel_s: float) -> list[tuple[int, int, float]]:
    """Pairs of tracklets of two cameras whose time spans come closer than `travel_s` (with the gap between them)."""
    start = np.array([np.nanmin(t.times) if np.isfinite(t.times).any() else np.nan for t in tracklets])
    end = np.array([np.nanmax(t.times) if np.isfinite(t.times).any() else np.nan for t in tracklets])
    camera = np.array([t.camera_id for t in tracklets])
    gap = np.maximum(0.0, np.maximum(start[:, None], start[None, :]) - np.minimum(end[:, None], end[None, :]))
    with np.errstate(invalid="ignore"):
        apart = (camera[:, None] != camera[None, :]) & (gap < travel_s)  # NaN times compare false: never a pair
    a, b = np.nonzero(np.triu(apart, k=1))
    return [(int(i), int(j), float(gap[i, j])) for i, j in zip(a.tolist(), b.tolist(), strict=True)]
