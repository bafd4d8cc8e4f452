"""Every WebSocket close code and ``error`` frame code the push service uses, in one table.

Close codes (RFC 6455 private range) tell a client whether to reconnect on its own:

====  =====================  =========  ===============================================
code  name                   reconnect  meaning and what the client should do
====  =====================  =========  ===============================================
4000  overloaded             yes        could not keep up for ``overload_grace_s`` (or
                                        its queue overflowed); a ``disconnect_notice``
                                        came first: wait ``retry_after_ms``, resubscribe
                                        with its ``cursor``
4001  idle_timeout           yes        no client frame for ``idle_timeout_ms``; send
                                        ``ping`` to keep a quiet connection open
4002  server_shutting_down   yes        this replica is stopping; reconnect (any replica)
                                        with the last cursor
4003  try_again_later        yes        too many connections on this replica; back off
                                        (with jitter) and reconnect
4500  protocol_violation     no         too many bad or too frequent frames, an oversized
                                        frame, or a malformed ``client_id``; fix the client
4501  auth_failed            no         token missing, invalid or expired; get a new token
                                        before reconnecting
4502  tenant_forbidden       no         the ``tenant`` query parameter names a tenant the
                                        token does not grant
====  =====================  =========  ===============================================

Codes 4000-4499 mean "reconnect (with backoff)", 4500-4999 "do not reconnect until
something changes". Standard codes a client may also see: 1000 normal, 1006 abnormal
(network), 1009 frame larger than the WebSocket layer's hard limit, 1011 internal error,
1012 service restart (uvicorn closes open sockets with it on shutdown: reconnect).

A connection rejected for its Origin is refused at the handshake (HTTP 403), before any
WebSocket exists, so a browser page from a foreign origin learns nothing.

``error`` frame codes are in :data:`ERRORS`; an error frame alone leaves the connection
open, the close codes above end it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

RECONNECT_RANGE: Final = range(4000, 4500)
NO_RECONNECT_RANGE: Final = range(4500, 5000)


class CloseCode(IntEnum):
    """Application close codes; see the module table for their meaning."""

    OVERLOADED = 4000
    IDLE_TIMEOUT = 4001
    SERVER_SHUTTING_DOWN = 4002
    TRY_AGAIN_LATER = 4003
    PROTOCOL_VIOLATION = 4500
    AUTH_FAILED = 4501
    TENANT_FORBIDDEN = 4502

    @property
    def reconnect(self) -> bool:
        """Whether a client should reconnect on its own after this close."""
        return self.value in RECONNECT_RANGE

    @property
    def label(self) -> str:
        """Lowercase name, used as the metric label and the close reason prefix."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One ``error`` frame code: stable ``code`` string and what the client should do."""

    code: str
    meaning: str


ERRORS: Final[dict[str, ErrorCode]] = {
    e.code: e
    for e in (
        ErrorCode("bad_json", "frame is not JSON text; send one JSON object per text frame"),
        ErrorCode("binary_frame", "binary frames are not part of the protocol; send text"),
        ErrorCode("unknown_type", "'type' is not subscribe, unsubscribe or ping"),
        ErrorCode("invalid_message", "fields are missing or malformed; the message says which"),
        ErrorCode("frame_too_large", "frame exceeds max_frame_bytes; the connection closes"),
        ErrorCode("rate_limited", "more than max_client_messages_per_s; the connection closes"),
        ErrorCode("too_many_subscriptions", "max_subscriptions reached; unsubscribe first"),
        ErrorCode("snapshot_unavailable", "the read model is unreachable; retry subscribe"),
        ErrorCode("auth_failed", "token missing, invalid or expired; the connection closes"),
        ErrorCode("tenant_forbidden", "token does not grant that tenant; the connection closes"),
        ErrorCode("try_again_later", "too many connections; the connection closes"),
    )
}


def error_code(code: str) -> str:
    """Return ``code`` after checking it is in the table (typos fail loudly in tests)."""
    if code not in ERRORS:
        raise KeyError(f"unknown push error code {code!r}: add it to push.close_codes.ERRORS")
    return code
