"""Prometheus metrics of the broker, served on their own HTTP port.

Counters and histograms are updated on the request path; log end offsets and group lag
are computed at scrape time from the live state by a collector.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from broker.cluster import Cluster
    from broker.offsets import OffsetStore

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _StateCollector(Collector):
    def __init__(self, source: Callable[[], tuple[Cluster, OffsetStore] | None]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        state = self._source()
        if state is None:
            return []
        cluster, offsets = state
        leo = GaugeMetricFamily(
            "syncpipe_broker_log_end_offset",
            "Next offset to be written, per partition.",
            labels=["topic", "partition"],
        )
        size = GaugeMetricFamily(
            "syncpipe_broker_log_size_bytes",
            "Bytes on disk, per partition.",
            labels=["topic", "partition"],
        )
        lag = GaugeMetricFamily(
            "syncpipe_broker_group_lag_records",
            "High watermark minus committed offset, per group and partition.",
            labels=["group", "topic", "partition"],
        )
        try:
            for topic in list(cluster.topics.values()):
                for p in list(topic.partitions):
                    leo.add_metric([topic.name, str(p.index)], p.log_end_offset)
                    size.add_metric([topic.name, str(p.index)], p.size_bytes())
            for (group, topic_name, index), c in list(offsets.committed.items()):
                part = cluster.partition(topic_name, index)
                if part is not None:
                    lag.add_metric(
                        [group, topic_name, str(index)], max(part.high_watermark - c.offset, 0)
                    )
        except (RuntimeError, OSError):  # state changed under the scrape thread; next time
            pass
        fsyncs = CounterMetricFamily(
            "syncpipe_broker_fsyncs",
            "fsync and syncfs calls made for logs and offsets; with group commit, far fewer "
            "than produces.",
            value=cluster.flusher.fsyncs,
        )
        return [leo, size, lag, fsyncs]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "syncpipe_broker_requests_total",
            "Requests handled, by API.",
            ["api"],
            registry=self.registry,
        )
        self.errors = Counter(
            "syncpipe_broker_request_failures_total",
            "Requests that closed their connection (malformed, unsupported, handler error).",
            ["reason"],
            registry=self.registry,
        )
        self.bytes_in = Counter(
            "syncpipe_broker_received_bytes_total",
            "Request bytes received.",
            registry=self.registry,
        )
        self.bytes_out = Counter(
            "syncpipe_broker_sent_bytes_total", "Response bytes sent.", registry=self.registry
        )
        self.connections = Counter(
            "syncpipe_broker_connections_total",
            "Client connections accepted.",
            registry=self.registry,
        )
        self.produce_latency = Histogram(
            "syncpipe_broker_produce_latency_seconds",
            "Produce request time, receipt to response (includes the fsync wait).",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.fetch_latency = Histogram(
            "syncpipe_broker_fetch_latency_seconds",
            "Fetch request time, receipt to response (includes long-poll waiting).",
            buckets=(*_LATENCY_BUCKETS, 5.0, 10.0),
            registry=self.registry,
        )
        self._source: tuple[Cluster, OffsetStore] | None = None
        self.registry.register(_StateCollector(lambda: self._source))

    def watch(self, cluster: Cluster, offsets: OffsetStore) -> None:
        self._source = (cluster, offsets)

    def serve(self, host: str, port: int) -> None:
        if port:
            start_http_server(port, addr=host, registry=self.registry)
            log.info("metrics listening", extra={"host": host, "port": port})
