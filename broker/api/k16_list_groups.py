"""ListGroups (key 16), v0-2. v1 adds throttle. Groups known only by committed offsets
are listed too (with an empty protocol type), as Kafka does."""

from __future__ import annotations

from broker import errors
from broker.api.registry import RequestContext, handler
from broker.codec.primitives import Reader, Writer


@handler(api_key=16, versions=(0, 2))
async def list_groups(ctx: RequestContext, r: Reader) -> bytes:
    groups = {gid: g.protocol_type for gid, g in ctx.state.groups.groups.items()}
    for gid in ctx.state.offsets.groups():
        groups.setdefault(gid, "")
    w = Writer()
    if ctx.version >= 1:
        w.int32(0)
    w.int16(errors.NONE).int32(len(groups))
    for gid, ptype in sorted(groups.items()):
        w.string(gid).string(ptype)
    return w.getvalue()
