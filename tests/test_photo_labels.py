"""Who is in which photo: labels from a CSV (paths or bare names, attributes) and from a file-name pattern."""

from __future__ import annotations

from pathlib import Path

import pytest

from trackid.pipelines.photos.labels import Labels, gate_attributes


def test_csv_rows_by_path_or_name_win_over_the_pattern(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("image,individual,sex\ncam1/0001.jpg,doe-1,F\n0002.jpg,buck-2,M\n0003.jpg,fawn, \n")
    labels = Labels(csv, pattern=r"^(?P<individual>\d{4})")
    assert labels(tmp_path / "cam1" / "0001.jpg") == {"individual": "doe-1", "sex": "F"}
    assert labels(tmp_path / "elsewhere" / "0002.jpg") == {"individual": "buck-2", "sex": "M"}
    assert labels(tmp_path / "0003.jpg") == {"individual": "fawn"}  # an empty attribute is no attribute
    assert labels(tmp_path / "cam2" / "0001.jpg") == {"individual": "0001"}  # not that path: the pattern
    assert labels(tmp_path / "notes.jpg") == {}
    assert gate_attributes(labels(tmp_path / "cam1" / "0001.jpg")) == {"sex": "F"}


def test_labels_it_cannot_use_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"needs a named group \(\?P<individual>"):
        Labels(pattern=r"^\d{4}")
    with pytest.raises(FileNotFoundError, match="labels file not found"):
        Labels(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("image,individual\na.jpg,\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: empty image or individual"):
        Labels(bad)
