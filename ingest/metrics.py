"""Prometheus metrics of one ingest app (own registry, so tests can build many apps).

Names follow ``syncpipe_ingest_<what>_<unit>``; labels are bounded (route templates,
status codes, error codes), never a tenant, client or op id.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS: Final = (
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
)


class IngestMetrics:
    """Every metric ingest exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.request_seconds = Histogram(
            "syncpipe_ingest_request_duration_seconds",
            "HTTP request latency, by method, route template and status.",
            ("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.produce_seconds = Histogram(
            "syncpipe_ingest_produce_duration_seconds",
            "Time from handing a batch to the Kafka producer to its acks=all acknowledgement.",
            ("outcome",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_ops = Histogram(
            "syncpipe_ingest_batch_ops",
            "Ops per POST /v1/ops batch.",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500),
            registry=r,
        )
        self.ops_accepted = Counter(
            "syncpipe_ingest_ops_accepted_total",
            "Ops written to the ops topic.",
            registry=r,
        )
        self.ops_duplicate = Counter(
            "syncpipe_ingest_ops_duplicate_total",
            "Ops answered 'duplicate' (op_id seen before; nothing written).",
            registry=r,
        )
        self.ops_rejected = Counter(
            "syncpipe_ingest_ops_rejected_total",
            "Ops answered 'rejected', by reason (the per-op code).",
            ("reason",),
            registry=r,
        )
        self.claim_waits = Counter(
            "syncpipe_ingest_claim_waits_total",
            "Times a request waited for another request writing the same op_id.",
            registry=r,
        )
        self.requests_failed = Counter(
            "syncpipe_ingest_requests_failed_total",
            "Requests answered with a problem+json error, by code.",
            ("code",),
            registry=r,
        )
        self.inflight_ops = Gauge(
            "syncpipe_ingest_produce_inflight_ops",
            "Ops handed to the producer and not yet acknowledged.",
            registry=r,
        )
