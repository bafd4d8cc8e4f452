"""CORS headers of simple responses, for routes answered ahead of the middleware stack."""

from __future__ import annotations

from typing import Any, Final

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send

_MAX_ORIGINS: Final = 256

RawHeaders = list[tuple[bytes, bytes]]


async def _unreachable(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("only CORSMiddleware.send is used")


class SimpleCorsHeaders:
    """The headers ``CORSMiddleware(**options)`` adds to a simple (non-preflight) response.

    They depend only on the request's ``Origin``, so the middleware itself computes them
    on a blank response, once per Origin value (up to 256 values are remembered): the
    answer is exactly the middleware's, at the cost of a dict lookup.
    """

    def __init__(self, **options: Any) -> None:
        self._cors = CORSMiddleware(_unreachable, **options)
        self._by_origin: dict[str | None, RawHeaders] = {}

    async def for_origin(self, origin: str | None) -> RawHeaders:
        known = self._by_origin.get(origin)
        if known is not None:
            return known
        sent: list[Message] = []

        async def capture(message: Message) -> None:
            sent.append(message)

        raw = [] if origin is None else [(b"origin", origin.encode("latin-1"))]
        start: Message = {"type": "http.response.start", "status": 200, "headers": []}
        await self._cors.send(start, send=capture, request_headers=Headers(raw=raw))
        headers: RawHeaders = list(sent[0]["headers"])
        if len(self._by_origin) < _MAX_ORIGINS:
            self._by_origin[origin] = headers
        return headers
