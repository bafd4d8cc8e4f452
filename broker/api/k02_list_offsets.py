"""ListOffsets (key 2), v1-5.

v2: isolation_level and throttle. v4: current_leader_epoch in, leader_epoch out.
timestamp -1 = latest (high watermark, which is also the last stable offset), -2 =
earliest (log start offset), otherwise the first record whose timestamp is >= it.
"""

from __future__ import annotations

from broker import errors
from broker.api.registry import RequestContext, handler
from broker.codec.primitives import Reader, Writer

LATEST, EARLIEST = -1, -2


@handler(api_key=2, versions=(1, 5))
async def list_offsets(ctx: RequestContext, r: Reader) -> bytes:
    v = ctx.version
    r.int32()  # replica_id
    if v >= 2:
        r.int8()  # isolation_level

    def part(r: Reader) -> tuple[int, int]:
        index = r.int32()
        if v >= 4:
            r.int32()
        return index, r.int64()

    topics = r.array(lambda r: (r.string(), r.array(part)))
    w = Writer()
    if v >= 2:
        w.int32(0)
    w.int32(len(topics))
    for name, parts in topics:
        w.string(name).int32(len(parts))
        for index, ts in parts:
            p = ctx.state.cluster.partition(name, index)
            if p is None:
                w.int32(index).int16(errors.UNKNOWN_TOPIC_OR_PARTITION).int64(-1).int64(-1)
            else:
                if ts == LATEST:
                    found_ts, offset = -1, p.high_watermark
                elif ts == EARLIEST:
                    found_ts, offset = -1, p.log_start_offset
                else:
                    found_ts, offset = p.lookup_timestamp(ts)
                w.int32(index).int16(errors.NONE).int64(found_ts).int64(offset)
            if v >= 4:
                w.int32(0)
    return w.getvalue()
