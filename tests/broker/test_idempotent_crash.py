"""kafka-python's idempotent producer keeps sending through a kill -9 and restart of the
broker: its retries of batches that were written before the crash are recognised from
the sequence state rebuilt from the log, so every record lands exactly once."""

from __future__ import annotations

import warnings
from collections import Counter

import pytest

# kafka-python 3.0 reads its protocol schemas with the legacy importlib.resources API.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "(read|open)_text is deprecated", DeprecationWarning)
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:(read|open)_text is deprecated:DeprecationWarning"),
]

N = 6000


def test_idempotent_producer_through_kill9_writes_each_record_exactly_once(broker) -> None:
    p = KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        acks="all",
        linger_ms=2,
        batch_size=4096,
        retry_backoff_ms=50,
        request_timeout_ms=5000,
    )
    assert p.config["enable_idempotence"]
    futures = []
    for i in range(N):
        futures.append(p.send("exactly", value=f"e{i}".encode()))
        if i == N // 2:
            broker.kill9()  # batches are in flight: some written, none answered
            broker.start()
    p.flush(60)
    p.close()
    failed = [f for f in futures if f.failed()]
    assert not failed, f"{len(failed)} sends failed, e.g. {failed[0].exception!r}"

    c = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000
    )
    tp = TopicPartition("exactly", 0)
    c.assign([tp])
    end = c.end_offsets([tp])[tp]
    got = Counter()
    for m in c:
        got[m.value] += 1
        if m.offset + 1 >= end:
            break
    c.close()
    assert end == N, f"log holds {end} records for {N} sends"
    assert got == Counter(f"e{i}".encode() for i in range(N))
