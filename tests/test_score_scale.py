"""Score-scale independence: ranks and the self-calibration ignore monotone remaps of a detector's scores, and a
stream the tracker cannot use is reported, never silently empty."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import run_tracker
from trackid.cli import app
from trackid.sources.synthetic import SceneConfig, SyntheticScene, make_scene, write_detections
from trackid.track import make_tracker
from trackid.track.score_scale import ScoreCalibration, ScoreScale
from trackid.types import Detections

REMAPS = {
    "cubed": lambda s: s**3,
    "squeezed": lambda s: 0.3 + 0.6 * s,
    "logistic": lambda s: 1 / (1 + np.exp(-8 * (s - 0.75))),
    "margin": lambda s: 40 * np.log(s / (1 - s + 1e-9)),  # unbounded, like ACF's SVM margins
}


@pytest.fixture(scope="module")
def scene() -> SyntheticScene:
    return make_scene(SceneConfig(seed=3))


def _remapped(frames: list[Detections], fn: object) -> list[Detections]:
    return [replace(d, score=fn(d.score)) for d in frames]  # type: ignore[operator]


def test_ranks_are_shares_at_or_below_and_ignore_monotone_remaps() -> None:
    rng = np.random.default_rng(0)
    frames = [rng.uniform(0.05, 0.999, rng.integers(0, 12)) for _ in range(200)]
    for name, fn in REMAPS.items():
        plain, remapped = ScoreScale(window=500, refresh=0.1), ScoreScale(window=500, refresh=0.1)
        for scores in frames:
            plain.update(scores)
            remapped.update(fn(scores))
            np.testing.assert_array_equal(plain.transform(scores), remapped.transform(fn(scores)), err_msg=name)
    scale = ScoreScale()
    scale.update(np.array([0.2, 0.4, 0.4, 0.9]))
    np.testing.assert_allclose(scale.transform(np.array([0.1, 0.2, 0.4, 0.9, 5.0])), [0, 0.25, 0.75, 1, 1])
    assert scale.transform(np.array([np.nan]))[0] == -np.inf


def test_score_scale_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="window"):
        ScoreScale(window=0)
    with pytest.raises(ValueError, match="refresh"):
        ScoreScale(refresh=0)


def test_calibration_learns_a_monotone_map_that_ignores_remaps() -> None:
    rng = np.random.default_rng(1)
    scores = rng.uniform(0, 1, 3000)
    success = rng.uniform(0, 1, 3000) < scores  # the chance of success grows with the score
    plain, remapped = ScoreCalibration(window=5000, min_labels=50), ScoreCalibration(window=5000, min_labels=50)
    for chunk in np.array_split(np.arange(3000), 60):
        plain.observe(scores[chunk])
        plain.update(scores[chunk], success[chunk])
        remapped.observe(scores[chunk] ** 3)
        remapped.update(scores[chunk] ** 3, success[chunk])
    assert plain.calibrated
    probe = np.linspace(0.01, 0.99, 25)
    values = plain.transform(probe)
    assert np.all(np.diff(values) >= 0)
    assert values[0] < 0.2 and values[-1] > 0.8  # close to the true rate, which is the score itself
    np.testing.assert_array_equal(values, remapped.transform(probe**3))


@pytest.mark.parametrize("name", sorted(REMAPS))
def test_tracker_result_is_identical_under_a_monotone_remap(scene: SyntheticScene, name: str) -> None:
    frame_rate = scene.config.frame_rate
    plain = run_tracker(make_tracker("trackid", frame_rate), scene.detections)
    remapped = run_tracker(make_tracker("trackid", frame_rate), _remapped(scene.detections, REMAPS[name]))
    assert len(plain[0]) > 100
    for a, b in zip(plain, remapped, strict=True):
        np.testing.assert_array_equal(a, b)


def test_raw_thresholds_a_detector_never_reaches_are_reported(scene: SyntheticScene) -> None:
    """The failure this guards against: raw thresholds tuned on FRCNN against a detector that never reports above
    0.9 give no track at all. With raw scores that still happens, but it is said; ranks just work."""
    squeezed = _remapped(scene.detections, lambda s: 0.3 + 0.5 * s)
    raw = make_tracker("trackid", scene.config.frame_rate, score_scale="raw", new_track_score=0.97)
    frames, _, _ = run_tracker(raw, squeezed)
    assert len(frames) == 0
    assert any("none reached new_track_score 0.97" in w for w in raw.warnings), raw.warnings
    ranked = make_tracker("trackid", scene.config.frame_rate)
    assert len(run_tracker(ranked, squeezed)[0]) > 100
    assert ranked.warnings == []


def test_constant_and_missing_scores_are_reported(scene: SyntheticScene) -> None:
    constant = [replace(d, score=np.full(len(d), 0.5)) for d in scene.detections]
    tracker = make_tracker("trackid", scene.config.frame_rate)
    assert len(run_tracker(tracker, constant)[0]) > 100  # every box treated alike, but tracked
    assert any("every score is 0.5" in w for w in tracker.warnings), tracker.warnings
    holes = [replace(d, score=np.where(np.arange(len(d)) == 0, np.nan, d.score)) for d in scene.detections]
    tracker = make_tracker("trackid", scene.config.frame_rate)
    run_tracker(tracker, holes)
    assert any("not a number" in w for w in tracker.warnings), tracker.warnings


def test_cli_prints_and_records_stream_warnings(scene: SyntheticScene, tmp_path: Path) -> None:
    root = tmp_path / "MOT"
    name = scene.seqinfo.name
    det = write_detections(scene, root / name / "det" / "det.txt")
    rows = np.loadtxt(det, delimiter=",", ndmin=2)
    rows[:, 6] = 0.3 + 0.5 * rows[:, 6]  # a detector that never reports above 0.8
    np.savetxt(det, rows, delimiter=",", fmt="%.6g")
    ini = scene.seqinfo
    (root / name / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nframeRate={ini.frame_rate}\nseqLength={ini.length}\n"
        f"imWidth={ini.width}\nimHeight={ini.height}\n"
    )
    out = tmp_path / "res"
    result = CliRunner().invoke(
        app, ["track", "-d", str(root), "--out", str(out), "-p", "score_scale=raw", "-p", "new_track_score=0.97"]
    )
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "no track was started" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert any("no track was started" in w for w in manifest["warnings"])
