"""The job service's settings: where jobs live, what inputs they may read, who may call, and the limits.

One YAML file (`trackid serve --config service.yaml`), every key optional, plus two environment variables so that a
secret never has to sit in a file: `TRACKID_SERVICE_TOKENS` (comma-separated tokens, hashed as they are read) and
`TRACKID_SERVICE_TOKEN_HASHES` (comma-separated `sha256:<hex>`, as `trackid token` prints). Tokens are kept only as
hashes.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError, field_validator

from trackid.config import ConfigError, read_yaml, refuse_non_finite, validation_problems
from trackid.service.auth import hash_token, is_token_hash

__all__ = ["HASHES_ENV", "TOKENS_ENV", "ServiceSettings", "load_settings"]

TOKENS_ENV = "TRACKID_SERVICE_TOKENS"
HASHES_ENV = "TRACKID_SERVICE_TOKEN_HASHES"


class ServiceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Field(Path("runs/service"), description="Jobs' folders (data_dir/jobs/<id>) and the job store.")
    store: str | None = Field(
        None, description="Job store: a SQLite path or a postgresql:// URL (default data_dir/jobs.sqlite)."
    )
    queue: str | None = Field(
        None,
        description="redis:// URL of the job queue shared by workers on several machines (Redis Streams consumer "
        "group); none: workers claim queued jobs from the store, which serves one machine.",
    )
    roots: list[Path] = Field(default_factory=list, description="Folders jobs may read inputs from; none: none.")
    stores: list[str] = Field(
        default_factory=list, description="postgresql:// gallery URLs photo and gallery jobs may name."
    )
    token_hashes: list[str] = Field(default_factory=list, description="Accepted bearer tokens, as sha256:<hex>.")
    gallery: str | None = Field(
        None, description="The gallery the review page corrects: a SQLite path, or a postgresql:// URL."
    )
    review_min_travel_s: PositiveFloat | None = Field(
        None, description="Seconds of travel between sites below which the review page flags an identity."
    )
    max_request_bytes: PositiveInt = Field(1 << 20, description="Largest request body accepted (but uploads).")
    max_upload_bytes: PositiveInt = Field(1 << 30, description="Largest file `PUT /uploads/{name}` accepts.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed cross-site; none: closed.")
    heartbeat_s: PositiveFloat = Field(1.0, description="How often a worker reports a running job.")
    stale_s: PositiveFloat = Field(15.0, description="A running job silent this long is interrupted.")
    event_poll_s: PositiveFloat = Field(0.25, description="How often the event stream looks for a change.")

    @field_validator("token_hashes")
    @classmethod
    def _hashes(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not is_token_hash(v)]
        if bad:
            raise ValueError(f"not a token hash (sha256:<64 hex>, from `trackid token`): {bad[0][:20]}")
        return value

    @property
    def store_url(self) -> str:
        return self.store or str(self.data_dir / "jobs.sqlite")

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def input_roots(self) -> list[Path]:
        """The configured roots and the uploads folder."""
        return [*self.roots, self.uploads_dir.resolve()]


def load_settings(path: str | Path | None = None) -> ServiceSettings:
    """Settings from `path` (YAML; relative paths in it are read from its folder) and the environment.

    Raises:
        ConfigError: the file is missing or not YAML, a key is unknown or invalid (the message names them).
    """
    data: dict[str, object] = {}
    base = Path.cwd()
    if path is not None:
        data = read_yaml(Path(path))  # a mapping (or ConfigError)
        base = Path(path).resolve().parent
    hashes = list(data.get("token_hashes") or [])  # type: ignore[call-overload]
    hashes += [h.strip() for h in os.environ.get(HASHES_ENV, "").split(",") if h.strip()]
    hashes += [hash_token(t.strip()) for t in os.environ.get(TOKENS_ENV, "").split(",") if t.strip()]
    data["token_hashes"] = hashes
    refuse_non_finite(data, str(path or "service settings"))
    try:
        settings = ServiceSettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path or 'service settings'}: {validation_problems(exc)}") from None
    return settings.model_copy(
        update={
            "data_dir": _absolute(settings.data_dir, base),
            "roots": [_absolute(r, base).resolve() for r in settings.roots],
            "store": _absolute_store(settings.store, base),
            "gallery": _absolute_store(settings.gallery, base),
        }
    )


def _absolute_store(store: str | None, base: Path) -> str | None:
    return store if store is None or "://" in store else str(_absolute(Path(store), base))


def _absolute(path: Path, base: Path) -> Path:
    return path if path.is_absolute() else base / path
