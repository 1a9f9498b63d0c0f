"""Per-camera statistics of one embedding model: the adapted camera mean and the drift watch's state, as JSON.

What `photos ingest` learns about a camera without labels must outlive the run, so that a second ingest continues
where the first stopped and a camera adapted once stays adapted (`trackid.embed.adaptation`,
`trackid.identity.drift`). The store keeps them opaque: it validates that they are JSON objects, nothing more.
Written inside the caller's transaction when there is one, so they commit with the sightings they came from.
"""

from __future__ import annotations

import json
import time as _time
from collections.abc import Mapping
from typing import Any

from trackid.identity.stores.records import CameraStats
from trackid.identity.stores.sql import SqlStore

__all__ = ["CameraStatistics"]


class CameraStatistics(SqlStore):
    """The camera-statistics methods of `GalleryStore`."""

    def camera_stats(self, *, model_id: str, model_version: str) -> dict[str, CameraStats]:
        """Camera -> its statistics for this model (empty for a model nothing was recorded for)."""
        rows = self._fetchall(
            "SELECT camera, adaptation, drift, updated FROM camera_stats WHERE model_id = ? AND model_version = ? "
            "ORDER BY camera",
            (model_id, model_version),
        )
        return {
            r[0]: CameraStats(
                r[0], None if r[1] is None else json.loads(r[1]), None if r[2] is None else json.loads(r[2]), r[3]
            )
            for r in rows
        }

    def save_camera_stats(
        self,
        *,
        model_id: str,
        model_version: str,
        camera: str,
        adaptation: Mapping[str, Any] | None = None,
        drift: Mapping[str, Any] | None = None,
    ) -> None:
        """Record one camera's statistics (replacing the previous ones; a part given as None keeps its old value)."""
        if not isinstance(camera, str) or not camera:
            raise ValueError(f"camera must be a non-empty string, got {camera!r}")
        parts = {"adaptation": adaptation, "drift": drift}
        for name, part in parts.items():
            if part is not None and not isinstance(part, Mapping):
                raise ValueError(f"{name} must be a mapping (a JSON object), got {type(part).__name__}")
        text = {k: None if v is None else json.dumps(dict(v), allow_nan=False) for k, v in parts.items()}
        with self._transaction():
            self._execute(
                "INSERT INTO camera_stats (model_id, model_version, camera, adaptation, drift, updated) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (model_id, model_version, camera) DO UPDATE SET "
                "adaptation = coalesce(excluded.adaptation, camera_stats.adaptation), "
                "drift = coalesce(excluded.drift, camera_stats.drift), updated = excluded.updated",
                (model_id, model_version, camera, text["adaptation"], text["drift"], _time.time()),
            )
