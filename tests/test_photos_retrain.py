"""`photos retrain` on real VIPeR photos: corrections join the tuning, the store moves to the new model, and a
second run keeps the tuning it finds and adds nothing twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trackid.cli import app
from trackid.identity.stores import make_store

PATTERN = r"^(?P<individual>\d{4})"


def _folders(source: Path, root: Path, ids: list[str]) -> list[Path]:
    folders = []
    for cam in ("0001", "0002"):
        folder = root / f"cam{cam[-1]}"
        folder.mkdir(parents=True)
        for i in ids:
            (folder / f"{i}{cam}.png").symlink_to(source / f"{i}{cam}.png")
        folders.append(folder)
    return folders


def test_retrain_learns_the_corrections_and_resumes(data: Path, tmp_path: Path) -> None:
    source = data / "reid" / "viper"
    if not source.is_dir():
        pytest.skip(f"VIPeR not found at {source}")
    ids = sorted({p.name[:4] for p in source.glob("*.png")})
    labelled = _folders(source, tmp_path / "labelled", ids[:160])
    field = _folders(source, tmp_path / "field", ids[160:190])
    runner = CliRunner()
    tuned, db = tmp_path / "tuned", tmp_path / "g.db"
    result = runner.invoke(app, ["photos", "tune", *map(str, labelled), "--label-pattern", PATTERN, "-o", str(tuned)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "photos",
            "ingest",
            *map(str, field),
            "--site",
            "s",
            "--tuned",
            str(tuned),
            "--store",
            str(db),
            "-o",
            str(tmp_path / "ingest"),
        ],
    )
    assert result.exit_code == 0, result.output
    with make_store(db) as store:  # a person merges the two photos of twenty of the field's individuals
        merged = 0
        for person in ids[160:180]:
            owners = sorted(
                {
                    int(s.identity_id or 0)
                    for s in store.sightings()
                    if Path(str((s.source or {})["image"])).name.startswith(person)
                }
            )
            if len(owners) == 2:
                store.merge(owners[0], owners[1])
                merged += 1
        sightings = len(store.sightings())
    assert merged >= 3
    args = ["photos", "retrain", *map(str, labelled), "--label-pattern", PATTERN, "--store", str(db)]
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "retrained")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "retrained" / "tuned.json").read_text())
    extra = saved["evidence"]["extra"]["individuals"]
    assert merged - 3 <= extra <= merged  # a wrong match merged along can join two corrected individuals
    assert saved["evidence"]["retrain"]["corrected_sightings"] >= 2 * merged  # a merge keeps what the identity held
    assert saved["evidence"]["metric"]["fitted_on"]["individuals"] == 40 + extra  # half the tuning half + extras
    assert f"added {sightings} vectors" in " ".join(result.output.split())
    again = runner.invoke(app, [*args, "-o", str(tmp_path / "retrained")])
    assert again.exit_code == 0, again.output
    assert "kept" in again.output and "added 0 vectors" in " ".join(again.output.split())


def test_retrain_without_corrections_says_so(data: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    make_store(db).close()
    folder = tmp_path / "photos"
    folder.mkdir()
    result = CliRunner().invoke(
        app,
        ["photos", "retrain", str(folder), "--label-pattern", PATTERN, "--store", str(db), "-o", str(tmp_path / "r")],
    )
    assert result.exit_code == 2 and "no corrected sighting to learn from" in result.output
    assert "Traceback" not in result.output
