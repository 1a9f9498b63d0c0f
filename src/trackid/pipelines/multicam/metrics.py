"""The service's health and metrics endpoint: Prometheus' text format over HTTP, one registry per process.

`ServiceMetrics(port)` starts `prometheus_client`'s HTTP server (port 0: none), serving `/metrics`; the edge and the
central linker each own one and update it as they go:
- edge: `trackid_spool_depth` (unsent messages), `trackid_published_total`, `trackid_reconnects_total`,
  `trackid_spool_dropped_total`, `trackid_broker_up`, `trackid_frames_total`;
- central: `trackid_applied_total` (messages applied), `trackid_duplicates_total`, `trackid_dead_letters_total`,
  `trackid_late_total`, `trackid_lag_messages` (received, not yet applied), `trackid_reconnects_total`,
  `trackid_broker_up`, `trackid_commit_latency_seconds` (spooled at the edge -> committed here, a histogram),
  `trackid_sites_owned`.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["ServiceMetrics"]

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class ServiceMetrics:
    """The counters and gauges of one service process; `labels` (e.g. camera, site) go on every one."""

    def __init__(self, port: int = 0, **labels: str) -> None:
        self.registry = CollectorRegistry()
        names = list(labels)
        self._labels = labels

        def counter(name: str, text: str) -> Counter:
            return Counter(name, text, names, registry=self.registry)

        def gauge(name: str, text: str) -> Gauge:
            return Gauge(name, text, names, registry=self.registry)

        self.spool_depth = gauge("trackid_spool_depth", "Messages in the edge's spool not yet sent.")
        self.published = counter("trackid_published", "Messages the edge handed to the broker.")
        self.dropped = counter("trackid_spool_dropped", "Messages the edge's spool cap gave up (drop-oldest).")
        self.frames = counter("trackid_frames", "Frames the edge tracked.")
        self.reconnects = counter("trackid_reconnects", "Times the broker came back after a loss.")
        self.broker_up = gauge("trackid_broker_up", "1 while the broker answers, 0 while it is lost.")
        self.applied = counter("trackid_applied", "Camera messages the linker applied and committed.")
        self.duplicates = counter("trackid_duplicates", "Messages delivered again and dropped as already applied.")
        self.dead_letters = counter("trackid_dead_letters", "Malformed messages moved to the dead-letter stream.")
        self.late = counter("trackid_late", "Messages of a camera given up for silence, dropped when they came.")
        self.lag = gauge("trackid_lag_messages", "Messages received and not yet applied.")
        self.sites_owned = gauge("trackid_sites_owned", "Sites this linker holds the lease of.")
        self.latency = Histogram(
            "trackid_commit_latency_seconds",
            "Seconds from a message spooled at the edge to its frame committed by the linker.",
            names,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.port = 0
        if port:
            server, _ = start_http_server(port, registry=self.registry)
            self.port = int(server.server_port)

    def __getitem__(self, name: str) -> Any:
        """The metric `name` with this process's labels applied."""
        metric = getattr(self, name)
        return metric.labels(**self._labels) if self._labels else metric
