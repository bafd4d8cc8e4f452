"""One WebSocket session on ``GET /v1/ws``: handshake checks, then reader and writer.

Connecting
----------
``ws://host:port/v1/ws?client_id=<device id>&token=<jwt>``, or the token in the
subprotocol header ``Sec-WebSocket-Protocol: bearer, <jwt>`` (browsers cannot set
Authorization on a WebSocket; the server then answers with subprotocol ``bearer``).

* ``client_id`` (optional): the device id the client puts in its ops
  (``[A-Za-z0-9_.:-]{1,64}``). Conflicts and receipts of ops with that client id (and the
  token's user) are delivered to this connection; without it, none are.
* ``tenant`` (optional): if given it must equal the token's tenant (else 4502).

Checks in order: Origin (not allowed: HTTP 403 at the handshake), token (4501),
tenant (4502), client_id (4500), connection limit (4003). A rejected connection gets an
``error`` frame saying why before the close. Then ``hello`` is the first message.

Client frames are handled one at a time, in order. Bad frames (non-JSON, binary, unknown
type, invalid fields) are answered with ``error`` and counted; after ``max_bad_frames`` of
them, or any frame over ``max_frame_bytes``, or more than ``max_client_messages_per_s``
(bucket of twice that), the connection is closed with 4500. Codes: :mod:`push.close_codes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import orjson
from pydantic import ValidationError
from starlette.types import Message, Send
from starlette.websockets import WebSocket

from push import frames
from push.close_codes import CloseCode, error_code
from push.conflation import Item, Kind
from push.connection import Connection, Limits
from push.errors import SnapshotUnavailableError
from push.hub import Hub
from push.metrics import PushMetrics
from push.settings import PushSettings
from push.snapshot import SnapshotReader
from push.wire import direct_writer
from push.writer import Writer, run_writer
from schemas.auth import AuthError, verify_token
from schemas.generated.push_schema import SubscribeMessage, UnsubscribeMessage
from schemas.hlc import HlcClock
from schemas.messages import CLIENT_MESSAGE
from schemas.settings import SharedSettings

CLIENT_ID_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
CLIENT_TYPES: Final = frozenset({"subscribe", "unsubscribe", "ping"})
SNAPSHOT_ATTEMPTS: Final = 3


@dataclass(frozen=True, slots=True)
class Deps:
    """What every session needs, built once by the app factory."""

    settings: PushSettings
    shared: SharedSettings
    hub: Hub
    snapshots: SnapshotReader
    metrics: PushMetrics
    hlc: HlcClock
    limits: Limits
    hello_limits: dict[str, int | float]
    clock: Callable[[], float]
    wall_ms: Callable[[], float]


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """No Origin (not a browser), same origin, '*' or listed: allowed."""
    if origin is None or "*" in allowed or origin in allowed:
        return True
    return host is not None and urlsplit(origin).netloc == host


def bearer_token(websocket: WebSocket) -> tuple[str, str | None]:
    """The token and the subprotocol to answer with ('bearer' when it came that way)."""
    token = websocket.query_params.get("token")
    if token:
        return token, None
    protocols: list[str] = list(websocket.scope.get("subprotocols") or [])
    if "bearer" in protocols:
        i = protocols.index("bearer")
        if i + 1 < len(protocols):
            return protocols[i + 1], "bearer"
        return "", "bearer"
    return "", None


async def serve(websocket: WebSocket, deps: Deps, send: Send) -> None:
    """Run one session from handshake to close; ``send`` is the server's ASGI send, used
    directly for the fanout frames."""
    m = deps.metrics
    if not origin_allowed(
        websocket.headers.get("origin"),
        websocket.headers.get("host"),
        deps.settings.allowed_origins,
    ):
        m.connections_rejected["origin"] += 1
        await websocket.close(code=1008)  # before accept: HTTP 403
        return
    token, subprotocol = bearer_token(websocket)
    await websocket.accept(subprotocol=subprotocol)
    try:
        principal = verify_token(deps.shared, token)
    except AuthError as exc:
        await _reject(websocket, m, CloseCode.AUTH_FAILED, "auth_failed", str(exc))
        return
    params = websocket.query_params
    tenant = params.get("tenant")
    if tenant is not None and tenant != principal.tenant:
        await _reject(
            websocket,
            m,
            CloseCode.TENANT_FORBIDDEN,
            "tenant_forbidden",
            f"token does not grant tenant {tenant!r}; connect without it or use its token",
        )
        return
    client_id = params.get("client_id")
    if client_id is not None and not CLIENT_ID_RE.fullmatch(client_id):
        await _reject(
            websocket,
            m,
            CloseCode.PROTOCOL_VIOLATION,
            "invalid_message",
            "client_id must be 1-64 of A-Z a-z 0-9 _ . : - (your device id)",
        )
        return
    if len(deps.hub.connections) >= deps.settings.max_connections:
        await _reject(
            websocket,
            m,
            CloseCode.TRY_AGAIN_LATER,
            "try_again_later",
            "this replica is at its connection limit; reconnect after a backoff",
        )
        return
    now = deps.clock()
    conn = Connection(
        tenant=principal.tenant,
        user_id=principal.user_id,
        client_id=client_id,
        limits=deps.limits,
        metrics=m,
        now=now,
    )
    await _run(websocket, conn, deps, send)


async def _reject(
    websocket: WebSocket, m: PushMetrics, code: CloseCode, err: str, message: str
) -> None:
    m.connections_rejected[code.label] += 1
    m.closes[code.label] += 1
    with contextlib.suppress(Exception):
        await websocket.send_text(frames.error(error_code(err), message).decode())
        await websocket.close(code=int(code), reason=code.label)


async def _run(websocket: WebSocket, conn: Connection, deps: Deps, send: Send) -> None:
    hub, m = deps.hub, deps.metrics
    hello = frames.hello(deps.settings.app_version, deps.hlc.now().format(), deps.hello_limits)
    hub.offer(conn, Item(Kind.CONTROL, "hello", hello, deps.clock()))

    def send_text(text: str) -> Coroutine[Any, Any, None]:
        message: Message = {"type": "websocket.send", "text": text}
        sent = send(message)
        if isinstance(sent, Coroutine):  # uvicorn's send is a coroutine: drive it directly
            return sent
        return _awaiting(sent)

    async def close(code: int, reason: str) -> None:
        await websocket.close(code=code, reason=reason)

    socket_writer = Writer(
        conn, send_text, close, deps.clock, deps.wall_ms, write_frame=direct_writer(send)
    )
    writer = asyncio.create_task(_quietly(run_writer(socket_writer)))
    reader = asyncio.create_task(_quietly(_read(websocket, conn, deps)))

    def abort() -> None:
        writer.cancel()
        reader.cancel()

    hub.add(conn, abort, socket_writer)
    m.connections_opened += 1
    try:
        await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
        if reader.done() and conn.closing is not None:
            # the reader asked to close: let the writer send the error and the close
            await asyncio.wait((writer,), timeout=deps.settings.close_timeout_s)
        elif writer.done():
            # the writer sent the close: the disconnect event ends the reader
            await asyncio.wait((reader,), timeout=deps.settings.close_timeout_s)
    finally:
        hub.remove(conn)
        abort()
        await asyncio.gather(reader, writer, return_exceptions=True)


async def _awaiting(awaitable: Awaitable[None]) -> None:
    await awaitable


async def _quietly(coro: Any) -> None:
    """Socket errors end a task normally: the client went away."""
    with contextlib.suppress(Exception):
        await coro


async def _read(websocket: WebSocket, conn: Connection, deps: Deps) -> None:
    while conn.closing is None:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        await _on_frame(conn, message, deps)


async def _on_frame(conn: Connection, message: Any, deps: Deps) -> None:
    now = deps.clock()
    conn.last_client_frame_at = now
    settings = deps.settings
    if not conn.inbound.try_take(1, now):
        _violation(
            conn,
            deps,
            "rate_limited",
            f"more than {settings.max_client_messages_per_s} frames per second; slow down",
        )
        return
    text = message.get("text")
    if text is None:
        _bad(conn, deps, "binary_frame", "send JSON text frames, not binary")
        return
    if len(text) > settings.max_frame_bytes or len(text.encode()) > settings.max_frame_bytes:
        _violation(
            conn,
            deps,
            "frame_too_large",
            f"frame is larger than max_frame_bytes ({settings.max_frame_bytes})",
        )
        return
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        _bad(conn, deps, "bad_json", "frame is not JSON; send one JSON object per frame")
        return
    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind not in CLIENT_TYPES:
        _bad(
            conn,
            deps,
            "unknown_type",
            f"unknown message type {str(kind)[:40]!r}; use subscribe, unsubscribe or ping",
        )
        return
    try:
        msg = CLIENT_MESSAGE.validate_python(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "frame"
        _bad(conn, deps, "invalid_message", f"invalid {kind}: {where}: {first['msg']}")
        return
    if isinstance(msg, SubscribeMessage):
        await _subscribe(conn, msg, deps)
    elif isinstance(msg, UnsubscribeMessage):
        deps.hub.unsubscribe(conn, msg.collection)
    else:
        deps.hub.offer(conn, Item(Kind.CONTROL, "pong", frames.PONG, now))


def _bad(conn: Connection, deps: Deps, code: str, message: str) -> None:
    """Answer a rejected frame with ``error``; too many of them end the connection."""
    deps.metrics.client_frames_rejected[code] += 1
    conn.bad_frames += 1
    frame = frames.error(error_code(code), message)
    if conn.bad_frames > deps.limits.max_bad_frames:
        conn.request_close(CloseCode.PROTOCOL_VIOLATION, code, deps.clock(), frame)
        return
    deps.hub.offer(conn, Item(Kind.CONTROL, "error", frame, deps.clock()))


def _violation(conn: Connection, deps: Deps, code: str, message: str) -> None:
    deps.metrics.client_frames_rejected[code] += 1
    frame = frames.error(error_code(code), message)
    conn.request_close(CloseCode.PROTOCOL_VIOLATION, code, deps.clock(), frame)


async def _subscribe(conn: Connection, msg: SubscribeMessage, deps: Deps) -> None:
    hub, collection = deps.hub, msg.collection
    if (
        collection not in conn.subscriptions
        and len(conn.subscriptions) >= deps.settings.max_subscriptions
    ):
        _bad(
            conn,
            deps,
            "too_many_subscriptions",
            f"at most {deps.settings.max_subscriptions} subscriptions; unsubscribe first",
        )
        return
    if msg.cursor is not None and hub.try_resume(conn, collection, msg.cursor):
        return
    for _ in range(SNAPSHOT_ATTEMPTS):
        read_from = dict(hub.positions)
        started = deps.clock()
        try:
            states = await deps.snapshots.read(conn.tenant, collection)
        except SnapshotUnavailableError as exc:
            _bad(conn, deps, "snapshot_unavailable", f"{exc}; retry subscribe")
            return
        deps.metrics.snapshot_read.observe(deps.clock() - started)
        if conn.closing is not None:
            return
        if hub.finish_snapshot(conn, collection, states, read_from):
            return
    _bad(
        conn,
        deps,
        "snapshot_unavailable",
        "the collection changed faster than a snapshot could be read; retry subscribe",
    )
