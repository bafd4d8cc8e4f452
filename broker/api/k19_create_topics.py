"""CreateTopics (key 19), v0-4.

v1: validate_only and error_message. v2: throttle. v4: num_partitions and
replication_factor may be -1 (broker defaults). faust sends v3 with configs such as
cleanup.policy=compact. Replication factor must be 1 (or -1): this is one node.
"""

from __future__ import annotations

from broker import errors
from broker.api.registry import RequestContext, handler
from broker.cluster import TopicError
from broker.codec.primitives import Reader, Writer

TopicReq = tuple[str, int, int, list[tuple[int, list[int]]], list[tuple[str, str | None]]]


def _topic(r: Reader) -> TopicReq:
    name = r.string()
    partitions = r.int32()
    replication = r.int16()
    assignments = r.array(lambda r: (r.int32(), r.array(lambda r: r.int32())))
    configs = r.array(lambda r: (r.string(), r.nullable_string()))
    return name, partitions, replication, assignments, configs


@handler(api_key=19, versions=(0, 4))
async def create_topics(ctx: RequestContext, r: Reader) -> bytes:
    v = ctx.version
    topics = r.array(_topic)
    r.int32()  # timeout_ms
    validate_only = r.boolean() if v >= 1 else False
    results: list[tuple[str, int, str | None]] = []
    for name, partitions, replication, assignments, configs in topics:
        if replication not in (-1, 1):
            results.append(
                (name, errors.INVALID_REPLICATION_FACTOR, "replication factor must be 1")
            )
            continue
        if assignments:
            partitions = len(assignments)
        try:
            ctx.state.cluster.create_topic(
                name,
                partitions,
                {k: val for k, val in configs if val is not None},
                validate_only=validate_only,
            )
            results.append((name, errors.NONE, None))
        except TopicError as exc:
            results.append((name, exc.code, exc.message))
    w = Writer()
    if v >= 2:
        w.int32(0)
    w.int32(len(results))
    for name, code, msg in results:
        w.string(name).int16(code)
        if v >= 1:
            w.nullable_string(msg)
    return w.getvalue()
