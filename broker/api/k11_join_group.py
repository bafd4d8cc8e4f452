"""JoinGroup (key 11), v0-5.

v1: rebalance_timeout_ms. v2: throttle. v4: a member without an id first gets
MEMBER_ID_REQUIRED with an id to rejoin with. v5: group_instance_id (static
membership: a known instance id takes over its member id). Protocol metadata is
opaque and passed to the leader untouched.
"""

from __future__ import annotations

from broker.api.registry import RequestContext, handler
from broker.codec.primitives import Reader, Writer


@handler(api_key=11, versions=(0, 5))
async def join_group(ctx: RequestContext, r: Reader) -> bytes:
    v = ctx.version
    group_id = r.string()
    session_timeout = r.int32()
    rebalance_timeout = r.int32() if v >= 1 else session_timeout
    member_id = r.string()
    instance_id = r.nullable_string() if v >= 5 else None
    protocol_type = r.string()
    protocols = r.array(lambda r: (r.string(), r.bytes_()))
    res = await ctx.state.groups.join(
        group_id=group_id,
        member_id=member_id,
        instance_id=instance_id,
        session_timeout_ms=session_timeout,
        rebalance_timeout_ms=rebalance_timeout,
        protocol_type=protocol_type,
        protocols=protocols,
        client_id=ctx.client_id,
        client_host=ctx.client_host,
        require_known_member_id=v >= 4,
    )
    w = Writer()
    if v >= 2:
        w.int32(0)
    w.int16(res.error).int32(res.generation).string(res.protocol).string(res.leader)
    w.string(res.member_id).int32(len(res.members))
    for mid, iid, meta in res.members:
        w.string(mid)
        if v >= 5:
            w.nullable_string(iid)
        w.nullable_bytes(meta)
    return w.getvalue()
