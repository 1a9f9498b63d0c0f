"""Who is in which photo, as people record it: a CSV beside the photos, or a pattern in the file names.

Labels tune and validate the photos commands; at ingest their attributes (sex, species, ...) gate matches, so a
photo labelled sex=M never joins a profile labelled F. A labels file is read strictly, because a wrong label is a
wrong result nobody sees: two rows that label one photo differently, a column named twice or values past the
header's columns are errors naming the file and line; a spreadsheet's byte-order mark is read as such.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from pathlib import Path

__all__ = ["Labels", "LabelsError", "gate_attributes"]


class LabelsError(ValueError):
    """Labels that cannot be used; the message names the CSV file (and line) or the pattern, and what is wrong."""


class Labels:
    """Who is in which photo (and attributes such as sex or species), from a CSV and/or a file-name pattern.

    CSV: a header row with `image` and `individual` columns, more columns = attributes; `image` is a path
    (relative to the CSV's folder, or absolute) or a bare file name. Pattern: a regex with a named group
    `individual` searched in the file name, e.g. `^(?P<individual>\\d{4})` for VIPeR. The CSV wins where both
    name a photo.
    """

    def __init__(self, csv_path: Path | None = None, pattern: str | None = None) -> None:
        self._by_path: dict[Path, dict[str, str]] = {}
        self._by_name: dict[str, dict[str, str]] = {}
        self._pattern = _compile(pattern) if pattern else None
        if csv_path is not None:
            self._read_csv(csv_path)

    def __call__(self, photo: Path) -> dict[str, str]:
        """The photo's labels ({} when it has none): `individual` plus attributes."""
        found = self._by_path.get(photo.resolve()) or self._by_name.get(photo.name)
        if found is not None:
            return dict(found)
        if self._pattern is not None:
            match = self._pattern.search(photo.name)
            if match:
                return {"individual": match.group("individual")}
        return {}

    def _read_csv(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"labels file not found: {path}")
        data = path.read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise LabelsError(
                f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
            ) from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        first_line: dict[Path | str, tuple[int, dict[str, str]]] = {}
        try:
            header = reader.fieldnames or []
            missing = {"image", "individual"} - set(header)
            if missing:
                raise LabelsError(f"{path}: missing column(s) {sorted(missing)}; header is {header or '(empty file)'}")
            repeated = sorted(name for name, n in Counter(header).items() if name and n > 1)
            if repeated:
                raise LabelsError(f"{path}: column(s) {repeated} appear more than once in the header")
            for row in reader:
                line = reader.line_num
                beyond = [v for v in row.pop(None, None) or () if v.strip()]
                if beyond:
                    raise LabelsError(f"{path}:{line}: {len(beyond)} value(s) past the header's {len(header)} columns")
                image = (row.pop("image") or "").strip()
                if not image or not (row.get("individual") or "").strip():
                    raise LabelsError(f"{path}:{line}: empty image or individual")
                values = {k: v.strip() for k, v in row.items() if k and v is not None and v.strip()}
                key = self._key(path, line, image)
                if key in first_line and first_line[key][1] != values:
                    earlier, labelled = first_line[key]
                    raise LabelsError(
                        f"{path}:{line}: {image!r} is labelled {_shown(values)} here but {_shown(labelled)} at line "
                        f"{earlier}; one photo has one label"
                    )
                first_line.setdefault(key, (line, values))
                if isinstance(key, Path):
                    self._by_path[key] = values
                else:
                    self._by_name[key] = values
        except csv.Error as exc:
            raise LabelsError(f"{path}:{reader.line_num}: not readable as CSV ({exc})") from None

    @staticmethod
    def _key(path: Path, line: int, image: str) -> Path | str:
        """A row's photo: the file it names (a path, relative to the CSV's folder), or a bare file name."""
        if "/" not in image and "\\" not in image:
            return image
        try:
            return (path.parent / image).resolve()
        except (OSError, ValueError) as exc:
            raise LabelsError(f"{path}:{line}: image {image!r} is not a usable path ({exc})") from None


def gate_attributes(labels: dict[str, str]) -> dict[str, str]:
    """The labels usable as gates at ingest: everything but who it is."""
    return {k: v for k, v in labels.items() if k != "individual"}


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        compiled = re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise LabelsError(f"label pattern {pattern!r}: not a regular expression ({exc})") from None
    if "individual" not in compiled.groupindex:
        raise LabelsError(f"label pattern {pattern!r} needs a named group (?P<individual>...)")
    return compiled


def _shown(values: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())
