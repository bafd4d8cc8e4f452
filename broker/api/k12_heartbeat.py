"""Heartbeat (key 12), v0-3. v1: throttle. v3: group_instance_id (ignored: member ids
identify members here)."""

from __future__ import annotations

from broker.api.registry import RequestContext, handler
from broker.codec.primitives import Reader, Writer


@handler(api_key=12, versions=(0, 3))
async def heartbeat(ctx: RequestContext, r: Reader) -> bytes:
    group_id = r.string()
    generation = r.int32()
    member_id = r.string()
    if ctx.version >= 3:
        r.nullable_string()
    err = ctx.state.groups.heartbeat(group_id, generation, member_id)
    w = Writer()
    if ctx.version >= 1:
        w.int32(0)
    return w.int16(err).getvalue()
