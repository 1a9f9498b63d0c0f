"""How the multi-camera service reaches Redis: settings, one connection factory, one backoff, the stream names.

Every process of the service (edge workers, central linkers) connects through `connect` and retries through
`Backoff` (redis-py's equal-jitter exponential backoff), so the reconnect policy lives in one place: the first
retry after `backoff_initial_s`, doubling to `backoff_max_s`, each wait drawn between half and all of it so that a
restarted broker is not hit by every camera in the same millisecond. Nothing gives up: a process that loses the
broker waits and tries again, and says so in its log once per outage, not once per try.

The password is read from the environment variable `password_env` (default `TRACKID_REDIS_PASSWORD`) or a
`password_file`, never from the YAML itself, and never logged: a URL is logged with its password masked.
Streams, one per site so that sites partition across central consumers (Redis Cluster: the `{site}` hash tag keeps
a site's stream, dead letters and lease on one shard):
- `<prefix>:{<site>}:tracklets`: the cameras' messages (`trackid.pipelines.multicam.messages`);
- `<prefix>:{<site>}:dead`: malformed messages with the reason;
- `<prefix>:{<site>}:lease`: which central consumer owns the site now.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt
from redis import Redis
from redis.backoff import EqualJitterBackoff

from trackid.run_folder import mask_password

__all__ = ["GROUP", "Backoff", "BrokerConfig", "connect", "dead_key", "lease_key", "stream_key"]

GROUP = "linkers"
"""The consumer group every central linker joins."""
log = logging.getLogger(__name__)


class BrokerConfig(BaseModel):
    """The site file's `broker:` block: where Redis is and how to talk to it."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field("redis://localhost:6379/0", description="redis:// or rediss:// (TLS) URL, without password.")
    username: str | None = Field(None, description="ACL user (Redis 6+); None: the default user.")
    password_env: str = Field(
        "TRACKID_REDIS_PASSWORD", description="Environment variable holding the password (unset: no password)."
    )
    password_file: Path | None = Field(None, description="File holding the password (read at connect; wins).")
    tls: bool = Field(False, description="Use TLS (also implied by a rediss:// URL).")
    tls_ca_file: Path | None = Field(None, description="CA bundle to check the server's certificate against.")
    prefix: str = Field("trackid", min_length=1, description="Key prefix of the service's streams.")
    socket_timeout_s: PositiveFloat = Field(5.0, description="Seconds a command may take before it counts as lost.")
    backoff_initial_s: PositiveFloat = Field(0.1, description="First reconnect wait.")
    backoff_max_s: PositiveFloat = Field(5.0, description="Longest reconnect wait; a restarted broker is seen within.")
    resend_window_s: PositiveFloat = Field(
        10.0,
        description="After a reconnect an edge sends again what it sent this long before the loss: Redis's AOF "
        "(appendfsync everysec) may lose the last second of writes it acknowledged; the linker drops duplicates.",
    )
    max_stream_length: PositiveInt = Field(
        1_000_000, description="Entries a site stream may hold; the linker trims what every consumer acknowledged."
    )

    def password(self) -> str | None:
        if self.password_file is not None:
            return self.password_file.read_text().strip()
        return os.environ.get(self.password_env) or None

    def masked_url(self) -> str:
        return mask_password(self.url)


class Backoff:
    """Waits between reconnect tries: `next()` gives the next wait, `reset()` after a success."""

    def __init__(self, config: BrokerConfig) -> None:
        self._policy = EqualJitterBackoff(cap=config.backoff_max_s, base=config.backoff_initial_s)
        self.failures = 0

    def next(self) -> float:
        self.failures += 1
        return float(self._policy.compute(self.failures))

    def reset(self) -> None:
        self.failures = 0


def connect(config: BrokerConfig, *, name: str) -> Redis:
    """A client for `config` (connecting lazily: the first command connects, and raises if it cannot)."""
    options: dict[str, Any] = {
        "username": config.username,
        "password": config.password(),
        "socket_timeout": config.socket_timeout_s,
        "socket_connect_timeout": config.socket_timeout_s,
        "client_name": name,
        "health_check_interval": 10,
    }
    url = config.url
    if config.tls and url.startswith("redis://"):
        url = "rediss://" + url.removeprefix("redis://")
    if url.startswith("rediss://") and config.tls_ca_file is not None:
        options["ssl_ca_certs"] = str(config.tls_ca_file)
    return Redis.from_url(url, **options)


def stream_key(config: BrokerConfig, site: str) -> str:
    return f"{config.prefix}:{{{site}}}:tracklets"


def dead_key(config: BrokerConfig, site: str) -> str:
    return f"{config.prefix}:{{{site}}}:dead"


def lease_key(config: BrokerConfig, site: str) -> str:
    return f"{config.prefix}:{{{site}}}:lease"
