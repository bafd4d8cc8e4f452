"""Prometheus metrics of the push service, cheap enough for the per-message send path.

The send path observes a few histograms per message per connection (100k+ observations
per second at full fanout), so instead of prometheus-client's locked metric objects this
module keeps plain ints and floats, updated from the one event loop, and exposes them
through a custom collector registered on a per-app registry.

Names follow ``syncpipe_push_<what>_<unit>``; counters end ``_total``, durations are
``_seconds`` histograms; every label has a small fixed set of values (never an id).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

LATENCY_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.004,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Fine below 10 ms, where the send-path SLO is, so histogram_quantile stays precise."""


class FastHistogram:
    """Bucket counts and a sum; :meth:`observe` is one bisect and two additions."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # last slot: +Inf
        self.sum = 0.0

    def observe(self, value: float, n: int = 1) -> None:
        """Record ``value`` ``n`` times (a pass observes a latency shared by n sockets)."""
        self.counts[bisect_left(self.bounds, value)] += n
        self.sum += value * n

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, float(running)))
        return out

    def quantile(self, q: float) -> float:
        """Upper bucket bound holding quantile ``q`` (what histogram_quantile approximates)."""
        total = self.count
        if total == 0:
            return 0.0
        rank, running = q * total, 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            if running >= rank:
                return bound
        return float("inf")


class PushMetrics(Collector):
    """Every push metric; the service mutates the attributes, Prometheus collects them."""

    def __init__(self) -> None:
        self.connections = 0
        self.subscriptions = 0
        self.connections_opened = 0
        self.connections_rejected: defaultdict[str, int] = defaultdict(int)
        self.closes: defaultdict[str, int] = defaultdict(int)
        self.sent_bytes = 0
        self.frames_sent = 0
        self.messages_sent: defaultdict[str, int] = defaultdict(int)
        self.messages_conflated: defaultdict[str, int] = defaultdict(int)
        self.messages_dropped: defaultdict[str, int] = defaultdict(int)
        self.throttle_events = 0
        self.disconnect_notices: defaultdict[str, int] = defaultdict(int)
        self.client_frames_rejected: defaultdict[str, int] = defaultdict(int)
        self.records: defaultdict[str, int] = defaultdict(int)
        self.records_invalid: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.subscribes: defaultdict[str, int] = defaultdict(int)
        self.queue_wait = FastHistogram()
        self.socket_write = FastHistogram()
        self.end_to_end = FastHistogram()
        self.snapshot_read = FastHistogram()
        self.flush_pass = FastHistogram()
        self.flush_pass_frames = 0

    def registry(self) -> CollectorRegistry:
        """A fresh registry holding these metrics (one per app, so tests never collide)."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        return registry

    def collect(self) -> Iterator[Metric]:
        p = "syncpipe_push_"
        yield GaugeMetricFamily(f"{p}connections", "Open WebSocket connections.", self.connections)
        yield GaugeMetricFamily(
            f"{p}subscriptions", "Active collection subscriptions.", self.subscriptions
        )
        yield CounterMetricFamily(
            f"{p}connections_opened_total",
            "WebSocket connections accepted and authenticated.",
            self.connections_opened,
        )
        yield _labeled(
            f"{p}connections_rejected_total",
            "Connection attempts refused, by reason.",
            "reason",
            self.connections_rejected,
        )
        yield _labeled(f"{p}closes_total", "Server-side closes by code name.", "code", self.closes)
        yield CounterMetricFamily(
            f"{p}sent_bytes_total", "Payload bytes written to sockets.", self.sent_bytes
        )
        yield CounterMetricFamily(
            f"{p}frames_sent_total",
            "WebSocket frames written (a batch frame counts once).",
            self.frames_sent,
        )
        yield _labeled(
            f"{p}messages_sent_total", "Messages written, by type.", "type", self.messages_sent
        )
        yield _labeled(
            f"{p}messages_conflated_total",
            "Queued messages replaced by a newer one, by reason.",
            "reason",
            self.messages_conflated,
        )
        yield _labeled(
            f"{p}messages_dropped_total",
            "Messages never sent, by reason.",
            "reason",
            self.messages_dropped,
        )
        yield CounterMetricFamily(
            f"{p}throttle_events_total",
            "Times a connection's writer had to wait for byte budget.",
            self.throttle_events,
        )
        yield _labeled(
            f"{p}disconnect_notices_total",
            "disconnect_notice messages sent, by reason.",
            "reason",
            self.disconnect_notices,
        )
        yield _labeled(
            f"{p}client_frames_rejected_total",
            "Client frames answered with an error or a close, by error code.",
            "code",
            self.client_frames_rejected,
        )
        yield _labeled(
            f"{p}records_total", "Log records consumed, by topic.", "topic", self.records
        )
        invalid = CounterMetricFamily(
            f"{p}records_invalid_total",
            "Log records skipped as undecodable, by topic and reason.",
            labels=("topic", "reason"),
        )
        for (topic, reason), n in sorted(self.records_invalid.items()):
            invalid.add_metric((topic, reason), n)
        yield invalid
        yield _labeled(
            f"{p}subscribes_total",
            "Subscribe answers, by outcome (snapshot, resumed).",
            "outcome",
            self.subscribes,
        )
        yield _histogram(
            f"{p}queue_wait_seconds",
            "Time a message waited in its connection queue before its frame was written.",
            self.queue_wait,
        )
        yield _histogram(
            f"{p}socket_write_seconds", "Time to hand one frame to the socket.", self.socket_write
        )
        yield _histogram(
            f"{p}end_to_end_seconds",
            "Ingest receive time carried in the record to socket write done.",
            self.end_to_end,
        )
        yield _histogram(
            f"{p}snapshot_read_seconds", "Time to read a snapshot from Redis.", self.snapshot_read
        )
        yield _histogram(
            f"{p}flush_pass_seconds",
            "Duration of one eager flush pass over the connections a dispatch made ready "
            "(the send-path latency of the last socket in it).",
            self.flush_pass,
        )
        yield CounterMetricFamily(
            f"{p}flush_pass_frames_total",
            "Frames written by flush passes (with flush_pass_seconds_sum: time per socket).",
            self.flush_pass_frames,
        )


def _labeled(name: str, doc: str, label: str, values: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=(label,))
    for value, n in sorted(values.items()):
        family.add_metric((value,), n)
    return family


def _histogram(name: str, doc: str, h: FastHistogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, buckets=h.cumulative(), sum_value=h.sum)
