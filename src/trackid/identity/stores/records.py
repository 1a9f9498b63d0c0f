"""What a gallery store holds, as frozen records, and the checks a value passes before it is written.

These are the store's currency: backends build them from rows (`identity_row`, `correction_row`), the gallery and the
pipelines read them. Times are seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

CorrectionKind = Literal["merge", "split", "relabel", "delete", "undo"]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """An embedding model the store holds vectors of; `key` is the store's own id for it."""

    key: int
    model_id: str
    model_version: str
    dim: int


@dataclass(frozen=True, slots=True)
class Identity:
    """One individual. `attributes` (e.g. sex, species) act as hard gates in `search`; `deleted` hides it."""

    id: int
    label: str | None
    site: str | None
    attributes: Mapping[str, Any]
    created: float
    first_seen: float | None
    last_seen: float | None
    sighting_count: int
    deleted: bool


@dataclass(frozen=True, slots=True, eq=False)
class Prototype:
    """One of an identity's few remembered appearances.

    `quality` is the summed quality of the sightings folded into it; `created` is when its content was last formed
    (a fold or a replacement renews it).
    """

    id: int
    identity_id: int
    vector: NDArray[np.float32]
    quality: float
    sighting_count: int
    model_id: str
    model_version: str
    created: float


@dataclass(frozen=True, slots=True, eq=False)
class Sighting:
    """One observation with its appearance vector; `identity_id` None means not (yet) assigned.

    `vector` is the one of the model it was recorded with; `reembed` can add vectors of further models (see
    `vectors_of`). `source` says where its pixels are (e.g. `{"image": path, "box": [x1, y1, x2, y2]}`).
    """

    id: int
    identity_id: int | None
    time: float
    site: str | None
    camera: str | None
    quality: float
    model_id: str
    model_version: str
    vector: NDArray[np.float32]
    source: Mapping[str, Any] | None = None
    source_key: str | None = None


@dataclass(frozen=True, slots=True)
class Correction:
    """A correction event; `payload` holds what `undo` needs (moved sightings, old label, ...)."""

    id: int
    kind: CorrectionKind
    identity_id: int | None
    other_identity_id: int | None
    payload: Mapping[str, Any]
    time: float
    undone_by: int | None


@dataclass(frozen=True, slots=True)
class LabelledPair:
    """Two sightings a correction says are the same individual (merge) or different ones (split)."""

    sighting_a: int
    sighting_b: int
    similarity: float
    same: bool
    correction_id: int


@dataclass(frozen=True, slots=True)
class SimilarityRecord:
    """One comparison that led to a decision; `candidate` None when no identity was compared (e.g. empty gallery)."""

    query: int | None
    candidate: int | None
    similarity: float
    probability: float | None
    threshold: float | None
    decision: str
    model_id: str
    model_version: str
    time: float


@dataclass(frozen=True, slots=True)
class CameraStats:
    """One camera's recorded statistics for one model: `adaptation` (its camera mean) and `drift` (the drift
    watch's live state), each a JSON object or None, and when they were last written."""

    camera: str
    adaptation: dict[str, Any] | None
    drift: dict[str, Any] | None
    updated: float


@dataclass(frozen=True, slots=True)
class Candidate:
    """A search hit: the identity and its best prototype's cosine similarity to the query."""

    identity_id: int
    similarity: float
    prototype_id: int


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    """What `check_integrity` found wrong (`problems`) and what it rebuilt from the database (`repaired`)."""

    problems: tuple[str, ...] = ()
    repaired: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def as_unit_vector(vector: ArrayLike, dim: int, name: str = "vector") -> NDArray[np.float32]:
    """`vector` as a finite, L2-normalised float32 array of length `dim`; ValueError naming `name` otherwise."""
    arr = np.asarray(vector)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return _unit_rows(arr[None, :], dim, name, lambda _: name)[0]


def as_unit_rows(rows: ArrayLike, dim: int, name: str = "vectors") -> NDArray[np.float32]:
    """(N, `dim`) rows as finite, L2-normalised float32 vectors, checked and normalised at once; ValueError naming
    `name` (and the first bad row of several) otherwise. One code path for one vector and a batch, so a batch
    stores bit-for-bit what one-by-one calls would."""
    return _unit_rows(np.asarray(rows), dim, name, lambda i: f"{name}[{i}]")


def _unit_rows(arr: NDArray[Any], dim: int, name: str, row_name: Callable[[int], str]) -> NDArray[np.float32]:
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (n, {dim}), got shape {arr.shape}")
    if arr.size and not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.shape[1] != dim:
        raise ValueError(f"{name} has dimension {arr.shape[1]} but the model's vectors have dimension {dim}")
    out = arr.astype(np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", out, out, dtype=np.float64))
    for problem, bad in (
        ("contains NaN or infinite values", ~np.isfinite(out).all(axis=1)),
        ("has zero norm (cosine similarity is undefined)", norms == 0.0),
    ):
        if bad.any():
            raise ValueError(f"{row_name(int(np.flatnonzero(bad)[0]))} {problem}")
    return out / norms[:, None].astype(np.float32)


IDENTITY_COLUMNS = "id, label, site, attributes, created, first_seen, last_seen, sighting_count, deleted"
CORRECTION_COLUMNS = "id, kind, identity_id, other_identity_id, payload, time, undone_by"


def identity_row(row: Sequence[Any]) -> Identity:
    return Identity(
        id=int(row[0]),
        label=row[1],
        site=row[2],
        attributes=load_attributes(row[3]),
        created=float(row[4]),
        first_seen=None if row[5] is None else float(row[5]),
        last_seen=None if row[6] is None else float(row[6]),
        sighting_count=int(row[7]),
        deleted=bool(row[8]),
    )


def correction_row(row: Sequence[Any]) -> Correction:
    payload = row[4] if isinstance(row[4], dict) else json.loads(row[4])
    return Correction(
        id=int(row[0]),
        kind=row[1],
        identity_id=None if row[2] is None else int(row[2]),
        other_identity_id=None if row[3] is None else int(row[3]),
        payload=payload,
        time=float(row[5]),
        undone_by=None if row[6] is None else int(row[6]),
    )


def load_attributes(value: Any) -> dict[str, Any]:
    """Attributes come back as JSON text (SQLite) or already decoded (PostgreSQL jsonb)."""
    return dict(value) if isinstance(value, dict) else dict(json.loads(value))


def attributes_json(attributes: Mapping[str, Any] | None) -> str:
    attrs = dict(attributes or {})
    if not all(isinstance(key, str) for key in attrs):
        raise ValueError(f"attributes keys must be strings, got {sorted(map(repr, attrs))}")
    try:
        return json.dumps(attrs, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"attributes must be JSON-serialisable: {err}") from None


def source_json(source: Mapping[str, Any] | None) -> str | None:
    if source is None:
        return None
    if not isinstance(source, Mapping):
        raise ValueError(f"source must be a mapping (e.g. {{'image': path, 'box': [x1, y1, x2, y2]}}), got {source!r}")
    try:
        return json.dumps(dict(source), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"source must be JSON-serialisable: {exc}") from None


def as_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"ids are integers, got {value!r}")
    return int(value)


def check_finite(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def check_quality(value: float) -> float:
    q = check_finite(value, "quality")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quality must be in [0, 1], got {value!r}")
    return q
