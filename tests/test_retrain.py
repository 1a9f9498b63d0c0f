"""Retraining from corrections on real photos (VIPeR): the metric learns from merges, the gallery is re-embedded,
and a killed run resumes into the same vector space."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from trackid.cli import app
from trackid.embed import make_embedder
from trackid.identity.retrain import retrain_gallery
from trackid.identity.stores import GalleryStore, make_store

OLD = {"model_id": "old", "model_version": "1"}
PEOPLE = 24


def _gallery(data: Path, db: Path, corrected: int) -> GalleryStore:
    """Each VIPeR photo of the first PEOPLE individuals its own identity (as an ingest that recognised no one
    would leave them), then the first `corrected` individuals' two photos merged, as a person fixing it would."""
    folder = data / "reid" / "viper"
    ids = sorted({p.name[:4] for p in folder.glob("*.png")})[:PEOPLE]
    store = make_store(db, index_kind="exact")
    rng = np.random.default_rng(0)
    for n, person in enumerate(ids):
        pair = []
        for camera in ("0001", "0002"):
            identity = store.create_identity()
            store.add_sighting(
                rng.normal(size=8),
                **OLD,
                time=float(n),
                identity_id=identity.id,
                camera=camera,
                source={"image": str(folder / f"{person}{camera}.png")},
            )
            pair.append(identity.id)
        if n < corrected:
            store.merge(*pair)
    return store


def test_retrain_learns_from_merges_and_resumes_in_the_same_space(data: Path, tmp_path: Path) -> None:
    features = make_embedder("lomo")
    with _gallery(data, tmp_path / "g.db", corrected=12) as store:

        class KilledError(RuntimeError):
            pass

        def die(_: int) -> None:
            raise KilledError

        with pytest.raises(KilledError):  # killed after the first committed batch of vectors
            retrain_gallery(store, features=features, metric="kissme", out=tmp_path / "r", batch_size=8, progress=die)
        first = json.loads((tmp_path / "r" / "metric_inputs.json").read_text())["digest"]
        result = retrain_gallery(store, features=features, metric="kissme", out=tmp_path / "r", batch_size=8)
        assert result.metric_reused and result.individuals == 12 and result.sightings == 24
        assert json.loads((tmp_path / "r" / "metric_inputs.json").read_text())["digest"] == first
        assert result.reembed.added == 2 * PEOPLE - 8, "the killed run's batch is not embedded twice"
        assert store.count_without_model(result.model_id, result.model_version) == 0
        vectors = store.vectors_of(
            [s.id for s in store.sightings()], model_id=result.model_id, model_version=result.model_version
        )
        assert len(vectors) == 2 * PEOPLE
        assert result.pairs["same"] > 0 and result.pairs["different"] > 0
        assert (tmp_path / "r" / "calibrator.json").is_file()


def test_cli_retrain_refuses_too_few_corrections_without_a_traceback(data: Path, tmp_path: Path) -> None:
    _gallery(data, tmp_path / "g.db", corrected=1).close()
    result = CliRunner().invoke(
        app, ["gallery", "retrain", "--store", str(tmp_path / "g.db"), "-o", str(tmp_path / "r")]
    )
    assert result.exit_code == 2, result.output
    assert "at least 4 individuals" in result.output and "Traceback" not in result.output
