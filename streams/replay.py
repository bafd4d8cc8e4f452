"""Operator replays: rebuild, shadow, diff, dump and load.

The log is the source of truth; everything downstream of ``ops`` can be rebuilt from it.
Every replay applies ops with the worker's own :class:`streams.processing.Reconciler`, so
a replay computes exactly what the worker computes.

rebuild (workers stopped)::

    ops [0, end) ──reconcile in memory──► rebuilt records
        compare with the live entities topic ──► differ? stop, change nothing
        append rebuilt records to the table changelog (recovery keeps the last per key)
        write the read model into staging hashes, then RENAME each over the live one

Safe to interrupt at any point: before the changelog append nothing has changed; a
partial append leaves every entity at either its live or its rebuilt record, which are
equal; staging hashes are only renamed once complete, one collection at a time, atomically.

shadow: reprocess ``ops`` (from an offset or a time) into a second set of topics under
another prefix; ``diff`` then compares shadow and live entities.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from schemas.readmodel import entities_key
from schemas.settings import SharedSettings
from schemas.topics import Topics
from streams import kafka_io
from streams.errors import BrokerUnavailableError, ReplayError, WorkersRunningError
from streams.lww import EntityRecord, content, public_state
from streams.processing import Reconciler, Rejection, decode, dlq_record, parse_stored
from streams.provision import changelog_topic, ensure_topics, group_id
from streams.readmodel import ReadModelUnavailableError

log = logging.getLogger(__name__)


@dataclass
class Reprocessed:
    """The table a replay built: stored record bytes per entity key, and its partition."""

    stored: dict[bytes, bytes] = field(default_factory=dict)
    partition: dict[bytes, int] = field(default_factory=dict)
    ops: int = 0
    rejected: int = 0

    def states(self) -> dict[bytes, dict[str, Any]]:
        return {k: public_state(parse_stored(v).record) for k, v in self.stored.items()}


Emit = Callable[[str, bytes | None, bytes], None]


async def reprocess(
    bootstrap: str,
    topics: Topics,
    *,
    start: Mapping[int, int] | None = None,
    end: Mapping[int, int] | None = None,
    emit: Emit | None = None,
    label: str = "reprocessing ops",
) -> Reprocessed:
    """Reconcile ``ops`` in ``[start, end)`` per partition into an empty in-memory table.

    ``emit(role, key, value)`` receives every output (role: entities, conflicts, receipts,
    ops_dlq), as the worker would produce it.
    """
    out = Reprocessed()
    reconciler = Reconciler()
    c = await kafka_io.consumer(bootstrap)
    try:
        tps = await kafka_io.partitions(c, topics.ops)
        starts, ends = await kafka_io.bounds(c, tps, dict(start or {}))
        if end is not None:
            ends = {p: min(ends[p], end.get(p, 0)) for p in ends}
        bar = kafka_io.Progress(label, sum(max(0, ends[p] - starts[p]) for p in starts))
        async for record in kafka_io.read_range(c, topics.ops, starts, ends):
            bar.advance()
            op = decode(record.key, record.value)
            if isinstance(op, Rejection):
                out.rejected += 1
                if emit:
                    value = dlq_record(
                        op,
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        key=record.key,
                        value=record.value,
                    )
                    emit("ops_dlq", record.key, value)
                continue
            out.ops += 1
            result = reconciler.reconcile(op, out.stored.get)
            if result.stored is not None:
                out.stored[result.key] = result.stored
                out.partition[result.key] = record.partition
            if emit:
                if result.state is not None:
                    emit("entities", result.key, result.state)
                if result.conflict is not None:
                    emit("conflicts", result.key, result.conflict)
                emit("receipts", result.receipt_key, result.receipt)
        bar.finish()
    finally:
        await c.stop()
    return out


@dataclass(frozen=True)
class Diff:
    """How two sets of entity states differ (keys are entity keys)."""

    same: int
    only_left: list[str]
    only_right: list[str]
    different: list[str]

    @property
    def identical(self) -> bool:
        return not (self.only_left or self.only_right or self.different)

    def summary(self, left: str = "live", right: str = "replay") -> str:
        lines = [
            f"{self.same} entities identical; {len(self.different)} differ; "
            f"{len(self.only_left)} only in {left}; {len(self.only_right)} only in {right}"
        ]
        for name, keys in (
            ("differ", self.different),
            (f"only in {left}", self.only_left),
            (f"only in {right}", self.only_right),
        ):
            lines.extend(f"  {name}: {k}" for k in keys[:20])
        return "\n".join(lines)


def compare(
    left: Mapping[bytes, dict[str, Any]],
    right: Mapping[bytes, dict[str, Any]],
    *,
    content_only: bool = False,
) -> Diff:
    """Compare states; ``content_only`` ignores version and arrival bookkeeping."""

    def view(state: dict[str, Any]) -> Any:
        return content(EntityRecord.from_dict(state)) if content_only else state

    both = left.keys() & right.keys()
    different = sorted(k.decode() for k in both if view(left[k]) != view(right[k]))
    return Diff(
        same=len(both) - len(different),
        only_left=sorted(k.decode() for k in left.keys() - right.keys()),
        only_right=sorted(k.decode() for k in right.keys() - left.keys()),
        different=different,
    )


async def _live_members(bootstrap: str, group: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        (response,) = await admin.describe_consumer_groups([group])
    except (KafkaError, OSError) as exc:
        raise BrokerUnavailableError(f"cannot reach Kafka at {bootstrap}: {exc!r}") from exc
    finally:
        await admin.close()
    groups = response.to_object()["groups"]
    return sum(len(g["members"]) for g in groups if g["group"] == group)


@dataclass(frozen=True)
class RebuildReport:
    ops: int
    entities: int
    diff: Diff
    read_model_written: int
    applied: bool


async def rebuild(shared: SharedSettings, app_id: str, *, force: bool = False) -> RebuildReport:
    """Rebuild the table and the read model from ``ops`` and prove they reproduce live state.

    Reprocesses all of ``ops``, compares with the live entities topic and, only when identical (or
    ``force``), installs the rebuilt table and read model. Workers must be stopped.
    """
    if not shared.redis_url:
        raise ReplayError("SYNCPIPE_REDIS_URL is not set: cannot rebuild the read model")
    topics, bootstrap = shared.topics, shared.kafka_bootstrap
    group = group_id(topics, app_id)
    members = await _live_members(bootstrap, group)
    if members:
        raise WorkersRunningError(
            f"consumer group {group!r} has {members} live member(s); stop the streams "
            "workers, then run the rebuild again"
        )
    # Up to the end of ops, not the group's committed offsets: reading those with
    # OffsetFetch from an admin client left the embedded broker's group unable to feed
    # the next worker (see the streams report). Ops past the committed offsets are
    # re-applied as duplicates by the worker, so the installed table stays consistent;
    # live entities lagging behind them show up in the comparison.
    rebuilt = await reprocess(bootstrap, topics, label="rebuilding from ops")
    c = await kafka_io.consumer(bootstrap)
    try:
        live = await kafka_io.latest_by_key(c, topics.entities, progress=True)
    finally:
        await c.stop()
    states = rebuilt.states()
    diff = compare(live, states)
    if not diff.identical and not force:
        return RebuildReport(rebuilt.ops, len(states), diff, 0, applied=False)
    await _install_table(bootstrap, topics, app_id, rebuilt)
    written = await _install_read_model(shared, states)
    return RebuildReport(rebuilt.ops, len(states), diff, written, applied=True)


async def _install_table(bootstrap: str, topics: Topics, app_id: str, rebuilt: Reprocessed) -> None:
    topic = changelog_topic(topics, app_id)
    p = await kafka_io.producer(bootstrap)
    try:
        bar = kafka_io.Progress(f"writing {topic}", len(rebuilt.stored))
        for key, value in rebuilt.stored.items():
            await p.send(topic, key=key, value=value, partition=rebuilt.partition[key])
            bar.advance()
        await p.flush()
        bar.finish()
    finally:
        await p.stop()


async def _install_read_model(
    shared: SharedSettings, states: Mapping[bytes, dict[str, Any]]
) -> int:
    if not shared.redis_url:
        raise ReplayError("SYNCPIPE_REDIS_URL is not set: cannot rebuild the read model")
    by_hash: dict[str, dict[str, bytes]] = {}
    for state in states.values():
        key = entities_key(shared.redis_prefix, state["tenant"], state["collection"])
        by_hash.setdefault(key, {})[state["entity_id"]] = orjson.dumps(state)
    client = aioredis.from_url(shared.redis_url)
    try:
        return await _write_read_model(client, by_hash)
    except RedisError as exc:
        raise ReadModelUnavailableError(
            f"writing the read model failed: {exc}; the table is rebuilt, run the "
            "rebuild again once Redis is reachable (it is idempotent)"
        ) from exc
    finally:
        await client.aclose()


async def _write_read_model(client: aioredis.Redis, by_hash: dict[str, dict[str, bytes]]) -> int:
    bar = kafka_io.Progress("rebuilding read model", len(by_hash))
    for key, fields in by_hash.items():
        staging = f"{key}:rebuild"
        await client.delete(staging)
        items = list(fields.items())
        for i in range(0, len(items), 1000):
            await client.hset(staging, mapping=dict(items[i : i + 1000]))
        await client.rename(staging, key)  # atomic swap of one collection
        bar.advance()
    bar.finish()
    return sum(len(f) for f in by_hash.values())


async def shadow(
    shared: SharedSettings,
    shadow_prefix: str,
    *,
    partitions: int,
    from_offset: int | None = None,
    from_time_ms: int | None = None,
) -> Reprocessed:
    """Reprocess live ``ops`` into the topics under ``shadow_prefix``."""
    live, target = shared.topics, Topics(shadow_prefix)
    if target.prefix == live.prefix:
        raise ReplayError("the shadow prefix must differ from SYNCPIPE_TOPIC_PREFIX")
    bootstrap = shared.kafka_bootstrap
    names = (target.entities, target.conflicts, target.receipts, target.ops_dlq)
    await ensure_topics(bootstrap, target, partitions=partitions, names=names)
    start = await _start_offsets(bootstrap, live.ops, from_offset, from_time_ms)
    p = await kafka_io.producer(bootstrap)
    pending: list[Any] = []
    topic_of = {
        "entities": target.entities,
        "conflicts": target.conflicts,
        "receipts": target.receipts,
        "ops_dlq": target.ops_dlq,
    }

    def emit(role: str, key: bytes | None, value: bytes) -> None:
        pending.append((topic_of[role], key, value))

    try:
        result = await reprocess(bootstrap, live, start=start, emit=emit, label="shadow replay")
        bar = kafka_io.Progress(f"writing {target.prefix}*", len(pending))
        for topic, key, value in pending:
            await p.send(topic, key=key, value=value)
            bar.advance()
        await p.flush()
        bar.finish()
    finally:
        await p.stop()
    return result


async def _start_offsets(
    bootstrap: str, topic: str, from_offset: int | None, from_time_ms: int | None
) -> dict[int, int] | None:
    if from_offset is None and from_time_ms is None:
        return None
    c = await kafka_io.consumer(bootstrap)
    try:
        tps = await kafka_io.partitions(c, topic)
        if from_offset is not None:
            return {tp.partition: from_offset for tp in tps}
        found = await c.offsets_for_times(dict.fromkeys(tps, from_time_ms))
        ends = await c.end_offsets(tps)
        return {tp.partition: found[tp].offset if found[tp] else ends[tp] for tp in tps}
    finally:
        await c.stop()


async def diff(bootstrap: str, live_prefix: str, shadow_prefix: str, *, content_only: bool) -> Diff:
    """Compare the entities topics of the live and the shadow prefix."""
    c = await kafka_io.consumer(bootstrap)
    try:
        left = await kafka_io.latest_by_key(c, Topics(live_prefix).entities, progress=True)
        right = await kafka_io.latest_by_key(c, Topics(shadow_prefix).entities, progress=True)
    finally:
        await c.stop()
    return compare(left, right, content_only=content_only)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


async def dump(bootstrap: str, topic: str, path: Path) -> int:
    """Write every record of ``topic`` as JSON lines; the file appears only when complete."""
    tmp = path.with_name(f".{path.name}.partial")
    count = 0
    c = await kafka_io.consumer(bootstrap)
    try:
        tps = await kafka_io.partitions(c, topic)
        starts, ends = await kafka_io.bounds(c, tps)
        bar = kafka_io.Progress(f"dumping {topic}", sum(ends[p] - starts[p] for p in starts))
        try:
            f = tmp.open("wb")
        except OSError as exc:
            raise ReplayError(f"cannot write {path}: {exc.strerror or exc}") from exc
        with f:
            async for r in kafka_io.read_range(c, topic, starts, ends):
                line = {
                    "partition": r.partition,
                    "offset": r.offset,
                    "timestamp_ms": r.timestamp,
                    "key": _b64(r.key),
                    "value": _b64(r.value),
                }
                f.write(orjson.dumps(line) + b"\n")
                count += 1
                bar.advance()
        bar.finish()
        os.replace(tmp, path)
    finally:
        await c.stop()
        tmp.unlink(missing_ok=True)
    return count


@dataclass(frozen=True, slots=True)
class DumpRecord:
    """One line of a dump file, decoded."""

    partition: int | None
    key: bytes | None
    value: bytes | None


def read_dump(path: Path) -> list[DumpRecord]:
    """Parse a whole dump file; a :class:`ReplayError` names the first bad line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror or exc}") from exc
    records = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(_dump_record(line))
        except ValueError as exc:
            raise ReplayError(
                f"{path}:{number}: {exc}; expected a line written by `syncpipe replay dump` "
                '({"partition": int, "key": base64|null, "value": base64|null, ...}); '
                "nothing was loaded"
            ) from exc
    return records


def _dump_record(line: bytes) -> DumpRecord:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"not a JSON object but {type(doc).__name__}")
    missing = [k for k in ("key", "value") if k not in doc]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    partition = doc.get("partition")
    if partition is not None and (isinstance(partition, bool) or not isinstance(partition, int)):
        raise ValueError(f"partition must be an integer, got {partition!r}")
    return DumpRecord(partition, _unb64(doc, "key"), _unb64(doc, "value"))


def _unb64(doc: dict[str, Any], name: str) -> bytes | None:
    text = doc[name]
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError(f"{name} must be base64 text or null, got {text!r}")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"{name} is not valid base64 ({exc})") from exc


async def load(bootstrap: str, path: Path, topic: str) -> int:
    """Produce every record of a dump to ``topic`` (keeping partitions when they exist).

    The whole file is parsed first, so a malformed line loads nothing.
    """
    records = await asyncio.to_thread(read_dump, path)
    c = await kafka_io.consumer(bootstrap)
    try:
        count_partitions = len(await kafka_io.partitions(c, topic))
    finally:
        await c.stop()
    p = await kafka_io.producer(bootstrap)
    try:
        bar = kafka_io.Progress(f"loading {topic}", len(records))
        for r in records:
            keep = (
                r.partition if r.partition is not None and r.partition < count_partitions else None
            )
            await p.send(topic, key=r.key, value=r.value, partition=keep)
            bar.advance()
        await p.flush()
        bar.finish()
    finally:
        await p.stop()
    return len(records)
