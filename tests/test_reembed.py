"""Re-embedding a gallery with another model, from the pixels each sighting's source names (real SQLite store)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from trackid.cli import app
from trackid.embed import make_embedder
from trackid.identity.reembed import reembed
from trackid.identity.stores import GalleryStore, make_store

OLD = {"model_id": "old-embedder", "model_version": "1"}
COLOURS = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255)]


def _scene(folder: Path) -> dict[str, list[int]]:
    """Four photos of two individuals (a red and a green box on grey) plus broken inputs, recorded with an old
    model's vectors; returns sighting ids by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    store = make_store(folder / "g.db", index_kind="exact")
    people = [store.create_identity(label=name) for name in ("red", "green")]
    rng = np.random.default_rng(0)
    ids: dict[str, list[int]] = {"good": [], "bad": []}
    for i in range(8):
        person = i % 2
        image = np.full((120, 160, 3), 90, np.uint8)
        box = [20 + 4 * i, 10, 80 + 4 * i, 110]
        image[box[1] : box[3], box[0] : box[2]] = COLOURS[person]
        path = folder / f"photo{i}.png"
        cv2.imwrite(str(path), image)
        sighting = store.add_sighting(
            rng.normal(size=16),
            **OLD,
            time=float(i),
            identity_id=people[person].id,
            source={"image": str(path), "box": box},
        )
        ids["good"].append(sighting.id)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    broken = [
        None,
        {"image": str(folder / "missing.png")},
        {"image": str(folder / "empty.jpg")},
        {"image": str(folder / "corrupt.jpg")},
        {"image": str(folder / "photo0.png"), "box": [500, 500, 600, 600]},
    ]
    for source in broken:
        ids["bad"].append(store.add_sighting(rng.normal(size=16), **OLD, time=9.0, source=source).id)
    store.close()
    return ids


def test_cli_reembeds_every_readable_sighting_and_reports_the_rest(tmp_path: Path) -> None:
    ids = _scene(tmp_path)
    result = CliRunner().invoke(app, ["gallery", "reembed", "--store", str(tmp_path / "g.db"), "--model", "colour"])
    assert result.exit_code == 0, result.output
    assert "added 8 vectors" in result.output
    for reason in (
        "no source image recorded",
        "image file not found",
        "zero-byte file",
        "not a decodable image",
        "box lies outside the image",
    ):
        assert f"skipped 1: {reason}" in " ".join(result.output.split()), result.output

    colour = make_embedder("colour")
    new = {"model_id": colour.model_id, "model_version": colour.version}
    with make_store(tmp_path / "g.db", index_kind="exact") as store:
        vectors = store.vectors_of(ids["good"] + ids["bad"], **new)
        assert sorted(vectors) == ids["good"]
        first = store.get_sighting(ids["good"][0])
        image = cv2.imread(first.source["image"])  # type: ignore[index]
        x1, y1, x2, y2 = first.source["box"]  # type: ignore[index]
        np.testing.assert_allclose(vectors[first.id], colour.embed([image[y1:y2, x1:x2]])[0], atol=1e-6)
        # the identities are now recognisable in the new model's space, by colour
        red, green = (i.id for i in store.identities())
        queries = np.stack([vectors[ids["good"][2]], vectors[ids["good"][3]]])
        assert [hits[0].identity_id for hits in store.search(queries, **new, k=1)] == [red, green]
        assert store.check_integrity().ok

    again = CliRunner().invoke(app, ["gallery", "reembed", "--store", str(tmp_path / "g.db"), "--model", "colour"])
    assert again.exit_code == 0 and "added 0 vectors" in again.output


def test_an_interrupted_run_resumes_to_the_same_store(tmp_path: Path) -> None:
    _scene(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    colour = make_embedder("colour")
    new = {"model_id": colour.model_id, "model_version": colour.version}

    def contents(store: GalleryStore) -> tuple[dict[int, list[float]], list[list[float]]]:
        vectors = store.vectors_of([s.id for s in store.sightings()], **new)
        protos = [p.vector.tolist() for i in store.identities() for p in store.prototypes(i.id)]
        return {k: v.tolist() for k, v in vectors.items()}, protos

    with make_store(tmp_path / "a" / "g.db", index_kind="exact") as store:
        reembed(store, colour, batch_size=3)
        uninterrupted = contents(store)

    def crash_after_first_page(n: int) -> None:
        raise KeyboardInterrupt

    with make_store(tmp_path / "b" / "g.db", index_kind="exact") as store:
        with pytest.raises(KeyboardInterrupt):
            reembed(store, colour, batch_size=3, progress=crash_after_first_page)
        assert store.count_without_model(**new) == 13 - 3
    with make_store(tmp_path / "b" / "g.db", index_kind="exact") as store:
        report = reembed(store, colour, batch_size=3)
        assert report.added == 8 - 3 and sum(report.skipped.values()) == 5
        assert contents(store) == uninterrupted


def test_cli_names_an_unknown_model(tmp_path: Path) -> None:
    _scene(tmp_path)
    result = CliRunner().invoke(app, ["gallery", "reembed", "--store", str(tmp_path / "g.db"), "--model", "nope"])
    assert result.exit_code == 2 and "unknown embedder 'nope'" in result.output
