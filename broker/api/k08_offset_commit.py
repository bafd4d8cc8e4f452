"""OffsetCommit (key 8), v2-7.

v2-4: retention_time_ms (ignored; offsets_retention_ms applies). v3: throttle.
v6: committed_leader_epoch. v7: group_instance_id. Generation -1 with no member is a
"simple" commit, allowed for a group without members (operator resets). The response
waits until the commits are fsynced (group policy).
"""

from __future__ import annotations

from broker import errors
from broker.api.registry import RequestContext, handler
from broker.codec.primitives import Reader, Writer

Part = tuple[int, int, int, str | None]  # partition, offset, leader epoch, metadata


@handler(api_key=8, versions=(2, 7))
async def offset_commit(ctx: RequestContext, r: Reader) -> bytes:
    v = ctx.version
    group_id = r.string()
    generation = r.int32()
    member_id = r.string()
    if v >= 7:
        r.nullable_string()
    if v <= 4:
        r.int64()

    def part(r: Reader) -> Part:
        index = r.int32()
        offset = r.int64()
        epoch = r.int32() if v >= 6 else -1
        return index, offset, epoch, r.nullable_string()

    topics = r.array(lambda r: (r.string(), r.array(part)))
    err = ctx.state.groups.commit_allowed(group_id, generation, member_id)
    if not group_id:
        err = errors.INVALID_GROUP_ID
    results: list[tuple[str, list[tuple[int, int]]]] = []
    rows: list[tuple[str, int, int, int, str | None]] = []
    for name, parts in topics:
        res = []
        for index, offset, epoch, meta in parts:
            code = err
            if code == errors.NONE and ctx.state.cluster.partition(name, index) is None:
                code = errors.UNKNOWN_TOPIC_OR_PARTITION
            if code == errors.NONE:
                rows.append((name, index, max(offset, 0), epoch, meta))
            res.append((index, code))
        results.append((name, res))
    if rows:
        ctx.state.offsets.commit(group_id, rows)
        await ctx.state.flusher.durable()
    w = Writer()
    if v >= 3:
        w.int32(0)
    w.int32(len(results))
    for name, res in results:
        w.string(name).int32(len(res))
        for index, code in res:
            w.int32(index).int16(code)
    return w.getvalue()
