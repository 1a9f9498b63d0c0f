"""Who is in which photo, as people record it: a CSV beside the photos, or a pattern in the file names.

Labels tune and validate the photos commands; at ingest their attributes (sex, species, ...) gate matches, so a
photo labelled sex=M never joins a profile labelled F.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

__all__ = ["Labels", "gate_attributes"]


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
        self._pattern = re.compile(pattern) if pattern else None
        if self._pattern is not None and "individual" not in self._pattern.groupindex:
            raise ValueError(f"label pattern {pattern!r} needs a named group (?P<individual>...)")
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
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"image", "individual"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{path}: missing column(s) {sorted(missing)}; header is {reader.fieldnames}")
            for line, row in enumerate(reader, start=2):
                image = (row.pop("image") or "").strip()
                if not image or not (row.get("individual") or "").strip():
                    raise ValueError(f"{path}:{line}: empty image or individual")
                values = {k: v.strip() for k, v in row.items() if k and v is not None and v.strip()}
                if "/" in image or "\\" in image:
                    self._by_path[(path.parent / image).resolve()] = values
                else:
                    self._by_name[image] = values


def gate_attributes(labels: dict[str, str]) -> dict[str, str]:
    """The labels usable as gates at ingest: everything but who it is."""
    return {k: v for k, v in labels.items() if k != "individual"}
