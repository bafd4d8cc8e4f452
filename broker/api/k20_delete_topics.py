"""DeleteTopics (key 20), v0-3. v1 adds throttle_time_ms."""

from __future__ import annotations

from broker import errors
from broker.api.registry import RequestContext, handler
from broker.cluster import TopicError
from broker.codec.primitives import Reader, Writer


@handler(api_key=20, versions=(0, 3))
async def delete_topics(ctx: RequestContext, r: Reader) -> bytes:
    names = r.array(lambda r: r.string())
    r.int32()  # timeout_ms
    results: list[tuple[str, int]] = []
    for name in names:
        try:
            ctx.state.cluster.delete_topic(name)
            results.append((name, errors.NONE))
        except TopicError as exc:
            results.append((name, exc.code))
    w = Writer()
    if ctx.version >= 1:
        w.int32(0)
    w.int32(len(results))
    for name, code in results:
        w.string(name).int16(code)
    return w.getvalue()
