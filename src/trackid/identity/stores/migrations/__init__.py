"""Versioned schema migrations of the gallery stores, one ordered list per SQL dialect.

A store applies every step newer than its `schema_version` table's highest version, each step with its version row
in one transaction, so a crash leaves the schema at a complete version and reopening finishes the job. Steps are
append-only: a released step is never edited, a change is a new step.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SCHEMA_VERSION_DDL", "Migration", "pending"]

SCHEMA_VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version "
    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied DOUBLE PRECISION NOT NULL)"
)
"""The bookkeeping table, the same in both dialects; created before any step runs."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: statements run in order inside one transaction."""

    version: int
    name: str
    statements: tuple[str, ...]


def pending(steps: tuple[Migration, ...], current: int) -> list[Migration]:
    """The steps after version `current`, checking that versions run 1, 2, 3, ... without gaps."""
    expected = list(range(1, len(steps) + 1))
    if [s.version for s in steps] != expected:
        raise ValueError(f"migration versions must be {expected}, got {[s.version for s in steps]}")
    if current > len(steps):
        raise ValueError(
            f"the database has schema version {current}, newer than this trackid knows ({len(steps)}); upgrade trackid"
        )
    return list(steps[current:])
