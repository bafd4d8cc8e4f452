"""Processes and Kafka/Redis helpers for the streams integration tests.

Real processes on free ports: streams workers (``python -m streams``) against the Kafka
``SYNCPIPE_TEST_KAFKA`` selects (tests/kafka_modes.py). Nothing sleeps for a fixed time:
every wait polls a condition until a deadline.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from schemas.topics import entity_key
from streams.lww import EntityRecord, Op, apply, public_state
from tests.kafka_modes import EmbeddedKafka
from tests.processes import REPO, free_port, kill9, terminate


def wait_until_sync(predicate: Callable[[], bool], deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {deadline_s}s waiting for {what}")


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], deadline_s: float, what: str, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {deadline_s}s waiting for {what}")


class Process:
    """A subprocess with its output in a log file, killable and restartable."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.argv, self.env, self.log_path = argv, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=REPO, env={**os.environ, **self.env}, stdout=log, stderr=log
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        kill9(self.proc)

    def stop(self) -> None:
        terminate(self.proc, grace_s=20)


# The embedded broker as a process: ``Broker(data_dir)``, ``start()``, ``stop()``, ``kill9()``,
# ``bootstrap``. Tests get their Kafka from the ``kafka`` fixture instead (any mode); this
# name stays for perf/bench_streams.py and other direct users.
Broker = EmbeddedKafka


class Worker(Process):
    """A ``python -m streams`` worker; ``metrics()`` scrapes its /metrics."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.metrics_port = free_port()
        env = {**env, "SYNCPIPE_STREAMS_METRICS_PORT": str(self.metrics_port)}
        super().__init__([sys.executable, "-m", "streams"], env, log_path)

    def metrics(self) -> dict[str, float]:
        """Samples by ``name{label="v",...}`` (labels sorted)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as resp:
            text = resp.read().decode()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return out


def op_record(
    *,
    op_id: str,
    client_id: str,
    entity_id: str,
    hlc: str,
    fields: dict[str, Any] | None = None,
    kind: str = "upsert",
    tenant: str = "acme",
    collection: str = "tasks",
    received_at_ms: int | None = None,
) -> dict[str, Any]:
    return {
        "op_id": op_id,
        "client_id": client_id,
        "collection": collection,
        "entity_id": entity_id,
        "kind": kind,
        "fields": fields if kind == "upsert" else None,
        "hlc": hlc,
        "tenant": tenant,
        "user_id": f"user-{client_id}",
        "received_at_ms": int(time.time() * 1000) if received_at_ms is None else received_at_ms,
    }


def hlc(wall_ms: int, node: str, counter: int = 0) -> str:
    return f"{wall_ms:015d}-{counter:04x}-{node}"


def key_of(op: dict[str, Any]) -> bytes:
    return entity_key(op["tenant"], op["collection"], op["entity_id"]).encode()


async def produce(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=k, value=v) for k, v in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def produce_ops(bootstrap: str, topic: str, ops: Iterable[dict[str, Any]]) -> None:
    await produce(bootstrap, topic, ((key_of(op), orjson.dumps(op)) for op in ops))


class TopicReader:
    """Reads every partition of a topic from the start, accumulating records."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.records: list[Any] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicReader:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
        )
        await self._consumer.start()
        parts = self._consumer.partitions_for_topic(self.topic)
        if not parts:
            await self._consumer._client.force_metadata_update()
            parts = self._consumer.partitions_for_topic(self.topic) or set()
        assert parts, f"topic {self.topic} has no partitions"
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    async def poll(self) -> list[Any]:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=100)
        for batch in batches.values():
            self.records.extend(batch)
        return self.records

    async def wait_for(
        self, predicate: Callable[[list[Any]], bool], deadline_s: float, what: str
    ) -> list[Any]:
        async def check() -> bool:
            return predicate(await self.poll())

        await wait_until(check, deadline_s, f"{what} on {self.topic}", interval=0)
        return self.records

    def values(self) -> list[dict[str, Any]]:
        return [orjson.loads(r.value) for r in self.records if r.value is not None]

    def latest_by_key(self) -> dict[bytes, dict[str, Any]]:
        """Latest value per key, by highest version when values carry one."""
        out: dict[bytes, dict[str, Any]] = {}
        for r in self.records:
            doc = orjson.loads(r.value)
            held = out.get(r.key)
            if held is None or doc.get("version", 0) >= held.get("version", 0):
                out[r.key] = doc
        return out


async def read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record currently in ``topic`` (up to the end offsets at call time)."""
    async with TopicReader(bootstrap, topic) as reader:
        assert reader._consumer is not None
        tps = list(reader._consumer.assignment())
        ends = await reader._consumer.end_offsets(tps)

        async def done() -> bool:
            await reader.poll()
            return all(
                await asyncio.gather(*(_at_end(reader._consumer, tp, ends[tp]) for tp in tps))
            )

        await wait_until(done, 30, f"reading {topic} to its end", interval=0)
        return reader.records


async def _at_end(consumer: Any, tp: TopicPartition, end: int) -> bool:
    return bool(await consumer.position(tp) >= end)


def fold(ops: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The oracle: lww.apply over ops in the given order; public state per entity key."""
    records: dict[str, EntityRecord | None] = {}
    for data in ops:
        op = Op.from_dict(data)
        key = entity_key(op.tenant, op.collection, op.entity_id)
        records[key] = apply(records.get(key), op).record
    return {k: public_state(r) for k, r in records.items() if r is not None}


async def oracle_from_log(bootstrap: str, ops_topic: str) -> dict[str, dict[str, Any]]:
    """Fold the ops topic in its real per-partition order (the order the worker sees)."""
    records = await read_all(bootstrap, ops_topic)
    ordered = sorted(records, key=lambda r: (r.partition, r.offset))
    ops = []
    for r in ordered:
        try:
            data = orjson.loads(r.value)
            Op.from_dict(data)
        except Exception:
            continue
        ops.append(data)
    return fold(ops)
