"""FindCoordinator (key 10), v0-2.

v1 adds key_type (0 group, 1 transaction), throttle and error_message. This node
coordinates every group. Transactions are not served, so key_type 1 gets
COORDINATOR_NOT_AVAILABLE.
"""

from __future__ import annotations

from broker import errors
from broker.api.k03_metadata import advertised_host
from broker.api.registry import RequestContext, handler
from broker.codec.primitives import Reader, Writer


@handler(api_key=10, versions=(0, 2))
async def find_coordinator(ctx: RequestContext, r: Reader) -> bytes:
    v = ctx.version
    r.string()  # key: the group id
    key_type = r.int8() if v >= 1 else 0
    w = Writer()
    if v >= 1:
        w.int32(0)
    if key_type != 0:
        w.int16(errors.COORDINATOR_NOT_AVAILABLE)
        if v >= 1:
            w.nullable_string("transactions are not supported by the embedded broker")
        return w.int32(-1).string("").int32(-1).getvalue()
    w.int16(errors.NONE)
    if v >= 1:
        w.nullable_string(None)
    w.int32(ctx.state.node_id).string(advertised_host(ctx.state.settings.host))
    return w.int32(ctx.state.advertised_port).getvalue()
