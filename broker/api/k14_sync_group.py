"""SyncGroup (key 14), v0-3. v1: throttle. v3: group_instance_id. The leader's
assignments are stored and handed to each member untouched."""

from __future__ import annotations

from broker.api.registry import RequestContext, handler
from broker.codec.primitives import Reader, Writer


@handler(api_key=14, versions=(0, 3))
async def sync_group(ctx: RequestContext, r: Reader) -> bytes:
    group_id = r.string()
    generation = r.int32()
    member_id = r.string()
    if ctx.version >= 3:
        r.nullable_string()
    assignments = dict(r.array(lambda r: (r.string(), r.bytes_())))
    err, assignment = await ctx.state.groups.sync(group_id, generation, member_id, assignments)
    w = Writer()
    if ctx.version >= 1:
        w.int32(0)
    return w.int16(err).nullable_bytes(assignment).getvalue()
