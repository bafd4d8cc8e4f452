"""kafka-python as the oracle: its default idempotent producer and a consumer group."""

from __future__ import annotations

import warnings

import pytest

# kafka-python 3.0 reads its protocol schemas with the legacy
# importlib.resources read_text/open_text API (deprecated since 3.11) when first imported.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "(read|open)_text is deprecated", DeprecationWarning)
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:(read|open)_text is deprecated:DeprecationWarning"),
]


def test_kafka_python_idempotent_producer_and_group_consumer(broker) -> None:
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    assert p.config["enable_idempotence"]
    futs = [p.send("kp", key=b"k", value=f"m{i}".encode()) for i in range(300)]
    p.flush()
    assert [f.get(10).offset for f in futs] == list(range(300))
    p.close()

    c = KafkaConsumer(
        "kp",
        bootstrap_servers=broker.bootstrap,
        group_id="kp-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=10_000,
    )
    got = []
    for m in c:
        got.append(m.value)
        if len(got) == 300:
            break
    c.commit()
    tp = TopicPartition("kp", 0)
    assert c.committed(tp) == 300
    c.close()
    assert got == [f"m{i}".encode() for i in range(300)]

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        assert {"group_id": "kp-group", "protocol_type": "consumer"} in admin.list_groups()
        offsets = admin.list_group_offsets("kp-group")
        assert offsets["kp-group"][tp].offset == 300
    finally:
        admin.close()
