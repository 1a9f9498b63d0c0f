"""One site's views -> global tracks (`track_site`), on SYNTHETIC walkers seen by three cameras (honestly labelled)
and on the first frames of WILDTRACK: one id per person across views, never one id on two boxes of one view in a
frame, a silent camera does not break the others, unusual input is warned about."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trackid.eval.ground import ground_metrics
from trackid.multiview import GroundCamera
from trackid.multiview.association import ViewAgreement, associate_views
from trackid.multiview.site_tracking import METHODS, GlobalTracks, SiteView, track_site
from trackid.multiview.world_tracking import TrackletTrust
from trackid.sources.motchallenge import MotRows, read_mot_file

FPS = 10.0


def _camera(name: str, angle: float, shift: tuple[float, float]) -> GroundCamera:
    """A view looking down at the plane: pixel = R (ground - shift) * 60 + (640, 360), so 60 px per metre."""
    c, s = np.cos(angle), np.sin(angle)
    to_image = np.array([[60 * c, -60 * s, 640.0], [60 * s, 60 * c, 360.0], [0.0, 0.0, 1.0]]) @ np.array(
        [[1.0, 0.0, -shift[0]], [0.0, 1.0, -shift[1]], [0.0, 0.0, 1.0]]
    )
    return GroundCamera(name, np.linalg.inv(to_image), image_size=(1280, 720))


def _walkers(frames: int) -> np.ndarray:
    """(frames, people, 2) ground positions of four people walking straight lines, two of them crossing."""
    t = np.arange(frames)[:, None] / FPS
    starts = np.array([[-4.0, -2.0], [4.0, -2.0], [-4.0, 2.5], [0.0, -4.0]])
    velocity = np.array([[0.8, 0.3], [-0.8, 0.3], [0.6, -0.1], [0.05, 0.7]])
    return starts[None] + velocity[None] * t[..., None]


def _site(
    frames: int = 80, silent: tuple[str, range] | None = None, seed: int = 0
) -> tuple[list[SiteView], np.ndarray]:
    rng = np.random.default_rng(seed)
    people = _walkers(frames)
    cameras = [_camera("cam-a", 0.0, (0, 0)), _camera("cam-b", 1.2, (0.5, 0)), _camera("cam-c", -2.0, (0, 0.5))]
    views = []
    for camera in cameras:
        rows = []
        for f in range(frames):
            if silent and silent[0] == camera.name and f in silent[1]:
                continue
            feet = camera.image(people[f] + rng.normal(0, 0.05, people[f].shape))
            seen = rng.random(len(feet)) > 0.1
            for x, y in feet[seen]:
                rows.append([f + 1, x - 20, y - 100, 40, 100, rng.uniform(0.6, 1.0)])
        a = np.array(rows)
        views.append(SiteView(camera, MotRows(a[:, 0].astype(np.int64), np.full(len(a), -1), a[:, 1:5], a[:, 5])))
    truth = np.array([[f + 1, p, *people[f, p]] for f in range(frames) for p in range(people.shape[1])])
    return views, truth


def _one_id_per_view_and_frame(result: GlobalTracks) -> None:
    for name, rows in result.views.items():
        pairs = rows[:, :2]
        assert len(np.unique(pairs, axis=0)) == len(pairs), f"{name}: a global id holds two boxes in one frame"


@pytest.mark.parametrize("method", METHODS)
def test_each_walker_keeps_one_id_across_views(method: str) -> None:
    views, truth = _site()
    result = track_site(views, fps=FPS, method=method)
    _one_id_per_view_and_frame(result)
    scores = ground_metrics(truth, result.ground, 0.5)
    assert scores["MODA"] > 85 and scores["IDF1"] > 85, scores
    assert not result.warnings
    for rows in result.views.values():  # each view's boxes carry the ids of the ground tracks
        assert set(np.unique(rows[:, 1])) <= set(result.ids.tolist())


def test_a_camera_silent_for_a_while_does_not_break_the_others() -> None:
    views, truth = _site(silent=("cam-b", range(20, 50)))
    result = track_site(views, fps=FPS)
    _one_id_per_view_and_frame(result)
    during = truth[(truth[:, 0] > 21) & (truth[:, 0] <= 50)]
    assert (
        ground_metrics(during, result.ground[(result.ground[:, 0] > 21) & (result.ground[:, 0] <= 50)], 0.5)["MODA"]
        > 70
    )
    assert ground_metrics(truth, result.ground, 0.5)["IDF1"] > 80


def test_unusual_input_is_warned_about_not_silently_empty(caplog: pytest.LogCaptureFixture) -> None:
    views, _ = _site(frames=10)
    empty = SiteView(
        views[0].camera, MotRows(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0))
    )
    strict = SiteView(views[1].camera, views[1].detections, min_score=2.0)
    result = track_site([empty, strict, views[2]], fps=FPS)
    joined = " | ".join(result.warnings)
    assert "'cam-a': no detections" in joined and "min_score 2 drops all" in joined
    assert "no global track was found" in joined and not len(result.ground)
    assert "no global track" in caplog.text
    with pytest.raises(ValueError, match="camera names must differ"):
        track_site([views[0], views[0]], fps=FPS)
    with pytest.raises(ValueError, match="method must be one of"):
        track_site(views, fps=FPS, method="greedy")


def test_wildtrack_first_frames_never_give_one_id_two_boxes_of_a_view(
    data: Path, wildtrack_cameras: list[GroundCamera]
) -> None:
    root = data / "multicam" / "wildtrack"
    views = []
    for camera in wildtrack_cameras:
        rows = read_mot_file(root / "det" / camera.name / "det" / "det.txt")
        keep = rows.frame <= 40
        views.append(
            SiteView(camera, MotRows(rows.frame[keep], rows.track_id[keep], rows.xywh[keep], rows.score[keep]))
        )
    truth = np.loadtxt(root / "ground_plane" / "gt.txt", delimiter=",")
    for method in METHODS:
        result = track_site(views, fps=2.0, method=method)
        _one_id_per_view_and_frame(result)
        assert ground_metrics(truth[truth[:, 0] <= 40], result.ground, 0.5)["MODA"] > 70


def test_tracklet_trust_is_worth_its_log_odds_once_measured() -> None:
    trust = TrackletTrust(min_samples=100)
    assert trust.bonus == 0.0 and not trust.continues  # cold start: tracklets count for nothing
    trust.observe([True] * 90 + [False] * 10)
    assert trust.rate == pytest.approx(0.9) and trust.bonus == pytest.approx(2 * np.log(9)) and trust.continues
    trust.observe([False] * 5000)  # the window forgets: a camera whose tracker got worse
    assert trust.bonus == 0.0 and not trust.continues


def test_view_agreement_measures_how_far_views_put_one_person_apart() -> None:
    rng = np.random.default_rng(1)
    agreement = ViewAgreement(start=1.0, min_samples=50)
    assert agreement.sigma == 1.0
    spread = 0.4
    for _ in range(40):
        people = rng.uniform(-20, 20, (6, 2))
        views = np.repeat(np.arange(3), len(people))
        xy = np.tile(people, (3, 1)) + rng.normal(0, spread, (3 * len(people), 2))
        cov = np.repeat((0.3**2 * np.eye(2))[None], len(xy), axis=0)
        agreement.observe(associate_views(views, xy, cov).group, xy)
    assert agreement.sigma == pytest.approx(agreement.share * spread, rel=0.15)


def test_a_ground_unit_that_makes_people_crawl_or_fly_is_warned_about() -> None:
    views, _ = _site(frames=40)
    assert not track_site(views, fps=FPS).warnings  # ~0.85 m/s
    crawling = track_site(views, fps=FPS, unit_per_metre=100.0)  # as if the plane were in centimetres
    assert any("is unit_per_metre (100 ground units a metre)" in w for w in crawling.warnings)
    views, _ = _site(frames=300)
    flying = track_site(views, fps=FPS * 20)  # frames numbered at 10 fps, declared 200
    assert any("people move a median" in w and "fps (200)" in w for w in flying.warnings)
