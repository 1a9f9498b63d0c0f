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


def test_rows_that_label_one_photo_twice_differently_are_an_error_naming_both_lines(tmp_path: Path) -> None:
    """Issue #15, item 5: the last row used to win silently; identical repeats are harmless and accepted."""
    csv = tmp_path / "labels.csv"
    csv.write_text("image,individual,sex\na.jpg,doe-1,F\nb.jpg,buck,M\na.jpg,doe-1,F\ncam1/c.jpg,x,F\n")
    assert Labels(csv)(tmp_path / "a.jpg") == {"individual": "doe-1", "sex": "F"}
    csv.write_text("image,individual,sex\na.jpg,doe-1,F\nb.jpg,buck,M\na.jpg,doe-2,F\n")
    with pytest.raises(ValueError, match=r"labels.csv:4: 'a.jpg' is labelled individual=doe-2, sex=F here but "):
        Labels(csv)
    csv.write_text("image,individual\ncam1/c.jpg,x\ncam1/../cam1/c.jpg,y\n")  # one file, two spellings
    with pytest.raises(ValueError, match=r"labels.csv:3: .* but individual=x at line 2"):
        Labels(csv)


def test_a_byte_order_mark_is_read_and_text_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    """Issue #15, items 13 and 14: spreadsheet programs write a BOM before `image`; a Latin-1 file's error named no
    file."""
    csv = tmp_path / "excel.csv"
    csv.write_bytes("\ufeffimage,individual\na.jpg,doe\n".encode())
    assert Labels(csv)(tmp_path / "a.jpg") == {"individual": "doe"}
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("image,individual\nr\xe9ne.jpg,doe\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.csv: not UTF-8 text \(byte 0xe9 at offset 18\); save it as UTF-8"):
        Labels(latin)


def test_a_pattern_that_is_not_a_regex_is_named() -> None:
    """Issue #15, item 11: `--label-pattern '('` was a traceback (re.error)."""
    with pytest.raises(ValueError, match=r"label pattern '\(': not a regular expression \(missing \), unterminated"):
        Labels(pattern="(")
