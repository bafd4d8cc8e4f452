"""Writing pre-built WebSocket frames straight to the connection's transport.

The ASGI path costs, per frame and socket: a message dict, ``bytes.decode`` then
``str.encode`` of the payload, uvicorn's ``send`` coroutine (an ``Event`` wait, state
checks), websockets building and serializing a ``Frame`` and joining its output, then
``transport.write``. In a fanout every socket gets the same bytes, and a server frame is
unmasked (RFC 6455 section 5.1), so the whole frame can be built once
(:func:`text_frame`) and handed to each socket's transport as it is.

:func:`direct_writer` does that for uvicorn's websockets-sansio protocol, the one push
runs on (:func:`push.app.uvicorn_config`): it recognizes the protocol behind the ASGI
``send`` and returns a function that writes a frame when the connection is open and its
transport is not paused (the client reads fast enough), and returns False otherwise, so
the caller falls back to the ASGI ``send`` (which waits for the transport to drain).
Writing whole frames beside the sans-I/O protocol object is safe: it keeps no state
about outgoing data frames except fragmentation, which push never uses, and control
frames it writes (pings, close) are whole frames too, written from the same thread.
Under any other server :func:`direct_writer` returns None and every frame takes the
ASGI path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from starlette.types import Send
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

FrameWriter = Callable[[bytes], bool]

_TEXT_FIN: Final = 0x81  # FIN + opcode 1 (text)


def text_frame(payload: bytes) -> bytes:
    """``payload`` (UTF-8 JSON) as one final, unmasked text frame."""
    n = len(payload)
    if n < 126:
        header = bytes((_TEXT_FIN, n))
    elif n < 1 << 16:
        header = bytes((_TEXT_FIN, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((_TEXT_FIN, 127)) + n.to_bytes(8, "big")
    return header + payload


class WireCache:
    """:func:`text_frame` of the last payload, reused while the same bytes object comes
    back (every subscriber of a fanout pass writes the same payload object)."""

    __slots__ = ("_payload", "_wire")

    def __init__(self) -> None:
        self._payload = b""
        self._wire = text_frame(b"")

    def frame(self, payload: bytes) -> bytes:
        if payload is not self._payload:
            self._payload = payload
            self._wire = text_frame(payload)
        return self._wire


def direct_writer(send: Send) -> FrameWriter | None:
    """A writer of whole frames to the transport behind ``send``, if it is uvicorn's
    websockets-sansio protocol; None otherwise (use the ASGI ``send``)."""
    protocol = getattr(send, "__self__", None)
    if not isinstance(protocol, WebSocketsSansIOProtocol):
        return None
    writable, ws = protocol.writable, protocol.conn

    def write(frame: bytes) -> bool:
        if (
            writable.is_set()
            and ws.state is State.OPEN
            and not protocol.close_sent
            and not protocol.disconnected
        ):
            protocol.transport.write(frame)
            return True
        return False

    return write
