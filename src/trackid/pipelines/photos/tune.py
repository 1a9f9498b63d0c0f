"""`photos tune`: the ensemble weights and the decision threshold, chosen on labelled photos and measured apart.

Half the individuals (by seed) tune, the other half test, so the evidence in `tuned.json` is what new individuals
would see. On the tuning half: the camera means, the weights (mAP, on a grid in standardised units), the calibration
(cross-camera pairs), the threshold (replayed ingest decisions) and the drift watch's reference (the replay's
best-match similarities). On the held-out half: retrieval of the ensemble
and of each member, the decision rates at the threshold and at other targets, and the calibration report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trackid.config import EmbedderConfig, PhotosConfig
from trackid.embed import Embedder, make_embedder
from trackid.embed.centring import CameraCentring
from trackid.embed.crops import l2_normalise
from trackid.embed.ensemble import EnsembleEmbedder
from trackid.eval.reid import evaluate_reid
from trackid.identity.calibration import MatchCalibrator
from trackid.identity.drift import drift_watch
from trackid.identity.report import write_calibration_report
from trackid.images import read_image
from trackid.pipelines.photos.bursts import PhotoCropper
from trackid.pipelines.photos.labels import Labels
from trackid.pipelines.photos.learned import METRIC_FILE, LearnedMember, fit_learned_member
from trackid.pipelines.photos.tuned import Tuned
from trackid.sources.photos import Photo, SkippedFile, scan_photos

__all__ = [
    "MIN_METRIC_INDIVIDUALS",
    "ExtraLabels",
    "cross_camera_pairs",
    "decision_rates",
    "decision_threshold",
    "replay_decisions",
    "tune",
]

COMPETITOR_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
"""The competitor weights `tune` tries (`trackid.identity.matching.competitor_scores`); 0 is the plain similarity."""
MIN_METRIC_INDIVIDUALS = 20
"""Tuning individuals below which no metric is learned: it learns on half of them, and a metric learnt from fewer
than ten people fits them rather than the cameras (VIPeR's 316 give ~35 % rank-1 on held-out people)."""
log = logging.getLogger(__name__)


def tune(
    folders: Sequence[Path],
    labels: Labels,
    *,
    config: PhotosConfig,
    out: Path,
    seed: int = 0,
    grid_step: float = 0.1,
    progress: Callable[[str], None] | None = None,
    extra: ExtraLabels | None = None,
) -> Tuned:
    """Choose the ensemble weights (mAP on half the individuals) and the threshold for the target false-positive
    rate of decisions (calibrated and replayed on the same half), then measure both on the other half; write
    `tuned.json` and the report. Files that cannot be used are left out and named in the evidence (`skipped`).

    `extra`: labelled crops from elsewhere (`photos retrain`: the sightings people corrected); their individuals
    all join the tuning half, so the held-out half stays the folders' own and comparable with an earlier tune."""
    found, skipped = scan_photos(folders, config.extensions)
    found = [p for p in found if labels(p.path).get("individual")]
    cropper = PhotoCropper(config)
    photos: list[Photo] = []
    crops: list[NDArray[np.uint8]] = []
    for photo in found:
        try:
            individuals = cropper(read_image(photo.path))
        except ValueError as exc:  # undecodable past its header, or changed since the scan
            skipped.append(SkippedFile(photo.path, str(exc).removeprefix(f"{photo.path}: ")))
            continue
        if not individuals.crops:
            raise ValueError(f"{photo.path}: no individual detected (tuning needs one per labelled photo)")
        photos.append(photo)
        crops.append(individuals.crops[int(np.argmax(individuals.found.score))])
    if len(photos) < 4:
        raise ValueError(f"tuning needs labelled photos; found {len(photos)} with an individual label in {folders}")
    ids = np.array([str(labels(p.path)["individual"]) for p in photos])
    cams = np.array([p.camera for p in photos])
    order = sorted(range(len(photos)), key=lambda i: (photos[i].time, photos[i].camera, str(photos[i].path)))
    if extra is not None:
        order += list(range(len(photos), len(photos) + len(extra.crops)))  # replayed after the folders' photos
        crops = [*crops, *extra.crops]
        ids = np.concatenate([ids, np.char.add("extra:", np.asarray(extra.individuals, dtype=str))])
        cams = np.concatenate([cams, np.asarray(extra.cameras, dtype=str)])
    ensemble = make_embedder(config.embedder.name, **config.embedder.params)
    members: list[Embedder] = ensemble.members if isinstance(ensemble, EnsembleEmbedder) else [ensemble]
    member_vectors = []
    for member in members:
        if progress is not None:
            progress(f"embedding {len(crops)} photos with {member.model_id}")
        member_vectors.append(l2_normalise(member.embed(crops)))
    people = np.unique(ids)
    rng = np.random.default_rng(seed)
    own = np.array([p for p in people if not p.startswith("extra:")])
    tune_people = set(rng.permutation(own)[: len(own) // 2].tolist())
    part = np.array([i in tune_people for i in ids])
    held = np.isin(ids, own) & ~part
    learned, metric_rows = None, np.zeros(len(ids), bool)
    metric_note = None
    if config.metric is not None and len(tune_people) < MIN_METRIC_INDIVIDUALS:
        metric_note = (
            f"the learned metric ({config.metric.name}) was left out: the tuning half has {len(tune_people)} "
            f"individuals, it needs {MIN_METRIC_INDIVIDUALS} (half to learn on, half to choose the threshold on); "
            "label more individuals to use it"
        )
        log.warning(metric_note)
    elif config.metric is not None:
        # A metric maps the pairs it was fitted on far closer than a newcomer's, so it learns on half the tuning
        # individuals (and every extra one) and the weights, calibration and threshold are chosen on the rest.
        fit_people = set(rng.permutation(sorted(tune_people))[: len(tune_people) // 2].tolist())
        metric_rows = np.array([i in fit_people or i.startswith("extra:") for i in ids])
        part &= ~metric_rows
        if progress is not None:
            progress(
                f"learning {config.metric.name} on {config.metric.features.name} features of {len(fit_people)} "
                "tuning individuals"
            )
        learned = fit_learned_member(config.metric, crops, ids, cams, metric_rows, out)
        members = [*members, learned.embedder]
        member_vectors.append(learned.vectors)
    # the camera means come from the tuning half only, so the held-out half is scored as new photos would be
    centring = None
    if config.camera_centring:
        dims = [v.shape[1] for v in member_vectors]
        stacked = np.concatenate(member_vectors, axis=1)
        centring = CameraCentring(dims=dims).fit(stacked[part], cams[part])
        centred = centring.transform(stacked, cams)
        member_vectors = np.split(centred, np.cumsum(dims)[:-1], axis=1)
    sims = np.stack([v @ v.T for v in member_vectors]).astype(np.float64)
    # The grid is laid out in standardised units: a member whose similarities spread little (colour histograms)
    # would otherwise need a weight near 1 to count at all, which a coarse grid never tries.
    spread = np.array([cross_camera_pairs(s, ids, cams, part)[0].std() for s in sims])
    scored = []
    for shares in _weight_grid(len(members), grid_step):
        weights = tuple(float(w) for w in np.asarray(shares) / np.maximum(spread, 1e-9))
        weights = tuple(w / sum(weights) for w in weights)
        scored.append((_retrieval(np.tensordot(weights, sims, axes=1), ids, cams, part), weights))
    (best_scores, best_weights) = max(scored, key=lambda x: (x[0]["mAP"], x[0]["rank1"]))
    fused = np.tensordot(best_weights, sims, axes=1)
    tune_s, tune_same = cross_camera_pairs(fused, ids, cams, part)
    pair_calibrator = MatchCalibrator().fit(tune_s, tune_same)
    # The threshold is set on decisions, not pairs: a photo is compared with every profile and takes the best,
    # so a pairwise false-match rate of 1 % becomes a false match for most newcomers once there are hundreds of
    # profiles. Replaying the ingest (each photo against the photos before it) measures what a user sees. A
    # replay of a share of the tuning individuals meets that share of the impostors a replay of them all would,
    # and the chance that the best of n impostors' similarities passes grows with n, so under the plain similarity
    # the target is scaled by that share. Under the competitor rule it is not: a bigger gallery raises the best
    # rival too (scaled anyway, the held-out false-match rate fell to 0.95 % on VIPeR and 0.36 % on PRID 2011 at
    # a 2 % target; unscaled, 1.4 % and 2.5 %).
    share = len(set(ids[part].tolist())) / max(1, len(tune_people))
    replay_order = np.array(order)
    tune_replay = _replay_scores(fused, ids, replay_order, part)
    held_replay = _replay_scores(fused, ids, replay_order, held)
    weight, calibrator, competitor_grid = _competitor_rule(
        tune_replay, pair_calibrator, config.target_false_positive_rate
    )
    scale = share if weight == 0.0 else 1.0
    tune_decisions = _decided(tune_replay, calibrator, weight)
    threshold = decision_threshold(*tune_decisions[:2], config.target_false_positive_rate * scale)
    held_decisions = _decided(held_replay, calibrator, weight)
    # the drift watch's references: the best-match similarities (for cameras still held back, uncentred) and the
    # decision probabilities the threshold was chosen on (for decided cameras); the held-out half, watched the same
    # way, is the false-alarm check on data from the same cameras
    reference = np.round(tune_replay[0], 6)
    watch = drift_watch(tune_decisions[0], config.drift_min_scores)
    checks = [c for c in (watch.update([p]) for p in held_decisions[0]) if c]
    held_s, held_same = cross_camera_pairs(fused, ids, cams, held)
    accept = pair_calibrator.predict_proba(held_s) >= decision_threshold(
        *_decided(tune_replay, pair_calibrator, 0.0)[:2], config.target_false_positive_rate * share
    )
    ensemble_scores = _retrieval(fused, ids, cams, held)
    member_scores = {
        f"{m.model_id} {m.version}": _retrieval(s, ids, cams, held) for m, s in zip(members, sims, strict=True)
    }
    held_out = {
        "individuals": int(len(own) - len(tune_people)),
        "individual_labels": sorted(str(p) for p in own if p not in tune_people),
        "photos": int((held).sum()),
        "ensemble": ensemble_scores,
        "members": member_scores,
        "ensemble_gain_over_best_member": {
            metric: ensemble_scores[metric] - max(r[metric] for r in member_scores.values())
            for metric in ("rank1", "mAP")
        },
        "decisions": decision_rates(*held_decisions, threshold),
        "trade_off": [
            {
                "target": target,
                **decision_rates(*held_decisions, decision_threshold(*tune_decisions[:2], target * scale)),
            }
            for target in (0.01, 0.02, 0.05, 0.1, 0.2, 0.4)
        ],
        "drift_check": {
            "rule": "trackid.identity.drift.DriftWatch over the held-out half's replayed decision probabilities",
            "reference_scores": len(reference),
            "checks": len(checks),
            "drifted": watch.drifted,
            "max_statistic": max((c.statistic for c in checks), default=None),
        },
        "pairs": {
            "same": int(held_same.sum()),
            "different": int((~held_same).sum()),
            "false_match_rate": float(accept[~held_same].mean()) if (~held_same).any() else None,
            "recall": float(accept[held_same].mean()) if held_same.any() else None,
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    write_calibration_report(
        out / "report",
        held_s,
        held_same,
        pair_calibrator,
        target_false_match_rate=config.target_false_positive_rate,
        title="Photo re-identification: held-out individuals",
    )
    tuned = Tuned(
        embedder=_tuned_embedder(config, ensemble, learned, best_weights),
        calibrator=calibrator,
        threshold=float(threshold),
        competitor_weight=weight,
        target_false_positive_rate=config.target_false_positive_rate,
        centring=centring,
        drift_reference=reference,
        decision_reference=np.round(tune_decisions[0], 6),
        evidence={
            "camera_centring": centring is not None,
            "competitor": {
                "weight": weight,
                "calibrated_on": "pairs" if weight == 0.0 else "replayed decisions",
                "tried": competitor_grid,
                "target_scaled_by": scale,
            },
            "photos": len(photos),
            "individuals": len(people),
            "extra": None if extra is None else {"crops": len(extra.crops), "individuals": len(set(extra.individuals))},
            "metric": {"left_out": metric_note}
            if learned is None
            else {
                "model_id": learned.embedder.model_id,
                "file": METRIC_FILE,
                "fitted_on": {"photos": int(metric_rows.sum()), "individuals": len(set(ids[metric_rows].tolist()))},
            },
            "cameras": sorted(set(cams.tolist())),
            "seed": seed,
            "skipped": [{"path": str(f.path), "reason": f.reason} for f in skipped],
            "tuning_half": best_scores,
            "grid": [{"weights": [round(float(w), 6) for w in wts], **sc} for sc, wts in scored],
            "held_out": held_out,
            "report": "report/report.html",
        },
    )
    tuned.save(out)
    return tuned


@dataclass(frozen=True)
class ExtraLabels:
    """Labelled crops besides the folders' photos: crop i shows `individuals[i]`, seen by `cameras[i]`."""

    crops: list[NDArray[np.uint8]]
    individuals: list[str]
    cameras: list[str]


def _tuned_embedder(
    config: PhotosConfig, ensemble: Embedder, learned: LearnedMember | None, weights: Sequence[float]
) -> EmbedderConfig:
    """The embedder `tuned.json` names: the configured one with the chosen weights, and the learned member."""
    rounded = [round(float(w), 6) for w in weights]
    if learned is None:
        params = dict(config.embedder.params)
        if isinstance(ensemble, EnsembleEmbedder):
            params["weights"] = rounded
        return EmbedderConfig(name=config.embedder.name, params=params)
    if config.embedder.name == "ensemble":
        members = [*config.embedder.params["members"], learned.config]
    else:
        members = [config.embedder.model_dump(), learned.config]
    return EmbedderConfig(name="ensemble", params={"members": members, "weights": rounded})


def _weight_grid(members: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector on the simplex with the given step (members' shares of the fused similarity)."""
    n = round(1 / step)
    return [tuple(c / n for c in combo) for combo in product(range(n + 1), repeat=members) if sum(combo) == n]


def _retrieval(
    sim: NDArray[np.float64], ids: NDArray[Any], cams: NDArray[Any], rows: NDArray[np.bool_]
) -> dict[str, float]:
    """Rank-1, rank-5 and mAP (%) of each photo of the subset searched among the others. With several cameras a
    photo is searched among the other cameras' photos only (the field's cross-camera protocol: re-identifying
    someone under the camera that just saw them is not the task)."""
    idx = np.flatnonzero(rows)
    sub = sim[np.ix_(idx, idx)].astype(np.float64)
    cam = cams[idx]
    excluded = cam[:, None] == cam[None, :] if len(set(cam.tolist())) > 1 else np.eye(len(idx), dtype=bool)
    sub = np.where(excluded, -1e9, sub)  # ranked last: they cannot take a rank before any real candidate
    scores = evaluate_reid(sub, ids[idx], ids[idx], cam, cam)
    return {"rank1": 100 * scores.rank(1), "rank5": 100 * scores.rank(5), "mAP": 100 * scores.mean_ap}


def replay_decisions(
    sim: NDArray[np.float64],
    ids: NDArray[Any],
    order: NDArray[np.intp],
    rows: NDArray[np.bool_],
    calibrator: MatchCalibrator,
    *,
    competitor_weight: float = 0.0,
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]:
    """Each photo of the subset, in ingest order, against the photos before it: the calibrated probability of its
    best candidate, whether that candidate is someone else, and whether its individual had been seen before.
    With a `competitor_weight`, the score calibrated is the gallery's (`trackid.identity.matching`): the best
    similarity minus that weight times the best similarity of any other individual."""
    return _decided(_replay_scores(sim, ids, order, rows), calibrator, competitor_weight)


_Replay = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]
"""`_replay_scores`' per-photo best similarity, best other individual's, whether the best is wrong, and known."""


def _decided(
    replay: _Replay, calibrator: MatchCalibrator, competitor_weight: float
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]:
    best, competitor, wrong, known = replay
    return calibrator.predict_proba(best - competitor_weight * competitor), wrong, known


def _replay_scores(
    sim: NDArray[np.float64], ids: NDArray[Any], order: NDArray[np.intp], rows: NDArray[np.bool_]
) -> _Replay:
    """Per replayed photo: the best similarity, the best of any other individual's (0 without one, as in the
    gallery), whether the best is someone else, and whether its individual had been seen before."""
    idx = order[rows[order]]
    sub = sim[np.ix_(idx, idx)]
    earlier = np.tril(np.ones(sub.shape, dtype=bool), k=-1)[1:]  # the first photo has nothing to compare with
    scores = np.where(earlier, sub[1:], -np.inf)
    best = np.argmax(scores, axis=1)
    queries = np.arange(1, len(idx))
    who = ids[idx]
    others = np.where(who[None, :] != who[best][:, None], scores, -np.inf).max(axis=1)
    known = np.array([who[q] in set(who[:q].tolist()) for q in queries.tolist()], dtype=bool)
    return sub[queries, best], np.where(np.isfinite(others), others, 0.0), who[best] != who[queries], known


def _competitor_rule(
    replay: _Replay, pair_calibrator: MatchCalibrator, target: float
) -> tuple[float, MatchCalibrator, list[dict[str, float]]]:
    """The competitor weight under which the replayed decisions recognise most known individuals at `target`,
    and the calibrator for it. A lookalike outranks the right individual less often than it comes close to them:
    a best match far above every other individual is more likely right than one in a crowd of near-equals, which
    the similarity alone cannot say. Weight 0 keeps the pair calibration; another weight is calibrated on the
    replayed decisions themselves (P(the best candidate is the same individual | score))."""
    best, competitor, wrong, known = replay
    tried = []
    for weight in COMPETITOR_WEIGHTS:
        score = best - weight * competitor
        rates = decision_rates(score, wrong, known, decision_threshold(score, wrong, target))
        # A few hundred replayed decisions allow a handful of false matches at the target, so the recognised share
        # there is a coarse count; its mean over targets around it ranks the weights more steadily.
        around = [
            decision_rates(score, wrong, known, decision_threshold(score, wrong, target * f))
            for f in (0.5, 1.0, 2.0, 4.0)
        ]
        steady = float(np.mean([r["correct_match_rate_of_known"] for r in around]))
        tried.append({"weight": weight, "recognised_around_target": steady, **{k: float(v) for k, v in rates.items()}})
    chosen = max(tried, key=lambda r: (r["recognised_around_target"], -r["weight"]))["weight"]
    if chosen == 0.0 or wrong.all() or not wrong.any():
        return 0.0, pair_calibrator, tried
    return chosen, MatchCalibrator().fit(best - chosen * competitor, ~wrong), tried


def decision_threshold(probability: NDArray[np.float64], wrong: NDArray[np.bool_], target: float) -> float:
    """Lowest probability threshold at which the share of decisions that take someone else's profile is <= target."""
    for t in np.unique(probability):
        if float(np.mean(wrong & (probability >= t))) <= target:
            return float(t)
    return float(np.nextafter(probability.max(initial=0.0), 1.0))  # nothing can be accepted at this target


def decision_rates(
    probability: NDArray[np.float64], wrong: NDArray[np.bool_], known: NDArray[np.bool_], threshold: float
) -> dict[str, float | int]:
    accept = probability >= threshold
    return {
        "photos": int(len(probability) + 1),
        "false_match_rate": float(np.mean(accept & wrong)),
        "match_rate": float(np.mean(accept)),
        "correct_match_rate_of_known": float(np.mean(accept[known] & ~wrong[known])) if known.any() else 0.0,
        "known_individuals_share": float(np.mean(known)),
    }


def cross_camera_pairs(
    sim: NDArray[np.float64], ids: NDArray[Any], cams: NDArray[Any], rows: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Similarities and same-individual labels of the subset's cross-camera pairs (all pairs with one camera)."""
    idx = np.flatnonzero(rows)
    a, b = np.triu_indices(len(idx), k=1)
    a, b = idx[a], idx[b]
    if len(set(cams[idx].tolist())) > 1:
        cross = cams[a] != cams[b]
        a, b = a[cross], b[cross]
    return sim[a, b].astype(np.float64), ids[a] == ids[b]
