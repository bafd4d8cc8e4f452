"""Prometheus metrics of the streams worker (``syncpipe_streams_*``).

Each :class:`StreamsMetrics` owns its registry, so tests and replays can build their own.
Labels are bounded: receipt status, DLQ reason kind, topic role — never an id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from streams.lww_types import STATUSES
from streams.processing import REJECT_KINDS

_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class StreamsMetrics:
    """The worker's counters, histograms and gauges."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.ops_applied = Counter(
            "syncpipe_streams_ops_applied_total",
            "Ops reconciled, by receipt status.",
            ["status"],
            registry=r,
        )
        self.conflicts = Counter(
            "syncpipe_streams_conflicts_total", "Conflict events emitted.", registry=r
        )
        self.states = Counter(
            "syncpipe_streams_states_emitted_total",
            "Entity states produced to the entities topic.",
            registry=r,
        )
        self.dlq = Counter(
            "syncpipe_streams_dlq_records_total",
            "Ops records parked on ops.dlq, by reason kind.",
            ["reason"],
            registry=r,
        )
        self.apply_latency = Histogram(
            "syncpipe_streams_apply_latency_seconds",
            "From ingest receiving an op (received_at_ms) to its entity state being emitted.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "syncpipe_streams_consumer_lag_messages",
            "Records not yet processed on the partitions this worker owns, by topic role.",
            ["topic"],
            registry=r,
        )
        self.materialize_writes = Counter(
            "syncpipe_streams_materialize_states_total",
            "Entity states offered to the Redis read model, by result.",
            ["result"],
            registry=r,
        )
        self.materialize_batch = Histogram(
            "syncpipe_streams_materialize_batch_seconds",
            "Time to write one batch to the Redis read model.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        for status in STATUSES:
            self.ops_applied.labels(status)
        for kind in REJECT_KINDS:
            self.dlq.labels(kind)
        for result in ("written", "not_newer"):
            self.materialize_writes.labels(result)

    def serve(self, host: str, port: int) -> None:
        """Serve ``/metrics`` on a background thread (port 0: do nothing)."""
        if port:
            start_http_server(port, addr=host, registry=self.registry)
