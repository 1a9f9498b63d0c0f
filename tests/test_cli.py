"""The `trackid` command line, through typer's runner: real files in, results and tables out, clean failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from trackid.cli import app, parse_params
from trackid.sources.motchallenge import read_mot_file

runner = CliRunner()
SEQS = ("TUD-Campus", "TUD-Stadtmitte")


def _mot15_paths(data: Path, seq: str) -> tuple[Path, Path]:
    return (
        data / "mot15" / "det_frcnn" / seq / "det" / "det.txt",
        data / "mot15" / "gt" / "MOT15-train" / seq / "seqinfo.ini",
    )


@pytest.fixture
def mot_folder(data: Path, tmp_path: Path) -> Path:
    """Two MOT15 sequences in MOTChallenge layout (`<seq>/det/det.txt` beside `<seq>/seqinfo.ini`)."""
    root = tmp_path / "MOT15"
    for seq in SEQS:
        det, ini = _mot15_paths(data, seq)
        (root / seq / "det").mkdir(parents=True)
        shutil.copy(det, root / seq / "det" / "det.txt")
        shutil.copy(ini, root / seq / "seqinfo.ini")
    return root


def _assert_clean_failure(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    output = result.output
    assert "Traceback" not in output
    error_lines = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, output
    for fragment in fragments:
        assert fragment in error_lines[0], output


def test_parse_params() -> None:
    parsed = parse_params(
        ["iou_gate=0.25", "min_hits=2", "reupdate=false", "assignment=greedy", "motion_noise=[1,2,3]"]
    )
    assert parsed == {
        "iou_gate": 0.25,
        "min_hits": 2,
        "reupdate": False,
        "assignment": "greedy",
        "motion_noise": [1, 2, 3],
    }
    assert parse_params(["reupdate=True"]) == {"reupdate": True}


def test_track_single_file(data: Path, tmp_path: Path) -> None:
    det, ini = _mot15_paths(data, "TUD-Campus")
    out = tmp_path / "res" / "TUD-Campus.txt"
    result = runner.invoke(app, ["track", "--detections", str(det), "--seqinfo", str(ini), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = read_mot_file(out)
    assert len(rows) > 100
    assert rows.frame.max() <= 71
    assert "TUD-Campus" in result.output and "frames/s" in result.output


def test_track_with_params_and_min_score_changes_the_result(data: Path, tmp_path: Path) -> None:
    det, ini = _mot15_paths(data, "TUD-Campus")
    base = ["track", "-d", str(det), "-s", str(ini)]
    assert runner.invoke(app, [*base, "-o", str(tmp_path / "a.txt")]).exit_code == 0
    result = runner.invoke(
        app,
        [
            *base,
            "-o",
            str(tmp_path / "b.txt"),
            "--param",
            "min_hits=1",
            "-p",
            "assignment=greedy",
            "--min-score",
            "0.99",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.txt").read_text() != (tmp_path / "b.txt").read_text()


def test_track_batch_folder_then_eval(mot_folder: Path, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = runner.invoke(app, ["track", "--detections", str(mot_folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.txt")) == [f"{seq}.txt" for seq in sorted(SEQS)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "track" and len(manifest["inputs"]) == 4

    json_out = tmp_path / "scores.json"
    args = ["eval", "--gt", str(data / "mot15" / "gt"), "--results", str(out), "--json", str(json_out)]
    result = runner.invoke(app, [*args, "--seq", "TUD-Campus", "--seq", "TUD-Stadtmitte"])
    assert result.exit_code == 0, result.output
    for column in ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN", "COMBINED", *SEQS):
        assert column in result.output
    scores = json.loads(json_out.read_text())
    assert scores["benchmark"] == "MOT15"
    assert set(scores["per_sequence"]) == set(SEQS)
    assert 30 < scores["combined"]["HOTA"] < 100


def test_track_batch_with_separate_seqinfo_folder(data: Path, tmp_path: Path) -> None:
    dets = tmp_path / "dets"
    for seq in SEQS:
        (dets / seq / "det").mkdir(parents=True)
        shutil.copy(_mot15_paths(data, seq)[0], dets / seq / "det" / "det.txt")
    out = tmp_path / "results"
    seqinfo = data / "mot15" / "gt" / "MOT15-train"
    result = runner.invoke(app, ["track", "-d", str(dets), "-s", str(seqinfo), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.txt"))) == 2

    missing = runner.invoke(app, ["track", "-d", str(dets), "-o", str(out)])  # seqinfo.ini not beside the dets
    _assert_clean_failure(missing, "seqinfo.ini not found", "--seqinfo")


def test_malformed_det_file_fails_cleanly_and_keeps_old_output(data: Path, tmp_path: Path) -> None:
    ini = _mot15_paths(data, "TUD-Campus")[1]
    bad = tmp_path / "det.txt"
    bad.write_text("1,-1,10,10,20,40,0.9\n\n2,-1,10,10,0,40,0.9\n")
    out = tmp_path / "out.txt"
    out.write_text("previous results\n")
    result = runner.invoke(app, ["track", "-d", str(bad), "-s", str(ini), "-o", str(out)])
    _assert_clean_failure(result, f"{bad}:3:", "width and height")
    assert out.read_text() == "previous results\n"


@pytest.mark.parametrize(
    ("param", "fragments"),
    [
        ("no_such_knob=1", ("no_such_knob", "has no parameter", "iou_gate")),
        ("iou_gate=2", ("iou_gate", "less than or equal to 1")),
        ("assignment=fastest", ("assignment",)),
        ("iou_gate", ("expected key=value",)),
    ],
)
def test_bad_param_fails_cleanly(data: Path, tmp_path: Path, param: str, fragments: tuple[str, ...]) -> None:
    det, ini = _mot15_paths(data, "TUD-Campus")
    result = runner.invoke(app, ["track", "-d", str(det), "-s", str(ini), "-o", str(tmp_path / "o.txt"), "-p", param])
    _assert_clean_failure(result, "--param", *fragments)
    assert not (tmp_path / "o.txt").exists()


def test_unknown_tracker_and_missing_inputs_fail_cleanly(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    _assert_clean_failure(runner.invoke(app, ["track", "-d", str(missing), "-o", "x.txt"]), str(missing), "not found")
    _assert_clean_failure(
        runner.invoke(app, ["track", "-d", str(missing), "-o", "x.txt", "-t", "nope"]), "--tracker", "nope"
    )
    _assert_clean_failure(runner.invoke(app, ["eval", "--gt", str(tmp_path / "gt"), "--results", str(tmp_path)]), "gt")


def test_eval_names_a_missing_result_file(data: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "--gt", str(data / "mot15" / "gt"), "--results", str(tmp_path)])
    _assert_clean_failure(result, "result file missing")


def test_demo_runs_and_labels_synthetic(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output
    assert "HOTA" in result.output
    scores = json.loads((out / "scores.json").read_text())
    assert scores["benchmark"] == "SYNTH"
    assert scores["combined"]["HOTA"] > 40
    assert (out / "results" / "SYNTH-01.txt").is_file()
    assert str(out / "scores.json") in result.output.replace("\n", "")


def _campus(data: Path, tmp_path: Path) -> Path:
    """TUD-Campus as a sequence folder: <seq>/det/det.txt beside <seq>/seqinfo.ini; returns the det file."""
    det, ini = _mot15_paths(data, "TUD-Campus")
    (tmp_path / "s" / "det").mkdir(parents=True)
    shutil.copy(ini, tmp_path / "s" / "seqinfo.ini")
    return Path(shutil.copy(det, tmp_path / "s" / "det" / "det.txt"))


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--config", "missing.yaml"], ("missing.yaml", "config file not found")),
        (["--profile", "nope"], ("profile 'nope'", "unknown")),
        (["--set", "tracker.iou_gate=2"], ("tracker.iou_gate", "less than or equal to 1")),
        (["--set", "detector.min_score=0.5"], ("--set 'detector.min_score=0.5'", "only tracker.* settings apply")),
    ],
    ids=["missing file", "bad profile", "bad tracker value", "setting no replay uses"],
)
def test_detections_mode_checks_config_profile_and_set(
    data: Path, tmp_path: Path, args: list[str], fragments: tuple[str, ...]
) -> None:
    """Issue #15, item 2: these were ignored in detections mode, even when wrong."""
    det = _campus(data, tmp_path)
    result = runner.invoke(app, ["track", "-d", str(det), "-o", str(tmp_path / "o.txt"), *args])
    _assert_clean_failure(result, *fragments)


def test_detections_mode_applies_the_config_files_tracker_section(data: Path, tmp_path: Path) -> None:
    det = _campus(data, tmp_path)
    plain, configured, overridden = (tmp_path / f"{name}.txt" for name in ("plain", "configured", "overridden"))
    assert runner.invoke(app, ["track", "-d", str(det), "-o", str(plain)]).exit_code == 0
    config = tmp_path / "run.yaml"
    config.write_text("tracker:\n  min_hits: 8\n")
    result = runner.invoke(app, ["track", "-d", str(det), "-o", str(configured), "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert len(read_mot_file(configured)) < len(read_mot_file(plain))
    result = runner.invoke(app, ["track", "-d", str(det), "-o", str(overridden), "-c", str(config), "-p", "min_hits=1"])
    assert result.exit_code == 0, result.output  # --param beats the file
    assert len(read_mot_file(overridden)) > len(read_mot_file(configured))


def test_detections_all_past_the_sequence_are_an_error(data: Path, tmp_path: Path) -> None:
    """Issue #15, item 3: this gave "complete, 0 tracks", exit 0 and no warning."""
    det = _campus(data, tmp_path)
    rows = det.read_text().splitlines()
    det.write_text("".join(f"{int(r.split(',')[0]) + 1000},{r.split(',', 1)[1]}\n" for r in rows))
    result = runner.invoke(app, ["track", "-d", str(det), "-o", str(tmp_path / "o.txt")])
    _assert_clean_failure(result, str(det), "lies past seqLength=71", "seqinfo.ini")
    assert not (tmp_path / "o.txt").exists()


def test_detections_partly_past_the_sequence_are_a_warning(data: Path, tmp_path: Path) -> None:
    det = _campus(data, tmp_path)
    det.write_text(det.read_text() + "80,-1,10,10,20,40,0.9,-1,-1,-1\n")
    result = runner.invoke(app, ["track", "-d", str(det), "-o", str(tmp_path / "o.txt")])
    assert result.exit_code == 0, result.output
    assert "warning: s: 1 of" in result.output and "lie past seqLength=71" in result.output


def test_min_score_nan_is_refused_and_one_dropping_everything_warns(data: Path, tmp_path: Path) -> None:
    det = _campus(data, tmp_path)
    nan = runner.invoke(app, ["track", "-d", str(det), "-o", str(tmp_path / "o.txt"), "--min-score", "nan"])
    _assert_clean_failure(nan, "--min-score nan")
    result = runner.invoke(app, ["track", "-d", str(det), "-o", str(tmp_path / "o.txt"), "--min-score", "2"])
    assert result.exit_code == 0, result.output
    assert "min_score 2 drops all" in result.output


def test_results_are_never_written_over_inputs(mot_folder: Path, data: Path, tmp_path: Path) -> None:
    """Issue #15, item 7: `-d s/det/det.txt -o s/det/det.txt` overwrote the input with results, exit 0."""
    det = _campus(data, tmp_path)
    before = det.read_bytes()
    result = runner.invoke(app, ["track", "-d", str(det), "-o", str(det)])
    _assert_clean_failure(result, f"--out {det}", f"is the input {det}")
    assert det.read_bytes() == before
    ini = det.parent.parent / "seqinfo.ini"
    _assert_clean_failure(runner.invoke(app, ["track", "-d", str(det), "-o", str(ini)]), f"is the input {ini}")
    for out in (mot_folder, mot_folder / "results"):
        batch = runner.invoke(app, ["track", "-d", str(mot_folder), "-o", str(out)])
        _assert_clean_failure(batch, f"--out {out}", f"inside the detections folder {mot_folder}")
    assert sorted(p.name for p in mot_folder.iterdir()) == sorted(SEQS)


def test_a_declared_length_far_beyond_the_file_is_refused_before_anything_is_allocated(
    data: Path, tmp_path: Path
) -> None:
    """Issue #15, item 10: seqLength=2000000000 for a 71-frame file was killed at ~24 GB."""
    det = _campus(data, tmp_path)
    ini = det.parent.parent / "seqinfo.ini"
    for length, fragments in [
        ("2000000000", ("'seqLength' must be at most 500,000",)),
        ("400000", ("seqLength=400000", "last detection", "at frame 71")),
    ]:
        ini.write_text(ini.read_text().replace("seqLength=71", f"seqLength={length}"))
        result = runner.invoke(app, ["track", "-d", str(det), "-o", str(tmp_path / "o.txt")])
        _assert_clean_failure(result, str(ini), *fragments)
        ini.write_text(ini.read_text().replace(f"seqLength={length}", "seqLength=71"))


def test_a_persistence_filter_leaves_out_whole_tracks_and_says_how_many(data: Path, tmp_path: Path) -> None:
    """KITTI-13's FRCNN detections (10 fps, many short false positives): the shipped filter drops some tracks,
    each one whole, and keeps every box of the others."""
    det, ini = _mot15_paths(data, "KITTI-13")
    plain, filtered = tmp_path / "plain.txt", tmp_path / "filtered.txt"
    for out, extra in ((plain, []), (filtered, ["--filter", "shipped"])):
        result = runner.invoke(app, ["track", "-d", str(det), "-s", str(ini), "-o", str(out), *extra])
        assert result.exit_code == 0, result.output
    assert "transient tracks left out" in result.output
    rows = {path: read_mot_file(path) for path in (plain, filtered)}
    kept = set(rows[filtered].track_id.tolist())
    dropped = set(rows[plain].track_id.tolist()) - kept
    assert dropped and kept  # it judged: some tracks out, most in
    assert f"{len(dropped)} transient tracks left out" in result.output
    whole = [line for line in plain.read_text().splitlines() if int(line.split(",")[1]) in kept]
    assert filtered.read_text().splitlines() == whole  # the kept tracks' every box, as without the filter


def test_a_persistence_filter_is_refused_with_a_video_or_from_a_bad_file(data: Path, tmp_path: Path) -> None:
    det, ini = _mot15_paths(data, "TUD-Campus")
    video = runner.invoke(app, ["track", str(data / "pets09_s2l1" / "vtest.avi"), "--filter", "shipped"])
    _assert_clean_failure(video, "--filter", "without a VIDEO")
    (tmp_path / "bad.npz").write_bytes(b"not a filter")
    for path, said in ((tmp_path / "bad.npz", "not a saved BoostedPersistence"), (tmp_path / "no.npz", "not found")):
        out = tmp_path / "out.txt"
        result = runner.invoke(app, ["track", "-d", str(det), "-s", str(ini), "-o", str(out), "--filter", str(path)])
        _assert_clean_failure(result, path.name, said)
        assert not out.exists()


def test_a_shipped_filter_outside_its_frame_rates_is_warned_about(data: Path, tmp_path: Path) -> None:
    det, ini = _mot15_paths(data, "TUD-Campus")
    fast = tmp_path / "seqinfo.ini"
    fast.write_text(ini.read_text().replace("frameRate=25", "frameRate=60"))
    out = tmp_path / "out.txt"
    result = runner.invoke(app, ["track", "-d", str(det), "-s", str(fast), "-o", str(out), "--filter", "shipped"])
    assert result.exit_code == 0, result.output
    assert "learnt from 5-30 fps" in result.output and "at 60 fps" in result.output
    inside = runner.invoke(app, ["track", "-d", str(det), "-s", str(ini), "-o", str(out), "--filter", "shipped"])
    assert inside.exit_code == 0 and "learnt from" not in inside.output
