"""DescribeGroups (key 15), v0-4. v1: throttle. v3: authorized operations (we answer
INT32_MIN, "not requested"). v4: group_instance_id per member. A group known only by
its committed offsets is described as Empty; an unknown one as Dead."""

from __future__ import annotations

from broker import errors
from broker.api.registry import RequestContext, handler
from broker.codec.primitives import Reader, Writer

OMITTED_OPERATIONS = -(2**31)


@handler(api_key=15, versions=(0, 4))
async def describe_groups(ctx: RequestContext, r: Reader) -> bytes:
    v = ctx.version
    group_ids = r.array(lambda r: r.string())
    if v >= 3:
        r.boolean()
    w = Writer()
    if v >= 1:
        w.int32(0)
    w.int32(len(group_ids))
    coordinator = ctx.state.groups
    known_by_offsets = ctx.state.offsets.groups()
    for gid in group_ids:
        g = coordinator.groups.get(gid)
        if g is None:
            state = "Empty" if gid in known_by_offsets else "Dead"
            w.int16(errors.NONE).string(gid).string(state).string("").string("").int32(0)
        else:
            w.int16(errors.NONE).string(gid).string(g.state).string(g.protocol_type)
            w.string(g.protocol).int32(len(g.members))
            for m in g.members.values():
                w.string(m.member_id)
                if v >= 4:
                    w.nullable_string(m.instance_id)
                w.string(m.client_id).string(m.client_host)
                w.nullable_bytes(m.metadata(g.protocol)).nullable_bytes(m.assignment)
        if v >= 3:
            w.int32(OMITTED_OPERATIONS)
    return w.getvalue()
