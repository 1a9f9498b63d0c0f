"""Ground-plane cameras on the real calibrations: WILDTRACK (OpenCV XML, cm) and EPFL Terrace (homographies)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trackid.multiview import CalibrationError, GroundCamera


def _rows(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2)


def test_wildtrack_foot_points_land_on_the_ground_truth_and_round_trip(
    data: Path, wildtrack_cameras: list[GroundCamera]
) -> None:
    ground = _rows(data / "multicam" / "wildtrack" / "ground_plane" / "gt.txt")
    truth = {(int(f), int(i)): (x, y) for f, i, x, y in ground}
    errors = []
    for view in range(7):
        camera = wildtrack_cameras[view]
        gt = _rows(
            data / "multicam" / "wildtrack" / "gt" / "WILDTRACK-train" / f"WILDTRACK-C{view + 1}" / "gt" / "gt.txt"
        )
        gt = gt[(gt[:, 0] <= 20) & (gt[:, 8] >= 0.99)]  # whole boxes of the first 20 frames
        boxes = np.column_stack([gt[:, 2], gt[:, 3], gt[:, 2] + gt[:, 4], gt[:, 3] + gt[:, 5]])
        found = camera.foot_points(boxes)
        assert found.valid.all()
        want = np.array([truth[(int(f), int(i))] for f, i in gt[:, :2]])
        errors.append(np.linalg.norm(found.xy - want, axis=1))
        np.testing.assert_allclose(
            camera.image(found.xy), np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]]), atol=1e-6
        )
        # the same box higher in the image stands farther away, where one pixel covers more ground
        near, far = camera.foot_points([[940, 880, 980, 1000], [940, 300, 980, 420]]).covariance
        assert np.trace(far) > 2 * np.trace(near)
    median = float(np.median(np.concatenate(errors)))
    assert median < 0.35, f"median foot-point error {median:.2f} m"  # the probe: 0.28 m


def test_a_box_cut_by_the_bottom_edge_is_less_certain(wildtrack_cameras: list[GroundCamera]) -> None:
    camera = wildtrack_cameras[0]
    whole, cut = camera.foot_points([[900, 700, 960, 1000], [900, 780, 960, 1080]]).covariance
    assert np.trace(cut) > 4 * np.trace(whole)


def test_epfl_homographies_map_boxes_to_its_ground_truth(data: Path) -> None:
    root = data / "multicam" / "epfl_terrace"
    ground = _rows(root / "ground_plane" / "gt.txt")
    truth = {(int(f), int(i)): (x, y) for f, i, x, y in ground}
    for view in range(4):
        name = f"terrace1-c{view}"
        camera = GroundCamera.from_homography(name, root / "cameras" / name / "Homography.txt", image_size=(360, 288))
        gt = _rows(root / "gt" / "EPFLTERRACE-train" / name / "gt" / "gt.txt")
        gt = gt[(gt[:, 8] >= 0.99) & (gt[:, 3] + gt[:, 5] < 287)][:500]
        boxes = np.column_stack([gt[:, 2], gt[:, 3], gt[:, 2] + gt[:, 4], gt[:, 3] + gt[:, 5]])
        found = camera.foot_points(boxes)
        keep = [(int(f), int(i)) in truth for f, i in gt[:, :2]]
        want = np.array([truth[(int(f), int(i))] for f, i in gt[keep, :2]])
        error = np.median(np.linalg.norm(found.xy[keep] - want, axis=1))
        assert error < 30, f"{name}: median {error:.1f} units (views disagree by ~25, about 0.5 m)"


def test_bad_calibrations_name_the_camera_and_the_file(data: Path, tmp_path: Path) -> None:
    root = data / "multicam" / "wildtrack" / "cameras"
    with pytest.raises(CalibrationError, match=r"camera 'C9': calibration file not found: .*nope\.xml"):
        GroundCamera.from_opencv("C9", tmp_path / "nope.xml", root / "extrinsic" / "extr_CVLab1.xml")
    broken = tmp_path / "broken.xml"
    broken.write_text("<opencv_storage><rvec>1 2</rvec>")
    with pytest.raises(CalibrationError, match=r"camera 'C1'.*not readable OpenCV XML"):
        GroundCamera.from_opencv("C1", root / "intrinsic_zero" / "intr_CVLab1.xml", broken)
    short = tmp_path / "short.xml"
    short.write_text("<opencv_storage><rvec>1 2</rvec><tvec>1 2 3</tvec></opencv_storage>")
    with pytest.raises(CalibrationError, match=r"<rvec> .* must hold 3 finite numbers, got 2"):
        GroundCamera.from_opencv("C1", root / "intrinsic_zero" / "intr_CVLab1.xml", short)
    with pytest.raises(CalibrationError, match=r"camera 'C1'.*non-zero distortion"):
        GroundCamera.from_opencv(
            "C1", root / "intrinsic_original" / "intr_CVLab1.xml", root / "extrinsic" / "extr_CVLab1.xml"
        )
    flat = tmp_path / "H.txt"
    flat.write_text("1 0 0\n0 1 0\n0 0")
    with pytest.raises(CalibrationError, match=r"camera 'c0'.*holds 8 numbers"):
        GroundCamera.from_homography("c0", flat)
    with pytest.raises(CalibrationError, match="singular"):
        GroundCamera("c0", np.zeros((3, 3)))


def test_points_beyond_the_horizon_are_not_ground(wildtrack_cameras: list[GroundCamera]) -> None:
    camera = wildtrack_cameras[0]
    xy, valid = camera.ground([[960, 1079], [960, -5000]])  # the bottom centre sees the ground; far above, sky
    assert valid[0] and not valid[1] and np.isnan(xy[1]).all()


def test_an_opencv_camera_knows_where_it_stands_and_sees_its_own_ground(
    data: Path, wildtrack_cameras: list[GroundCamera]
) -> None:
    for view in range(7):
        camera = wildtrack_cameras[view]
        assert camera.position is not None
        x, y = camera.position
        assert -20 < x < 25 and -20 < y < 40  # around WILDTRACK's 12 x 36 m square (metres)
        # the image's bottom centre sees the ground in front of the camera, nearer than the far edge
        near = camera.ground([[960.0, 1079.0]])[0][0]
        assert np.hypot(*(near - camera.position)) < 40
    epfl = data / "multicam" / "epfl_terrace" / "cameras" / "terrace1-c0" / "Homography.txt"
    assert GroundCamera.from_homography("c0", epfl).position is None  # a homography alone does not say
