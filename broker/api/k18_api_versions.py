"""ApiVersions (key 18), v0-2, plus the KIP-511 fallback for newer versions.

v0-2 bodies are empty requests; v1+ adds throttle_time_ms to the response. A client
opening with a flexible version (kafka-python v4, librdkafka v3) gets a v0 response:
UNSUPPORTED_VERSION plus our table, from which it picks v2 or v0 and retries.
"""

from __future__ import annotations

from broker import errors
from broker.api.registry import HANDLERS, RequestContext, handler
from broker.codec.primitives import Reader, Writer

MAX_VERSION = 2


def _table(w: Writer) -> None:
    apis = sorted(HANDLERS.values(), key=lambda a: a.key)
    w.int32(len(apis))
    for api in apis:
        w.int16(api.key).int16(api.min_version).int16(api.max_version)


@handler(api_key=18, versions=(0, MAX_VERSION), any_version=True)
async def api_versions(ctx: RequestContext, r: Reader) -> bytes:
    w = Writer()
    if ctx.version > MAX_VERSION:
        w.int16(errors.UNSUPPORTED_VERSION)
        _table(w)
        return w.getvalue()
    w.int16(errors.NONE)
    _table(w)
    if ctx.version >= 1:
        w.int32(0)
    return w.getvalue()
