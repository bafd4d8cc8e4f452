"""Request header v1 and response header v0: the only headers of non-flexible versions.

A flexible request (header v2) starts with the same four fields, which is all the
KIP-511 ApiVersions fallback needs: we read api_key, api_version, correlation_id and
client_id and never look at the tagged fields that follow.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from broker.codec.primitives import Reader
from broker.errors import DecodeError

_RESP = struct.Struct(">ii")


@dataclass(frozen=True, slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


def parse_request_header(frame: bytes | memoryview) -> tuple[RequestHeader, Reader]:
    """Decode the header; return it and a reader positioned at the body."""
    r = Reader(frame)
    api_key = r.int16()
    api_version = r.int16()
    correlation_id = r.int32()
    try:
        client_id = r.nullable_string()
    except DecodeError:
        client_id = None
    return RequestHeader(api_key, api_version, correlation_id, client_id), r


def frame_response(correlation_id: int, body: bytes) -> bytes:
    """Size-prefixed response with a v0 header (correlation id only)."""
    return _RESP.pack(len(body) + 4, correlation_id) + body
