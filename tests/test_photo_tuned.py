"""`tuned.json`: what `photos tune` chose, saved and loaded, and the camera names in it across the change of how
cameras are named (issue #15, item 1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trackid.config import EmbedderConfig
from trackid.embed.centring import CameraCentring
from trackid.identity.calibration import MatchCalibrator
from trackid.pipelines.photos import Tuned


def _tuned(cameras: list[str]) -> Tuned:
    rng = np.random.default_rng(0)
    calibrator = MatchCalibrator().fit(rng.uniform(size=40), np.arange(40) % 2 == 0)
    centring = CameraCentring().fit(rng.normal(size=(2 * len(cameras), 8)), np.repeat(cameras, 2))
    return Tuned(EmbedderConfig(name="colour"), calibrator, 0.5, 0.02, centring=centring)


def _legacy(tuned: Tuned, folder: Path) -> Path:
    """The file as written before camera names were relative: no `camera_keys`."""
    path = tuned.save(folder)
    data = json.loads(path.read_text())
    del data["camera_keys"]
    path.write_text(json.dumps(data))
    return path


def test_camera_names_from_before_relative_names_are_mapped_and_keep_their_vector_space(tmp_path: Path) -> None:
    """`tune tunephotos/` used to name cameras "tunephotos/cam1"; they are now "cam1". The means are renamed and
    the model version stays the one the store's vectors were written under."""
    old = _tuned(["tunephotos/cam1", "tunephotos/cam2", "Bushnell Core #B-17", "gate"])
    assert old.centring is not None
    loaded = Tuned.load(_legacy(old, tmp_path))
    assert loaded.centring is not None
    assert set(loaded.centring.means_) == {"cam1", "cam2", "Bushnell Core #B-17", "gate"}
    np.testing.assert_array_equal(loaded.centring.means_["cam1"], old.centring.means_["tunephotos/cam1"])
    assert loaded.space == old.centring.digest != loaded.centring.digest
    again = Tuned.load(loaded.save(tmp_path / "resaved"))  # saved in the new layout, it keeps the space's name
    assert again.space == old.centring.digest and set(again.centring.means_) == set(loaded.centring.means_)  # type: ignore[union-attr]


def test_legacy_camera_names_that_would_become_one_are_refused(tmp_path: Path) -> None:
    path = _legacy(_tuned(["north/cam1", "south/cam1"]), tmp_path)
    with pytest.raises(ValueError, match=r"tuned.json: cameras 'north/cam1' and 'south/cam1' were tuned .* re-run"):
        Tuned.load(path)


def test_new_files_keep_their_names_and_their_own_vector_space(tmp_path: Path) -> None:
    tuned = _tuned(["site-b/cam3", "cam1"])
    loaded = Tuned.load(tuned.save(tmp_path))
    assert loaded.centring is not None and set(loaded.centring.means_) == {"site-b/cam3", "cam1"}
    assert loaded.space is None and loaded.centring.digest == tuned.centring.digest  # type: ignore[union-attr]
