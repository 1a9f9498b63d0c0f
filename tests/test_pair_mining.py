"""Pair mining and label-free calibration on synthetic tracklets whose identities are known by construction."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from trackid.identity.pair_mining import (
    ImpostorReplay,
    MinedPairs,
    label_free_calibration,
    mine_pairs,
    pool_vectors,
    replay_impostors,
)
from trackid.types import Tracklet


def _tracklet(track_id: int, frames: range, x: float, camera: str = "cam", fps: float = 10.0) -> Tracklet:
    """A person walking in place at column `x`: one box and one crop per frame."""
    f = np.asarray(list(frames), np.int64)
    boxes = np.tile([x, 0.0, x + 20.0, 50.0], (len(f), 1))
    return Tracklet(
        track_id=track_id,
        camera_id=camera,
        class_id=0,
        frames=f,
        times=(f - 1) / fps,
        boxes=boxes,
        scores=np.ones(len(f)),
        quality=np.ones(len(f)),
        embedding=np.zeros(0, np.float32),
        crops=tuple(np.zeros((50, 20, 3), np.uint8) for _ in f),
        crop_frames=tuple(f.tolist()),
        source="video.avi",
    )


def _vectors(identity: np.ndarray, n: int, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    v = identity[None, :] + noise * rng.standard_normal((n, len(identity)))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_pairs_of_a_small_scene() -> None:
    # A (frames 1-30) and B (10-40) share frames 10-30 far apart; C (50-60) shares none with anyone
    rng = np.random.default_rng(0)
    people = rng.standard_normal((3, 16))
    tracklets = [_tracklet(1, range(1, 31), 0), _tracklet(2, range(10, 41), 200), _tracklet(3, range(50, 61), 0)]
    vectors = [_vectors(p, len(t.crops), rng) for p, t in zip(people, tracklets, strict=True)]
    pairs = mine_pairs(tracklets, vectors, segments=3)
    negatives = pairs.select(~pairs.same)
    assert list(zip(negatives.first.tolist(), negatives.second.tolist(), strict=True)) == [(0, 1)]
    assert negatives.source.tolist() == ["same-frame"]
    positives = pairs.select(pairs.same)
    # three parts per tracklet, every two of them: 3 positives each, all within their own tracklet
    assert positives.first.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert (positives.first == positives.second).all()
    assert pairs.counts() == {"within-tracklet": 9, "within-burst": 0, "same-frame": 1, "far-sites": 0}
    # parts 0 and 2 of A: frames 1-10 and 21-30, so 11 frames = 1.1 s apart
    assert positives.time_gap_s[1] == pytest.approx(1.1)
    np.testing.assert_allclose(pairs.vectors[0], pool_vectors(tracklets[0], vectors[0]), atol=1e-6)
    assert positives.similarity.min() > negatives.similarity.max()


def test_min_gap_keeps_only_parts_far_apart() -> None:
    rng = np.random.default_rng(1)
    t = _tracklet(1, range(1, 31), 0)
    pairs = mine_pairs([t], [_vectors(rng.standard_normal(8), 30, rng)], segments=3, min_gap_s=1.0)
    assert len(pairs) == 1 and pairs.time_gap_s[0] == pytest.approx(1.1)  # only parts 0 and 2


def test_co_occurrence_needs_one_camera_one_frame() -> None:
    rng = np.random.default_rng(2)
    v = [_vectors(rng.standard_normal(8), 10, rng) for _ in range(3)]
    same_frames_other_camera = [_tracklet(1, range(1, 11), 0), _tracklet(2, range(1, 11), 200, camera="other")]
    assert not (~mine_pairs(same_frames_other_camera, v[:2]).same).any()
    back_to_back = [_tracklet(1, range(1, 11), 0), _tracklet(2, range(11, 21), 200)]
    assert not (~mine_pairs(back_to_back, v[:2]).same).any()
    # at two cameras at once: a negative only when the sites are declared far apart
    far = mine_pairs(same_frames_other_camera, v[:2], site_travel_s=3600.0)
    assert far.select(~far.same).source.tolist() == ["far-sites"]
    later = [_tracklet(1, range(1, 11), 0), _tracklet(2, range(100_000, 100_010), 0, camera="other")]
    assert not (~mine_pairs(later, v[:2], site_travel_s=3600.0).same).any()  # hours apart: could be one


def test_a_duplicate_track_of_one_person_is_no_negative() -> None:
    # the tracker made two tracks of one person (a double detection): they share every frame at IoU ~0.9.
    # Mining them as a negative would teach the calibrator that this person differs from themselves.
    rng = np.random.default_rng(3)
    person, other = rng.standard_normal(16), rng.standard_normal(16)
    original = _tracklet(1, range(1, 21), 0)
    duplicate = _tracklet(2, range(1, 21), 1)  # the same person's box shifted by a pixel
    bystander = _tracklet(3, range(1, 21), 300)
    truth = np.array([0, 0, 1])
    vectors = [_vectors(person, 20, rng), _vectors(person, 20, rng), _vectors(other, 20, rng)]
    pairs = mine_pairs([original, duplicate, bystander], vectors)
    negatives = pairs.select(~pairs.same)
    assert len(negatives) == 2
    assert not (truth[negatives.first] == truth[negatives.second]).any(), "a same-identity pair leaked"
    # and crossing paths for two frames out of twenty does not hide a true negative
    boxes = bystander.boxes.copy()
    boxes[:2] = original.boxes[:2]
    crossing = replace(bystander, boxes=boxes)
    found = mine_pairs([original, crossing], [vectors[0], vectors[2]])
    assert (~found.same).sum() == 1


def test_the_replay_meets_every_piece_of_a_track_known_to_differ() -> None:
    # track 1 (pieces a0, a1) and track 2 (b0, b1) share frames 11-20 (a1 with b0); track 3 (c0) comes later and
    # meets no one: one co-occurring pair of pieces makes all four pairs of the two tracks' pieces impostors
    rng = np.random.default_rng(5)
    a0, a1 = _tracklet(1, range(1, 11), 0), _tracklet(1, range(11, 21), 0)
    b0, b1 = _tracklet(2, range(11, 21), 200), _tracklet(2, range(21, 31), 200)
    c0 = _tracklet(3, range(40, 51), 0)
    people = rng.standard_normal((3, 16))
    tracklets = [a0, a1, b0, b1, c0]
    who = [0, 0, 1, 1, 2]
    vectors = [_vectors(people[w], len(t.crops), rng) for w, t in zip(who, tracklets, strict=True)]
    pairs = mine_pairs(tracklets, vectors)
    assert pairs.select(~pairs.same).first.tolist() == [1] and pairs.select(~pairs.same).second.tolist() == [2]
    replay = replay_impostors(tracklets, pairs)
    # in order of their ends: a0, a1/b0 (frame 20, a1 first by track id), b1, c0
    assert replay.candidates.tolist() == [0, 0, 1, 1, 2]
    # b0 meets track 1 through its best of a0, a1; b1 through the best of a0, a1 again; c0 knows no one different
    assert replay.query.tolist() == [2, 3]
    sim = pairs.vectors @ pairs.vectors.T
    for q, o, best in zip(replay.query, replay.other, replay.best, strict=True):
        assert o in (0, 1) and best == pytest.approx(max(sim[q, 0], sim[q, 1]))
    with pytest.raises(ValueError, match="tracklets"):
        replay_impostors(tracklets[:2], pairs)


def test_threshold_from_negatives_meets_the_target_on_fresh_impostors() -> None:
    # impostor cosines ~ N(0.2, 0.1), genuine ~ N(0.8, 0.05); a gallery of 30 profiles: the chosen threshold,
    # replayed on fresh impostors, passes about the target share of best-of-30 decisions, not many more
    rng = np.random.default_rng(4)
    n_pos, n_neg = 200, 3000
    similarity = np.r_[rng.normal(0.8, 0.05, n_pos), rng.normal(0.2, 0.1, n_neg)]
    pairs = MinedPairs(
        vectors=np.zeros((1, 1), np.float32),
        first=np.zeros(n_pos + n_neg, np.intp),
        second=np.zeros(n_pos + n_neg, np.intp),
        similarity=similarity,
        same=np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)],
        source=np.array(["within-tracklet"] * n_pos + ["same-frame"] * n_neg),
        time_gap_s=np.zeros(n_pos + n_neg),
    )
    impostors = ImpostorReplay(
        best=rng.normal(0.2, 0.1, n_neg),
        query=np.zeros(n_neg, np.intp),
        other=np.zeros(n_neg, np.intp),
        candidates=np.full(100, 30),
    )
    chosen = label_free_calibration(pairs, impostors, target=0.05)
    best_impostor = rng.normal(0.2, 0.1, (20_000, 30)).max(axis=1)
    observed = float(np.mean(best_impostor >= chosen.similarity_threshold))
    # the exponential fitted to the top 1 % (30 impostors) is about a normal's tail this deep, so the rate lands
    # either side of the target by the scale's noise (0.026-0.080 over seeds 0-4): within 2x, not many more
    assert observed <= 2 * 0.05
    assert observed >= 0.005  # and not so far below that it accepts nothing
    assert chosen.calibrator.predict_proba([chosen.similarity_threshold])[0] == pytest.approx(chosen.threshold)
    with pytest.raises(ValueError, match="target"):
        label_free_calibration(pairs, impostors, target=0.0)


def test_refuses_what_it_cannot_use() -> None:
    t = _tracklet(1, range(1, 11), 0)
    with pytest.raises(ValueError, match="crop_vectors"):
        mine_pairs([t], [np.zeros((3, 8))])
    with pytest.raises(ValueError, match="segments"):
        mine_pairs([t], [np.ones((10, 8))], segments=1)
    pairs = mine_pairs([t], [np.ones((10, 8))])
    none = ImpostorReplay(np.zeros(0), np.zeros(0, np.intp), np.zeros(0, np.intp), np.array([0]))
    with pytest.raises(ValueError, match="2 positives and 2 negatives"):
        label_free_calibration(pairs, none, target=0.02)
