"""Cleanup's identity-switch test, the head-pose estimate, and the episode settings' precedence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trackid.config import load_config
from trackid.pipelines.episode.cleanup import find_jump, find_switches, jump_p_value
from trackid.pipelines.episode.face_pose import NOSE_DEPTH, pose_angles
from trackid.pipelines.episode.identities import EpisodeTracks

RNG = np.random.default_rng(7)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _faces(centre: np.ndarray, n: int, noise: float = 0.35) -> np.ndarray:
    return _unit(centre + noise * RNG.standard_normal((n, len(centre))) / np.sqrt(len(centre)))


def _tracks(faces: list[np.ndarray]) -> EpisodeTracks:
    pooled = np.stack([_unit(f.sum(axis=0)) for f in faces])
    ids = list(range(1, len(faces) + 1))
    return EpisodeTracks(
        ids,
        pooled,
        faces,
        [np.arange(len(f)) * 10 + 1 for f in faces],
        {t: [] for t in ids},
        {t: 0 for t in ids},
        "dlib",
        0.1,
    )


def test_a_track_that_changes_person_is_split_where_it_changes() -> None:
    x, y = _unit(RNG.standard_normal(64)), _unit(RNG.standard_normal(64))
    switched = np.concatenate([_faces(x, 7), _faces(y, 5)])
    tracks = _tracks([switched, _faces(x, 10), _faces(y, 10)])
    identities = [{"identity_id": 1, "track_ids": [1, 2]}, {"identity_id": 2, "track_ids": [3]}]
    tested, found = find_switches(tracks, identities, threshold=0.3, min_faces=3)
    assert tested == 3 and set(found) == {1}
    k, jump, p_value = found[1]
    assert k == 7 and jump > 0.3 and p_value < 0.05


def test_one_persons_slow_change_of_look_is_not_a_switch() -> None:
    x, drift = _unit(RNG.standard_normal(64)), _unit(RNG.standard_normal(64))
    slow = _unit(np.stack([x + 0.6 * t * drift for t in np.linspace(0, 1, 12)]))  # pose or light changing
    tracks = _tracks([slow, _faces(x, 10)])
    identities = [{"identity_id": 1, "track_ids": [1, 2]}]
    k, jump = find_jump(slow, 3)
    assert k >= 0 and jump_p_value(slow, 3, jump) < 0.05  # ordered, so the permutation test alone would flag it
    assert find_switches(tracks, identities, threshold=0.1, min_faces=3)[1] == {}  # both halves are still person 1


def test_a_track_too_short_to_halve_is_not_tested() -> None:
    assert find_jump(_faces(_unit(RNG.standard_normal(16)), 5), 3) == (-1, 0.0)


def test_pose_follows_the_nose() -> None:
    frontal = np.array([[40.0, 40], [30, 40], [70, 40], [60, 40], [50, 70]])  # eye corners, nose base
    turned = frontal.copy()
    turned[4, 0] += 0.3 * 30  # nose moved sideways by 0.3 of the 30 px eye-centre distance
    tilted = frontal.copy()
    tilted[4, 1] += 6
    yaw, pitch = pose_angles(np.stack([frontal, frontal, turned, tilted]))
    assert yaw[:2] == pytest.approx([0, 0], abs=1e-9)
    assert yaw[2] == pytest.approx(np.degrees(np.arctan(0.3 / NOSE_DEPTH)))
    assert pitch[0] == pytest.approx(0.0, abs=1e-9) and pitch[3] > 20  # relative to the median (level) face


def test_episode_settings_follow_cli_then_environment_then_profile_then_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("episode:\n  frame_stride: 4\n  max_yaw_deg: 30\n")
    assert load_config(environ={})[0].episode.frame_stride == 2  # the default (balanced) profile
    assert load_config(path, environ={})[0].episode.frame_stride == 4  # a file beats the default profile
    config, _ = load_config(path, "fast_cpu", environ={})
    assert config.episode.frame_stride == 3 and config.episode.max_yaw_deg == 30  # chosen profile over the file
    env = {"TRACKID_EPISODE__FRAME_STRIDE": "5"}
    assert load_config(path, "fast_cpu", environ=env)[0].episode.frame_stride == 5  # environment over profile
    config, _ = load_config(path, "fast_cpu", ["episode.frame_stride=7"], environ=env)
    assert config.episode.frame_stride == 7  # command line over everything
