"""push/metrics.py: names follow the convention and histograms expose quantile buckets."""

from __future__ import annotations

from prometheus_client import generate_latest

from push.metrics import FastHistogram, PushMetrics


def test_metrics_exposition_names_and_values() -> None:
    m = PushMetrics()
    m.connections = 3
    m.messages_dropped["receipt_queue_full"] += 2
    m.end_to_end.observe(0.003)
    m.records_invalid[("entities", "schema")] += 1
    text = generate_latest(m.registry()).decode()
    assert "syncpipe_push_connections 3.0" in text
    assert 'syncpipe_push_messages_dropped_total{reason="receipt_queue_full"} 2.0' in text
    assert 'syncpipe_push_end_to_end_seconds_bucket{le="0.005"} 1.0' in text
    assert 'syncpipe_push_records_invalid_total{reason="schema",topic="entities"} 1.0' in text
    for line in text.splitlines():
        if line.startswith("# TYPE"):
            _, _, name, kind = line.split()
            assert name.startswith("syncpipe_push_")
            if kind == "histogram":
                assert name.endswith("_seconds")


def test_fast_histogram_buckets_are_cumulative_with_le_semantics() -> None:
    h = FastHistogram((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 5.0):
        h.observe(v)
    assert h.cumulative() == [("0.1", 2.0), ("1.0", 3.0), ("+Inf", 4.0)]
    assert h.quantile(0.5) == 0.1
    assert h.quantile(0.75) == 1.0
    assert h.count == 4
