"""OffsetForLeaderEpoch (key 23), v2-3.

v2: current_leader_epoch and throttle. v3: replica_id. There is one leader epoch (0)
for the life of a partition, so the end offset of any epoch we know is the high
watermark; an epoch from the future is UNKNOWN_LEADER_EPOCH.
"""

from __future__ import annotations

from broker import errors
from broker.api.registry import RequestContext, handler
from broker.codec.primitives import Reader, Writer

UNKNOWN_LEADER_EPOCH = errors.code("UNKNOWN_LEADER_EPOCH")


@handler(api_key=23, versions=(2, 3))
async def offset_for_leader_epoch(ctx: RequestContext, r: Reader) -> bytes:
    if ctx.version >= 3:
        r.int32()  # replica_id
    topics = r.array(lambda r: (r.string(), r.array(lambda r: (r.int32(), r.int32(), r.int32()))))
    w = Writer().int32(0).int32(len(topics))
    for name, parts in topics:
        w.string(name).int32(len(parts))
        for index, _current, epoch in parts:
            p = ctx.state.cluster.partition(name, index)
            if p is None:
                w.int16(errors.UNKNOWN_TOPIC_OR_PARTITION).int32(index).int32(-1).int64(-1)
            elif epoch > 0:
                w.int16(UNKNOWN_LEADER_EPOCH).int32(index).int32(-1).int64(-1)
            else:
                w.int16(errors.NONE).int32(index).int32(0).int64(p.high_watermark)
    return w.getvalue()
