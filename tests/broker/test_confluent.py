"""confluent-kafka (librdkafka) as the oracle: produce and consume in a group."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
def test_confluent_produce_and_group_consume(broker, idempotent: bool) -> None:
    topic = f"rd-{idempotent}"
    delivered: list[int] = []

    def on_delivery(err, msg) -> None:
        assert err is None, err
        delivered.append(msg.offset())

    p = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "enable.idempotence": idempotent,
            "acks": "all",
            "linger.ms": 5,
        }
    )
    for i in range(1000):
        p.produce(topic, value=f"r{i}".encode(), key=b"k", on_delivery=on_delivery)
    assert p.flush(20) == 0
    assert sorted(delivered) == list(range(1000))

    c = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"rd-group-{idempotent}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(got) < 1000 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        assert m.error() is None, m.error()
        got.append(m.value())
    c.commit(asynchronous=False)
    c.close()
    assert got == [f"r{i}".encode() for i in range(1000)]
