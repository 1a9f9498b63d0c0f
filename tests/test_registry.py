"""One registry for detectors, embedders and trackers (issue #14, item 6)."""

from __future__ import annotations

import pytest

from trackid.detect import DETECTORS
from trackid.embed import EMBEDDERS
from trackid.registry import Registry
from trackid.track import TRACKERS


def test_backends_are_built_by_name_and_unknown_names_list_the_choices() -> None:
    things: Registry[object] = Registry("thing")

    @things.register("pair")
    def pair(a: int, b: int = 2) -> tuple[int, int]:
        return a, b

    assert things.make("pair", a=1) == (1, 2) and "pair" in things and list(things) == ["pair"]
    with pytest.raises(ValueError, match=r"unknown thing 'trio'; choose from \['pair'\]"):
        things.make("trio")
    with pytest.raises(ValueError, match="already registered"):
        things.register("pair")(lambda: None)


def test_every_stage_uses_it() -> None:
    assert {"nanodet", "ssdlite", "tiled"} <= set(DETECTORS)
    assert {"mobilenetv2", "faceres", "ensemble"} <= set(EMBEDDERS)
    assert "trackid" in TRACKERS
