"""Compaction keeps the latest value per key and drops old tombstones; retention by bytes
and time advances the log start offset. Both run in the broker's background pass."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from broker.codec import records

pytestmark = pytest.mark.timeout(90)

FAST_CLEANUP = {"SYNCPIPE_BROKER_CLEANUP_INTERVAL_MS": "100"}


async def _create(bootstrap: str, name: str, configs: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1, topic_configs=configs)])
    finally:
        await admin.close()


async def _read_all(bootstrap: str, topic: str) -> list:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await c.start()
    tp = TopicPartition(topic, 0)
    try:
        c.assign([tp])
        await c.seek_to_beginning(tp)
        end = (await c.end_offsets([tp]))[tp]
        out: list = []
        async with asyncio.timeout(20):
            while await c.position(tp) < end:
                for msgs in (await c.getmany(timeout_ms=300)).values():
                    out.extend(msgs)
        return out
    finally:
        await c.stop()


def _log_bytes(data_dir, topic: str) -> int:
    """Bytes of the partition's segment files; a segment the cleaner deletes between the
    listing and its stat counts as gone."""
    total = 0
    for path in (data_dir / "topics" / topic / "0").glob("*.log"):
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size
    return total


async def _wait(predicate, within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.mark.parametrize("compression", [None, "gzip"], ids=["plain", "gzip"])
async def test_compacted_topic_shrinks_and_keeps_latest_per_key(broker_factory, compression):
    b = broker_factory(env=FAST_CLEANUP)
    await _create(
        b.bootstrap,
        "entities",
        {"cleanup.policy": "compact", "segment.bytes": "2048", "delete.retention.ms": "0"},
    )
    p = AIOKafkaProducer(bootstrap_servers=b.bootstrap, acks="all", compression_type=compression)
    await p.start()
    for i in range(600):
        await p.send("entities", f"v{i}".encode(), key=f"k{i % 10}".encode())
    await p.flush()
    await p.send_and_wait("entities", None, key=b"k0")  # tombstone
    filler = b""
    for _ in range(10):  # separate incompressible batches: roll past the tombstone's segment
        filler = os.urandom(300)
        await p.send_and_wait("entities", filler, key=b"filler")
    await p.stop()
    before = _log_bytes(b.data_dir, "entities")

    expected = {
        **{f"k{k}".encode(): f"v{590 + k}".encode() for k in range(1, 10)},
        b"filler": filler,
    }
    deadline = time.monotonic() + 20
    while True:  # the background pass runs every 100 ms; wait for it to catch up
        msgs = await _read_all(b.bootstrap, "entities")
        latest = {m.key: m.value for m in msgs}
        if latest == expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert latest == expected, "latest value per key, tombstoned key gone"
    assert _log_bytes(b.data_dir, "entities") < before / 2
    offsets = [m.offset for m in msgs]
    assert offsets == sorted(offsets), "offsets are preserved and ordered"
    assert len(msgs) < 100
    assert "compacted" in b.log()


async def test_retention_bytes_deletes_head_segments(broker_factory) -> None:
    b = broker_factory(env=FAST_CLEANUP)
    await _create(b.bootstrap, "short", {"segment.bytes": "2048", "retention.bytes": "4096"})
    p = AIOKafkaProducer(bootstrap_servers=b.bootstrap, acks="all", max_batch_size=512)
    await p.start()
    for i in range(300):
        await p.send("short", f"r{i:04d}".encode() * 10)
    await p.flush()
    await p.stop()
    await _wait(lambda: _log_bytes(b.data_dir, "short") <= 4096 + 2048)
    msgs = await _read_all(b.bootstrap, "short")
    assert msgs[0].offset > 0
    assert msgs[-1].offset == 299


async def test_retention_ms_deletes_old_segments(broker_factory) -> None:
    b = broker_factory(env=FAST_CLEANUP)
    await _create(b.bootstrap, "old", {"segment.bytes": "1024", "retention.ms": "60000"})
    p = AIOKafkaProducer(bootstrap_servers=b.bootstrap, acks="all", max_batch_size=512)
    await p.start()
    old = int(time.time() * 1000) - 3_600_000
    for _ in range(50):
        await p.send("old", b"o" * 100, timestamp_ms=old)
    for _ in range(5):
        await p.send("old", b"n" * 100)
    await p.flush()
    await p.stop()
    deadline = time.monotonic() + 20
    while True:  # every segment holding only hour-old records goes; a mixed one stays
        msgs = await _read_all(b.bootstrap, "old")
        if msgs[0].offset >= 40 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert msgs[0].offset >= 40, "a segment of 1 KiB holds at most 9 of these records"
    assert [m.value for m in msgs[-5:]] == [b"n" * 100] * 5


def test_plan_keeps_batches_whole_when_nothing_is_dropped(tmp_path) -> None:
    from broker.log.compaction import plan
    from broker.log.segment import Segment

    seg = Segment.create(tmp_path, 0, 4096)
    data = records.encode_batch(
        [records.Record(0, 0, b"a", b"1"), records.Record(1, 0, b"b", b"2")],
        base_offset=0,
        base_timestamp=0,
        max_timestamp=0,
    )
    seg.append(data, records.validate(data))
    assert plan([seg], now_ms=0, delete_retention_ms=0).cleaned == []
    seg.close()
