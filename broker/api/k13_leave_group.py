"""LeaveGroup (key 13), v0-3. v1: throttle. v3: a batch of members (member id and
group instance id), each answered with its own error."""

from __future__ import annotations

from broker import errors
from broker.api.registry import RequestContext, handler
from broker.codec.primitives import Reader, Writer


@handler(api_key=13, versions=(0, 3))
async def leave_group(ctx: RequestContext, r: Reader) -> bytes:
    v = ctx.version
    group_id = r.string()
    if v >= 3:
        members = r.array(lambda r: (r.string(), r.nullable_string()))
    else:
        members = [(r.string(), None)]
    results = ctx.state.groups.leave(group_id, [m for m, _ in members])
    w = Writer()
    if v >= 1:
        w.int32(0)
    if v < 3:
        return w.int16(results[0]).getvalue()
    w.int16(errors.NONE).int32(len(members))
    for (mid, iid), err in zip(members, results, strict=True):
        w.string(mid).nullable_string(iid).int16(err)
    return w.getvalue()
