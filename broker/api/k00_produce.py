"""Produce (key 0), v3-8: record batch v2 only.

v3: transactional_id. v5: log_start_offset in the response. v8: record_errors and
error_message. Batches are CRC-checked, deduplicated for idempotent producers, given
offsets and written as received. With acks=1/-1 the response waits for the fsync
policy (one group commit covers every produce in flight); acks=0 gets no response.
"""

from __future__ import annotations

import logging

from broker import errors
from broker.api.registry import RequestContext, handler
from broker.codec import records
from broker.codec.primitives import Reader, Writer
from broker.errors import DecodeError
from broker.log.partition import AppendResult

log = logging.getLogger(__name__)

PartitionResult = tuple[int, AppendResult, int, str | None]  # index, result, log start, msg


def _partition(r: Reader) -> tuple[int, memoryview | None]:
    return r.int32(), r.nullable_bytes()


def _topic(r: Reader) -> tuple[str, list[tuple[int, memoryview | None]]]:
    return r.string(), r.array(_partition)


def _append(
    ctx: RequestContext, topic: str, index: int, data: memoryview | None, txn: str | None
) -> PartitionResult:
    cluster = ctx.state.cluster
    t = cluster.get_or_create(topic, allow_create=True)
    part = t.partitions[index] if t is not None and 0 <= index < len(t.partitions) else None
    if part is None:
        return index, AppendResult(errors.UNKNOWN_TOPIC_OR_PARTITION), -1, None
    if txn is not None:
        return (
            index,
            AppendResult(errors.TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
            -1,
            ("transactions are not supported by the embedded broker"),
        )
    if data is None or len(data) == 0:
        return index, AppendResult(errors.INVALID_RECORD), -1, "no record batch"
    if len(data) > part.config.max_message_bytes:
        return index, AppendResult(errors.MESSAGE_TOO_LARGE), -1, None
    batches: list[tuple[bytearray, records.BatchHeader]] = []
    try:
        for view in records.split_batches(data):
            h = records.validate(view)
            if h.is_transactional or h.is_control:
                return index, AppendResult(errors.INVALID_RECORD), -1, "transactional batch"
            batches.append((bytearray(view), h))
    except DecodeError as exc:
        log.warning(
            "corrupt batch rejected",
            extra={
                "topic": topic,
                "partition": index,
                "client_id": ctx.client_id,
                "error": str(exc),
            },
        )
        return index, AppendResult(errors.CORRUPT_MESSAGE), -1, str(exc)
    result = part.append(batches)
    return index, result, part.log_start_offset, None


@handler(api_key=0, versions=(3, 8))
async def produce(ctx: RequestContext, r: Reader) -> bytes | None:
    v = ctx.version
    txn = r.nullable_string()
    acks = r.int16()
    r.int32()  # timeout_ms: a single node never waits for replicas
    topics = r.array(_topic)
    out: list[tuple[str, list[PartitionResult]]] = []
    for name, parts in topics:
        res: list[PartitionResult] = []
        for index, data in parts:
            if acks not in (0, 1, -1):
                res.append((index, AppendResult(errors.INVALID_REQUIRED_ACKS), -1, None))
            else:
                res.append(_append(ctx, name, index, data, txn))
        out.append((name, res))
    if acks == 0:
        return None
    if ctx.state.flusher.acks_wait and any(
        a.error == errors.NONE for _, results in out for _, a, _, _ in results
    ):
        await ctx.state.flusher.durable()
    w = Writer()
    w.int32(len(out))
    for name, results in out:
        w.string(name).int32(len(results))
        for index, appended, log_start, msg in results:
            w.int32(index).int16(appended.error).int64(appended.base_offset)
            w.int64(appended.log_append_time)
            if v >= 5:
                w.int64(log_start)
            if v >= 8:
                w.int32(0).nullable_string(msg)
    w.int32(0)
    return w.getvalue()
