"""Fetch (key 1), v4-11.

v4: isolation_level, last_stable_offset, aborted_transactions. v5: log_start_offset.
v7: fetch sessions (we always answer session_id=0: no session, so clients send full
requests). v9: current_leader_epoch. v11: rack_id and preferred_read_replica.

Long polling: when fewer than min_bytes are available the request waits, woken by any
append to a requested partition, until max_wait_ms. Reads stop at the high watermark;
with no transactions the last stable offset equals it. max_bytes and the per-partition
limit are soft in the Kafka way: the first batch found is always returned whole.
"""

from __future__ import annotations

import asyncio
import time

from broker import errors
from broker.api.registry import RequestContext, handler
from broker.codec.primitives import Reader, Writer
from broker.log.partition import PartitionLog

FetchPartition = tuple[int, int, int]  # partition, fetch_offset, partition_max_bytes


def _read_partition(r: Reader, v: int) -> FetchPartition:
    index = r.int32()
    if v >= 9:
        r.int32()  # current_leader_epoch
    offset = r.int64()
    if v >= 5:
        r.int64()  # follower log_start_offset
    return index, offset, r.int32()


def _collect(
    ctx: RequestContext,
    topics: list[tuple[str, list[FetchPartition]]],
    max_bytes: int,
) -> tuple[list[tuple[str, list[tuple[int, int, PartitionLog | None, bytes]]]], int, bool]:
    cluster = ctx.state.cluster
    budget = max_bytes
    total = 0
    any_error = False
    out: list[tuple[str, list[tuple[int, int, PartitionLog | None, bytes]]]] = []
    for name, parts in topics:
        res: list[tuple[int, int, PartitionLog | None, bytes]] = []
        for index, offset, part_max in parts:
            part = cluster.partition(name, index)
            if part is None or part.closed:
                res.append((index, errors.UNKNOWN_TOPIC_OR_PARTITION, None, b""))
                any_error = True
                continue
            if budget <= 0 and total > 0:
                res.append((index, errors.NONE, part, b""))
                continue
            err, data = part.read(offset, min(part_max, max(budget, 1)))
            any_error |= err != errors.NONE
            budget -= len(data)
            total += len(data)
            res.append((index, err, part, data))
        out.append((name, res))
    return out, total, any_error


@handler(api_key=1, versions=(4, 11))
async def fetch(ctx: RequestContext, r: Reader) -> bytes:
    v = ctx.version
    r.int32()  # replica_id
    max_wait_ms = r.int32()
    min_bytes = r.int32()
    max_bytes = r.int32()
    r.int8()  # isolation_level: LSO == HW without transactions, so both read the same
    if v >= 7:
        r.int32()
        r.int32()  # session id / epoch: sessions are not offered
    topics = r.array(lambda r: (r.string(), r.array(lambda r: _read_partition(r, v))))
    if v >= 7:
        r.array(lambda r: (r.string(), r.array(lambda r: r.int32())))
    if v >= 11:
        r.string()

    deadline = time.monotonic() + max(max_wait_ms, 0) / 1000
    while True:
        out, total, any_error = _collect(ctx, topics, max_bytes)
        remaining = deadline - time.monotonic()
        if total >= max(min_bytes, 1) or any_error or remaining <= 0:
            break
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        parts = [p for _, res in out for _, _, p, _ in res if p is not None]
        for p in parts:
            p.add_waiter(fut)
        try:
            await asyncio.wait_for(fut, remaining)
        except TimeoutError:
            pass
        finally:
            for p in parts:
                p.remove_waiter(fut)

    w = Writer().int32(0)
    if v >= 7:
        w.int16(errors.NONE).int32(0)
    w.int32(len(out))
    for name, res in out:
        w.string(name).int32(len(res))
        for index, err, part, data in res:
            hw = part.high_watermark if part is not None else -1
            w.int32(index).int16(err).int64(hw).int64(hw)
            if v >= 5:
                w.int64(part.log_start_offset if part is not None else -1)
            w.int32(-1)  # aborted_transactions: null, there are none
            if v >= 11:
                w.int32(-1)
            w.nullable_bytes(data)
    return w.getvalue()
