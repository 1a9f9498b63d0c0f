"""`Detections` and box maths: the currency every stage relies on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from trackid.geometry import box_area, iou_matrix, xywh_to_xyxy, xyxy_to_xywh
from trackid.types import NO_TRACK, Detections


@pytest.fixture
def dets() -> Detections:
    return Detections.from_arrays(
        [[0, 0, 10, 10], [5, 5, 15, 25], [20, 0, 30, 5]],
        [0.9, 0.5, 0.1],
        [0, 1, 0],
        embedding=np.arange(6, dtype=np.float32).reshape(3, 2),
        track_id=[7, 8, 9],
    )


def test_from_arrays_fills_defined_empty_values() -> None:
    d = Detections.from_arrays([[1, 2, 3, 4]])
    assert d.score.tolist() == [1.0]
    assert d.class_id.dtype == np.int64 and d.class_id.tolist() == [0]
    assert d.embedding.shape == (1, 0)
    assert d.quality.tolist() == [1.0]
    assert d.track_id.tolist() == [NO_TRACK]


def test_empty_has_defined_shapes() -> None:
    e = Detections.empty(embedding_dim=5)
    assert len(e) == 0
    assert e.xyxy.shape == (0, 4)
    assert e.embedding.shape == (0, 5)
    assert e.xywh.shape == (0, 4)
    assert len(e[np.zeros(0, bool)]) == 0


def test_slicing_by_mask_int_slice_and_index_array(dets: Detections) -> None:
    by_mask = dets[dets.score > 0.3]
    assert by_mask.track_id.tolist() == [7, 8]
    assert by_mask.embedding.tolist() == [[0, 1], [2, 3]]

    by_int = dets[1]
    assert isinstance(by_int, Detections) and len(by_int) == 1
    assert by_int.xyxy.tolist() == [[5, 5, 15, 25]]
    assert dets[-1].track_id.tolist() == [9]
    assert dets[np.int64(2)].score.tolist() == [0.1]

    assert dets[1:].class_id.tolist() == [1, 0]
    assert dets[np.array([2, 0])].track_id.tolist() == [9, 7]


def test_merge_concatenates_every_field(dets: Detections) -> None:
    merged = Detections.merge([dets[:1], dets[2:], dets[1:2]])
    assert merged.track_id.tolist() == [7, 9, 8]
    assert merged.embedding.tolist() == [[0, 1], [4, 5], [2, 3]]


def test_merge_of_nothing_is_empty() -> None:
    assert len(Detections.merge([])) == 0


def test_empty_frame_from_arrays_has_defined_shapes() -> None:
    e = Detections.from_arrays(np.zeros((0, 4)), np.zeros(0))
    assert e.xyxy.shape == (0, 4) and e.embedding.shape == (0, 0) and e.track_id.shape == (0,)
    assert len(Detections.merge([e, e])) == 0


def test_merge_rejects_different_embedding_widths(dets: Detections) -> None:
    with pytest.raises(ValueError, match="embedding widths"):
        Detections.merge([dets, Detections.from_arrays([[0, 0, 1, 1]])])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"xyxy": [[0, 0, 1, 1]], "score": [0.5, 0.6]}, "score has 2 rows"),
        ({"xyxy": [[0, 0, 1, np.nan]]}, "NaN"),
        ({"xyxy": [[5, 0, 1, 1]]}, "x2 < x1"),
        ({"xyxy": [[0, 0, 1, 1]], "track_id": [1, 2]}, "track_id has 2 rows"),
    ],
)
def test_validation_names_the_problem(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Detections.from_arrays(**kwargs)


def test_with_track_ids(dets: Detections) -> None:
    assert dets.with_track_ids([1, 2, 3]).track_id.tolist() == [1, 2, 3]
    assert dets.track_id.tolist() == [7, 8, 9]  # frozen: the original is unchanged
    with pytest.raises(ValueError, match="track_id has 2 rows"):
        dets.with_track_ids([1, 2])


def test_xywh_round_trip(dets: Detections) -> None:
    assert dets.xywh.tolist() == [[0, 0, 10, 10], [5, 5, 10, 20], [20, 0, 10, 5]]
    assert np.array_equal(xywh_to_xyxy(dets.xywh), dets.xyxy)
    assert np.array_equal(xyxy_to_xywh(dets.xyxy), dets.xywh)


def test_iou_against_hand_computed_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]], float)
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 5]], float)
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 4)
    # 5x5 overlap of two 10x10 boxes: 25 / (100 + 100 - 25)
    assert iou[0, 0] == pytest.approx(25 / 175)
    assert iou[0, 1] == pytest.approx(1.0)
    assert iou[0, 2] == 0.0
    assert iou[0, 3] == pytest.approx(0.5)
    assert iou[1, 1] == pytest.approx(4 / 100)
    assert np.allclose(iou_matrix(b, a), iou.T)


def test_iou_of_degenerate_boxes_is_zero_not_nan() -> None:
    point = np.array([[3, 3, 3, 3], [0, 0, 0, 10]], float)
    boxes = np.array([[0, 0, 10, 10], [3, 3, 3, 3]], float)
    iou = iou_matrix(point, boxes)
    assert np.isfinite(iou).all()
    assert (iou == 0).all()
    assert box_area(point).tolist() == [0, 0]


def test_iou_with_empty_inputs_has_empty_shape() -> None:
    assert iou_matrix(np.zeros((0, 4)), np.ones((3, 4))).shape == (0, 3)
    assert iou_matrix(np.ones((2, 4)), np.zeros((0, 4))).shape == (2, 0)


def test_supervision_round_trip(dets: Detections) -> None:
    pytest.importorskip("supervision")
    back = Detections.from_supervision(dets.to_supervision())
    assert np.allclose(back.xyxy, dets.xyxy)
    assert np.allclose(back.score, dets.score)
    assert back.class_id.tolist() == dets.class_id.tolist()
    assert back.track_id.tolist() == dets.track_id.tolist()
    assert np.array_equal(back.embedding, dets.embedding)
