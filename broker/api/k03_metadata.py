"""Metadata (key 3), v0-8.

v0: topics array, empty = all. v1+: null = all; adds rack, controller_id, is_internal.
v2: cluster_id. v3: throttle. v4: allow_auto_topic_creation (earlier versions always
auto-create, as Kafka does). v5: offline_replicas. v7: leader_epoch. v8: authorized
operations (we answer INT32_MIN, "not requested"). We advertise 127.0.0.1 rather than
localhost because librdkafka may resolve localhost to ::1.
"""

from __future__ import annotations

from broker import errors
from broker.api.registry import RequestContext, handler
from broker.cluster import valid_topic_name
from broker.codec.primitives import Reader, Writer

OMITTED_OPERATIONS = -(2**31)


def advertised_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "localhost", "::", "::1") else host


@handler(api_key=3, versions=(0, 8))
async def metadata(ctx: RequestContext, r: Reader) -> bytes:
    v = ctx.version
    requested = r.nullable_array(lambda r: r.string()) if v >= 1 else r.array(lambda r: r.string())
    if v == 0 and not requested:
        requested = None
    allow_auto = r.boolean() if v >= 4 else True
    cluster = ctx.state.cluster
    node = ctx.state.node_id

    names = sorted(cluster.topics) if requested is None else requested
    w = Writer()
    if v >= 3:
        w.int32(0)
    w.int32(1).int32(node).string(advertised_host(ctx.state.settings.host))
    w.int32(ctx.state.advertised_port)
    if v >= 1:
        w.nullable_string(None)
    if v >= 2:
        w.nullable_string(ctx.state.settings.cluster_id)
    if v >= 1:
        w.int32(node)
    w.int32(len(names))
    for name in names:
        topic = cluster.get_or_create(name, allow_auto) if valid_topic_name(name) else None
        if topic is None:
            code = (
                errors.UNKNOWN_TOPIC_OR_PARTITION
                if valid_topic_name(name)
                else errors.INVALID_TOPIC_EXCEPTION
            )
            w.int16(code).string(name)
            if v >= 1:
                w.boolean(False)
            w.int32(0)
        else:
            w.int16(errors.NONE).string(name)
            if v >= 1:
                w.boolean(False)
            w.int32(len(topic.partitions))
            for p in topic.partitions:
                w.int16(errors.NONE).int32(p.index).int32(node)
                if v >= 7:
                    w.int32(0)
                w.int32(1).int32(node).int32(1).int32(node)
                if v >= 5:
                    w.int32(0)
        if v >= 8:
            w.int32(OMITTED_OPERATIONS)
    if v >= 8:
        w.int32(OMITTED_OPERATIONS)
    return w.getvalue()
