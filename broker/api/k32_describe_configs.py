"""DescribeConfigs (key 32), v0-2.

v1: include_synonyms, config_source replaces is_default, synonyms list. Topics
(resource type 2) report every config we know with its effective value, overrides
marked as dynamic topic configs; the broker (type 4) reports its defaults.
"""

from __future__ import annotations

from broker import errors
from broker.api.registry import RequestContext, handler
from broker.codec.primitives import Reader, Writer
from broker.log.config import broker_defaults

TOPIC, BROKER = 2, 4
SOURCE_TOPIC, SOURCE_DEFAULT = 1, 5


@handler(api_key=32, versions=(0, 2))
async def describe_configs(ctx: RequestContext, r: Reader) -> bytes:
    v = ctx.version
    resources = r.array(lambda r: (r.int8(), r.string(), r.nullable_array(lambda r: r.string())))
    if v >= 1:
        r.boolean()
    defaults = broker_defaults(ctx.state.settings)
    w = Writer().int32(0).int32(len(resources))
    for rtype, name, keys in resources:
        entries: list[tuple[str, str, bool]] = []
        err, msg = errors.NONE, None
        if rtype == TOPIC:
            topic = ctx.state.cluster.topics.get(name)
            if topic is None:
                err, msg = errors.UNKNOWN_TOPIC_OR_PARTITION, f"no topic {name!r}"
            else:
                merged = defaults | topic.configs
                entries = [(k, val, k not in topic.configs) for k, val in sorted(merged.items())]
        elif rtype == BROKER:
            entries = [(k, val, True) for k, val in sorted(defaults.items())]
        else:
            err, msg = errors.INVALID_REQUEST, f"resource type {rtype} is not described"
        if keys is not None:
            entries = [e for e in entries if e[0] in keys]
        w.int16(err).nullable_string(msg).int8(rtype).string(name).int32(len(entries))
        for key, val, is_default in entries:
            w.string(key).nullable_string(val).boolean(False)
            if v == 0:
                w.boolean(is_default)
            else:
                w.int8(SOURCE_DEFAULT if is_default else SOURCE_TOPIC)
            w.boolean(False)
            if v >= 1:
                w.int32(0)
    return w.getvalue()
