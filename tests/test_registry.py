"""One registry for detectors, embedders and trackers, each backend with its own params model (issue #14, item 6)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from pydantic import BaseModel, Field

from trackid.detect import DETECTORS, HogPeopleDetector, HogPeopleParams, TiledDetector
from trackid.embed import EMBEDDERS, ColourTextureEmbedder, ColourTextureParams
from trackid.registry import BackendParams, Registry
from trackid.track import TRACKERS


class PairParams(BackendParams):
    a: int = Field(description="first")
    b: int = Field(2, ge=0, description="second")


def _things() -> Registry[tuple[int, int]]:
    things: Registry[tuple[int, int]] = Registry("thing")

    @things.register("pair", params=PairParams)
    def pair(a: int, b: int = 2) -> tuple[int, int]:
        return a, b

    return things


def test_backends_are_built_by_name_from_a_mapping_keywords_or_their_model() -> None:
    things = _things()
    assert things.make("pair", {"a": 1}) == things.make("pair", a=1) == things.make("pair", PairParams(a=1)) == (1, 2)
    assert things.make("pair", {"a": 1, "b": 5}, b=3) == (1, 3)  # keywords on top of the mapping
    assert things.make("pair", {"a": "4"}) == (4, 2)  # values are converted as the model says
    assert things.params_model("pair") is PairParams and "pair" in things and list(things) == ["pair"]
    assert [(e.name, e.params) for e in things.entries()] == [("pair", PairParams)]
    with pytest.raises(ValueError, match=r"unknown thing 'trio'; choose from \['pair'\]"):
        things.make("trio")
    with pytest.raises(ValueError, match="already registered"):
        things.register("pair", params=PairParams)(lambda a, b=2: (a, b))


def test_an_unknown_key_names_the_backend_the_key_and_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"thing 'pair' has no parameter 'c'; its parameters: a, b$"):
        _things().make("pair", a=1, c=3)
    with pytest.raises(ValueError, match=r"detector 'nanodet' has no parameter 'score_treshold'; .*score_threshold"):
        DETECTORS.validate("nanodet", {"score_treshold": 0.3})


def test_a_wrong_value_names_the_field_and_what_was_given() -> None:
    with pytest.raises(ValueError, match=r"thing 'pair': b: Input should be greater than or equal to 0 \(got -1\)"):
        _things().make("pair", a=1, b=-1)
    with pytest.raises(ValueError, match=r"thing 'pair': a: Field required"):
        _things().make("pair")
    with pytest.raises(ValueError, match=r"detector 'nanodet': score_threshold: .*valid number.*\(got 'abc'\)"):
        DETECTORS.validate("nanodet", {"score_threshold": "abc"})
    with pytest.raises(ValueError, match="takes PairParams, not HogPeopleParams"):
        _things().make("pair", HogPeopleParams())


def test_a_params_model_of_another_backend_is_refused_even_if_it_extends_this_ones() -> None:
    pyramid = EMBEDDERS.params_model("mobilenetv2-pyramid")
    assert issubclass(pyramid, EMBEDDERS.params_model("mobilenetv2"))
    with pytest.raises(ValueError, match="takes MobileNetV2Params, not MobileNetV2PyramidParams"):
        EMBEDDERS.validate("mobilenetv2", pyramid())


def test_nested_backends_have_their_params_checked_too() -> None:
    with pytest.raises(ValueError, match=r"inner_params: detector 'hog': scale: Input should be greater than 1"):
        DETECTORS.validate("tiled", {"inner": "hog", "inner_params": {"scale": 0.5}})
    with pytest.raises(ValueError, match=r"members: member 1: embedder 'colour' has no parameter 'strips'"):
        EMBEDDERS.validate("ensemble", {"members": [{"name": "colour"}, {"name": "colour", "params": {"strips": 2}}]})
    with pytest.raises(ValueError, match="takes 'name' and 'params'"):
        EMBEDDERS.validate("ensemble", {"members": [{"name": "colour", "weight": 2}]})


@pytest.mark.parametrize("registry", [DETECTORS, EMBEDDERS], ids=lambda r: r.kind)
def test_every_backends_model_mirrors_its_keyword_arguments_and_documents_each(registry: Registry[object]) -> None:
    """The model's defaults are the backend's own, so building by name through the model changes nothing."""
    assert len(registry) > 0
    for entry in registry.entries():
        assert entry.params is not None and issubclass(entry.params, BackendParams), entry.name
        signature = inspect.signature(entry.factory).parameters
        for field, info in entry.params.model_fields.items():
            assert field in signature, (entry.name, field)
            default = signature[field].default
            expected = inspect.Parameter.empty if info.is_required() else info.default
            assert default == expected, (entry.name, field, default, expected)
            assert info.description and len(info.description) > 10, (entry.name, field)
        hidden = [p for p in signature.values() if p.name not in entry.params.model_fields]
        assert all(p.default is not inspect.Parameter.empty for p in hidden), (entry.name, hidden)


def test_defaults_build_the_same_backend_as_before() -> None:
    colour = EMBEDDERS.make("colour")
    assert isinstance(colour, ColourTextureEmbedder) and colour.version == ColourTextureEmbedder().version
    assert EMBEDDERS.make("colour", ColourTextureParams(stripes=3)).version == ColourTextureEmbedder(stripes=3).version
    hog = DETECTORS.make("hog", win_stride=[4, 4])
    assert isinstance(hog, HogPeopleDetector) and hog.win_stride == (4, 4)
    assert (hog.scale, hog.nms_threshold) == (HogPeopleDetector().scale, HogPeopleDetector().nms_threshold)
    np.testing.assert_array_equal(hog.box_fraction, HogPeopleDetector().box_fraction)
    tiled = DETECTORS.make("tiled", {"inner": "hog", "inner_params": {"hit_threshold": 0.5}, "tiles": [1, 2]})
    assert isinstance(tiled, TiledDetector) and tiled.tiles == (1, 2) and tiled.inner.hit_threshold == 0.5


def test_a_store_like_backend_registers_with_its_model() -> None:
    """Stores (`identity/stores`) register the same way: a model of the settings a URL or config gives."""

    class SqliteParams(BaseModel):
        path: str = Field(description="database file")
        timeout_s: float = Field(5.0, gt=0, description="lock wait")

    stores: Registry[dict[str, object]] = Registry("store")
    stores.register("sqlite", params=SqliteParams)(lambda path, timeout_s=5.0: {"path": path, "timeout": timeout_s})
    assert stores.make("sqlite", {"path": "g.db", "timeout_s": "2"}) == {"path": "g.db", "timeout": 2.0}


def test_every_stage_uses_it() -> None:
    assert {"nanodet", "ssdlite", "tiled"} <= set(DETECTORS)
    assert {"mobilenetv2", "faceres", "ensemble"} <= set(EMBEDDERS)
    assert "trackid" in TRACKERS
