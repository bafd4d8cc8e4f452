"""InitProducerId (key 22), v0-1: producer ids for idempotent (not transactional)
producers. Ids are allocated in blocks persisted to the data dir, so they are never
reused across restarts. A transactional id is refused: transactions are not served.
"""

from __future__ import annotations

from broker import errors
from broker.api.registry import RequestContext, handler
from broker.codec.primitives import Reader, Writer


@handler(api_key=22, versions=(0, 1))
async def init_producer_id(ctx: RequestContext, r: Reader) -> bytes:
    txn_id = r.nullable_string()
    r.int32()  # transaction_timeout_ms
    w = Writer().int32(0)
    if txn_id is not None:
        return w.int16(errors.TRANSACTIONAL_ID_AUTHORIZATION_FAILED).int64(-1).int16(-1).getvalue()
    pid = ctx.state.cluster.allocate_producer_id()
    return w.int16(errors.NONE).int64(pid).int16(0).getvalue()
