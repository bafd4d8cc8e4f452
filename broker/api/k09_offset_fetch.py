"""OffsetFetch (key 9), v1-5.

v2: null topics = every partition with a committed offset, and a top-level error_code.
v3: throttle. v5: committed_leader_epoch. No commit: offset -1, no error.
"""

from __future__ import annotations

from broker import errors
from broker.api.registry import RequestContext, handler
from broker.codec.primitives import Reader, Writer


@handler(api_key=9, versions=(1, 5))
async def offset_fetch(ctx: RequestContext, r: Reader) -> bytes:
    v = ctx.version
    group_id = r.string()
    topics = r.nullable_array(lambda r: (r.string(), r.array(lambda r: r.int32())))
    store = ctx.state.offsets
    if topics is None:
        by_topic: dict[str, list[int]] = {}
        for topic, index in sorted(store.for_group(group_id)):
            by_topic.setdefault(topic, []).append(index)
        topics = list(by_topic.items())
    w = Writer()
    if v >= 3:
        w.int32(0)
    w.int32(len(topics))
    for name, indexes in topics:
        w.string(name).int32(len(indexes))
        for index in indexes:
            c = store.fetch(group_id, name, index)
            w.int32(index).int64(c.offset if c else -1)
            if v >= 5:
                w.int32(c.leader_epoch if c else -1)
            w.nullable_string(c.metadata if c else "").int16(errors.NONE)
    if v >= 2:
        w.int16(errors.NONE)
    return w.getvalue()
