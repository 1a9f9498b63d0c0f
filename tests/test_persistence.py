"""The persistence filter's data: tracks collected from a tracker, labelled by ground truth, and their features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trackid.multiview.persistence import (
    FRAME_FEATURES,
    SUMMARY_FEATURES,
    BoostedPersistence,
    LengthRule,
    TrackRecord,
    collect_tracks,
    frame_features,
    label_tracks,
    summary_features,
)
from trackid.track import make_tracker
from trackid.types import Detections


def _track(
    frames: list[int] | np.ndarray,
    boxes: np.ndarray,
    score: float = 0.9,
    track_id: int = 1,
    frame_rate: float = 10.0,
    image_size: tuple[int, int] = (640, 480),
) -> TrackRecord:
    n = len(frames)
    return TrackRecord(
        "seq",
        track_id,
        np.asarray(frames),
        np.asarray(boxes, float),
        np.full(n, score),
        np.full(n, 0.5),
        np.zeros(n),
        np.ones(n),
        image_size,
        frame_rate,
    )


def _separable(
    rng: np.random.Generator, count: int, long: tuple[int, int], short: tuple[int, int]
) -> tuple[list[TrackRecord], list[int]]:
    """`count` tracks, every other one persistent: long and steady, or short and jittery."""
    tracks, labels = [], []
    for k in range(count):
        persistent = k % 2 == 0
        n = int(rng.integers(*long)) if persistent else int(rng.integers(*short))
        jitter = 1.0 if persistent else 25.0
        boxes = np.array([[100.0 + 2 * i, 100, 140 + 2 * i, 200] for i in range(n)]) + rng.normal(0, jitter, (n, 4))
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 5)
        tracks.append(_track(list(range(1, n + 1)), boxes, track_id=k))
        labels.append(int(persistent))
    return tracks, labels


def test_collect_tracks_keeps_every_reported_box_of_each_track() -> None:
    frames = [
        Detections.from_arrays(
            np.array([[10.0 + 3 * k, 10, 50 + 3 * k, 110], [300, 200, 340, 300]]), np.array([0.9, 0.8])
        )
        for k in range(12)
    ]
    tracks, outputs = collect_tracks("walk", frames, make_tracker("trackid", frame_rate=10), (640, 480), 10.0)
    assert len(outputs) == 12 and len(tracks) == 2
    for track in tracks:
        assert np.all(np.diff(track.frames) > 0) and len(track.xyxy) == len(track)
        assert ((track.score_rank >= 0) & (track.score_rank <= 1)).all()
    reported = sum(len(out) for _, out in outputs)
    assert reported == sum(len(t) for t in tracks)


def test_labels_follow_the_share_of_frames_matched_to_a_person() -> None:
    box = np.array([[100.0, 100, 140, 200]])
    person = {f: box for f in range(1, 11)}
    real = _track(list(range(1, 11)), np.repeat(box, 10, axis=0))
    drifting = _track(
        list(range(1, 11)), np.repeat(box, 10, axis=0) + np.array([[0, 0, 0, 0]] * 4 + [[200, 0, 200, 0]] * 6)
    )
    ghost = _track([3, 4, 5], np.repeat([[400.0, 100, 440, 200]], 3, axis=0))
    statue = _track([1, 2, 3], np.repeat([[500.0, 100, 540, 200]], 3, axis=0))
    distractors = {f: np.array([[500.0, 100, 540, 200]]) for f in range(1, 4)}
    labels = label_tracks([real, drifting, ghost, statue], person, distractors)
    assert labels.tolist() == [1, 0, 0, -1]


def test_one_box_is_matched_to_one_person_only() -> None:
    box = np.array([[100.0, 100, 140, 200]])
    twins = [_track(list(range(1, 6)), np.repeat(box, 5, axis=0), track_id=k) for k in (1, 2)]
    labels = label_tracks(twins, {f: box for f in range(1, 6)})
    assert sorted(labels.tolist()) == [0, 1]  # two tracks on one person: one of them is a duplicate


def test_features_are_finite_and_do_not_depend_on_image_scale() -> None:
    boxes = np.array([[10.0 + 4 * k, 20 + k, 50 + 4 * k, 120 + k] for k in range(8)])
    small = _track(list(range(1, 9)), boxes)
    large = _track(list(range(1, 9)), boxes * 2, image_size=(1280, 960))
    assert frame_features(small).shape == (8, len(FRAME_FEATURES))
    assert np.isfinite(frame_features(small)).all()
    np.testing.assert_allclose(frame_features(small), frame_features(large), atol=1e-5)
    assert summary_features(small).shape == (len(SUMMARY_FEATURES),)
    assert frame_features(small.prefix(3)).tolist() == frame_features(small)[:3].tolist()  # causal


def test_filters_learn_a_separable_rule_and_refuse_bad_labels() -> None:
    tracks, labels = _separable(np.random.default_rng(0), 60, long=(15, 40), short=(2, 6))
    for model in (LengthRule(), BoostedPersistence()):
        model.fit(tracks[:40], labels[:40])
        assert (model.predict(tracks[40:]) == np.array(labels[40:])).mean() >= 0.9
        assert model.predict_proba(tracks[40:]).shape == (20, 2)
    with pytest.raises(ValueError, match="ignored"):
        LengthRule().fit(tracks[:3], [1, 0, -1])
    with pytest.raises(ValueError, match="one class"):
        BoostedPersistence().fit(tracks[:3], [1, 1, 1])


def test_the_transformer_learns_saves_and_explains(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="training the transformer needs the 'train' extra (torch)")
    from trackid.multiview.persistence.transformer import TransformerPersistence

    tracks, labels = _separable(np.random.default_rng(1), 120, long=(12, 40), short=(3, 8))
    model = TransformerPersistence(epochs=15).fit(tracks[:90], labels[:90])
    assert (model.predict(tracks[90:]) == np.array(labels[90:])).mean() >= 0.9
    saved = TransformerPersistence(model_path=model.save(tmp_path / "persistence.onnx"))
    np.testing.assert_allclose(saved.predict_proba(tracks[90:]), model.predict_proba(tracks[90:]), atol=1e-6)
    frames, weight = saved.frame_importance(tracks[0])
    assert len(frames) == len(weight) == min(len(tracks[0]), saved.max_frames)
    assert weight.min() >= 0 and weight.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["boosted", "transformer"])
def test_explanations_name_the_decision_and_its_frames(kind: str) -> None:
    from trackid.multiview.persistence.explain import explain, failure_summary
    from trackid.multiview.persistence.shipped import SHIPPED, load_filter

    model = load_filter(SHIPPED[kind])
    boxes = np.array([[100.0 + 2 * i, 100, 140 + 2 * i, 200] for i in range(12)])
    boxes[7] += [30, 0, 60, 0]  # one frame jumps
    track = _track(list(range(1, 13)), boxes)
    said = explain(model, track)
    assert said.sentence.startswith(f"Track 1 of seq: {'persistent' if said.persistent >= 0.5 else 'transient'}")
    assert "12 frames" in said.sentence and "rested most on frame" in said.sentence
    assert said.importance.sum() == pytest.approx(1.0) and len(said.frames) == 12
    summary = failure_summary([track, track], [0, 1], [1, 1])
    assert "1 transient tracks kept" in summary and "No persistent tracks dropped." in summary


def test_motion_features_mean_the_same_at_2_and_30_fps() -> None:
    from trackid.multiview.persistence import FRAME_FEATURES

    t30 = np.arange(0, 6, 1 / 30)
    walk = lambda t: np.column_stack([100 + 40 * t, 100 + 5 * t, 140 + 40 * t, 200 + 5 * t])  # noqa: E731
    fast = _track(np.arange(1, len(t30) + 1), walk(t30), frame_rate=30.0)
    t2 = np.arange(0, 6, 0.5)
    slow = _track(np.arange(1, len(t2) + 1), walk(t2), frame_rate=2.0)
    a, b = frame_features(fast)[-1], frame_features(slow)[-1]  # both at t = 5.5-5.97 s, long past the first lag
    for name in ("speed_x", "speed_y", "growth", "iou_lag", "cv_residual", "missed_s"):
        k = FRAME_FEATURES.index(name)
        assert a[k] == pytest.approx(b[k], abs=0.02), name


def _with_looks(track: TrackRecord, looks: np.ndarray) -> TrackRecord:
    from dataclasses import replace

    return replace(track, embedding=np.asarray(looks, np.float32))


def test_appearance_consistency_marks_a_change_of_look_and_says_where_none_was_seen() -> None:
    from trackid.multiview.persistence.features import appearance_consistency

    boxes = np.array([[100.0 + 2 * i, 100, 140 + 2 * i, 200] for i in range(8)])
    looks = np.tile([[1.0, 0.0, 0.0]], (8, 1))
    looks[5] = [0.0, 1.0, 0.0]  # another person's look in one frame
    looks[2] = 0.0  # a coasted frame: no vector
    change, seen = appearance_consistency(_with_looks(_track(list(range(1, 9)), boxes), looks))
    assert seen.tolist() == [1, 1, 0, 1, 1, 1, 1, 1]
    assert change[5] == pytest.approx(1.0) and change[[0, 1, 2, 3, 4]].max() == pytest.approx(0.0, abs=1e-6)
    assert 0 < change[6] < 0.3  # after the odd frame the mean look has moved a little
    plain = _track(list(range(1, 9)), boxes)
    assert [c.tolist() for c in appearance_consistency(plain)] == [[0.0] * 8, [0.0] * 8]  # no frames seen
    from trackid.multiview.persistence.features import frame_feature_names

    k = frame_feature_names(appearance=True).index("appearance_change")
    full = frame_features(_with_looks(plain, looks), appearance=True)
    assert full.shape == (8, len(FRAME_FEATURES) + 2) and frame_features(plain).shape == (8, len(FRAME_FEATURES))
    looked = frame_features(_with_looks(plain, looks).prefix(6), appearance=True)
    assert looked[:, k].tolist() == full[:6, k].tolist()  # causal


def test_collected_tracks_keep_their_detections_vectors() -> None:
    looks = np.eye(2, 4, dtype=np.float32)
    frames = [
        Detections.from_arrays(
            np.array([[10.0 + 3 * k, 10, 50 + 3 * k, 110], [300, 200, 340, 300]]), np.array([0.9, 0.8]), embedding=looks
        )
        for k in range(6)
    ]
    tracks, _ = collect_tracks("walk", frames, make_tracker("trackid", frame_rate=10), (640, 480), 10.0)
    assert len(tracks) == 2 and all(t.embedding.shape == (6, 4) for t in tracks)
    assert sorted(int(np.argmax(t.embedding[0])) for t in tracks) == [0, 1]
    assert tracks[0].prefix(3).embedding.shape == (3, 4)


def test_boosted_filter_saves_its_training_set_and_refits_the_same(tmp_path: Path) -> None:
    tracks, labels = _separable(np.random.default_rng(3), 60, long=(15, 40), short=(2, 6))
    model = BoostedPersistence(max_iter=50).fit(tracks[:40], labels[:40])
    loaded = BoostedPersistence(model_path=model.save(tmp_path / "f.npz"))
    assert loaded.max_iter == 50 and not loaded.appearance
    looking = BoostedPersistence(max_iter=20, appearance=True).fit(tracks[:40], labels[:40])
    assert BoostedPersistence(model_path=looking.save(tmp_path / "a.npz")).appearance
    np.testing.assert_array_equal(loaded.predict_proba(tracks[40:]), model.predict_proba(tracks[40:]))
    np.savez(
        tmp_path / "other.npz",
        features=np.zeros((2, 3)),
        labels=np.array([0, 1]),
        feature_names=np.array(["a", "b", "c"]),
        settings=np.array("{}"),
    )
    with pytest.raises(ValueError, match="rebuild it"):
        BoostedPersistence(model_path=tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"junk\.npz: not a saved BoostedPersistence"):
        BoostedPersistence(model_path=tmp_path / "junk.npz")


def test_deletion_importance_names_the_frame_that_moves_the_score() -> None:
    from trackid.multiview.persistence.models import deletion_importance

    class LowestScore:  # p(persistent) is the track's lowest score: only the frame holding it matters
        importance_method = "test"

        def predict_proba(self, tracks: list[TrackRecord]) -> np.ndarray:
            p = np.array([t.score.min() for t in tracks])
            return np.stack([1 - p, p], axis=1)

    boxes = np.array([[100.0 + 2 * i, 100, 140 + 2 * i, 200] for i in range(10)])
    track = _track(list(range(11, 21)), boxes)
    from dataclasses import replace

    track = replace(track, score=np.where(np.arange(10) == 6, 0.2, 0.9))
    frames, weight = deletion_importance(LowestScore(), track)  # type: ignore[arg-type]
    assert frames.tolist() == list(range(11, 21)) and weight.sum() == pytest.approx(1.0)
    assert int(frames[np.argmax(weight)]) == 17 and weight.max() == pytest.approx(1.0)
    long = replace(_track(list(range(1, 101)), np.tile(boxes[:1], (100, 1))), score=np.full(100, 0.9))
    frames, weight = deletion_importance(LowestScore(), long, max_frames=32)  # type: ignore[arg-type]
    assert len(frames) == 32 and np.allclose(weight, 1 / 32)  # nothing moves it: equal shares, not NaN


def test_the_shipped_filters_match_this_trackids_features() -> None:
    from trackid.multiview.persistence.shipped import DEFAULT, SHIPPED, load_filter

    boxes = np.array([[100.0 + 2 * i, 100, 140 + 2 * i, 200] for i in range(30)])
    track = _track(list(range(1, 31)), boxes)
    for kind, path in SHIPPED.items():
        p = load_filter(path).predict_proba([track, track.prefix(2)])
        assert p.shape == (2, 2) and np.isfinite(p).all(), kind
    assert DEFAULT in SHIPPED
