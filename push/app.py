"""The push ASGI app: ``create_app(settings, shared)`` builds everything and wires it.

Routes: ``GET /v1/ws`` (WebSocket, :mod:`push.session`), ``/healthz`` (the process
answers), ``/readyz`` (the log source is consuming and Redis answers PING), ``/metrics``
(Prometheus, :mod:`push.metrics`). The lifespan starts the source and the sweeper
(idle timeouts, stuck writers) and, on shutdown, asks every connection to leave with a
``disconnect_notice`` and close 4002 (uvicorn itself closes sockets still open with
1012).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from push import session
from push.connection import Limits
from push.hub import Hub
from push.metrics import PushMetrics
from push.settings import PushSettings
from push.snapshot import SnapshotReader
from push.source import KafkaSource, Source
from schemas.hlc import HlcClock
from schemas.settings import SharedSettings

log = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
SourceFactory = Callable[[Hub, PushMetrics], Source]


def _wall_ms() -> float:
    return time.time() * 1000.0


def limits_of(settings: PushSettings) -> Limits:
    return Limits(
        max_bps=settings.max_bps,
        burst_bytes=settings.burst_bytes,
        overload_grace_s=settings.overload_grace_s,
        retry_after_ms=settings.retry_after_ms,
        max_queued_entities=settings.max_queued_entities,
        max_queued_conflicts=settings.max_queued_conflicts,
        max_queued_receipts=settings.max_queued_receipts,
        max_client_messages_per_s=settings.max_client_messages_per_s,
        max_bad_frames=settings.max_bad_frames,
    )


def hello_limits(settings: PushSettings) -> dict[str, int | float]:
    """The ``limits`` object of ``hello`` (PushLimits in the schema)."""
    return {
        "max_bps": settings.max_bps,
        "burst_bytes": settings.burst_bytes,
        "max_frame_bytes": settings.max_frame_bytes,
        "max_client_messages_per_s": settings.max_client_messages_per_s,
        "idle_timeout_ms": max(1, round(settings.idle_timeout_s * 1000)),
        "max_subscriptions": settings.max_subscriptions,
    }


def create_app(
    settings: PushSettings,
    shared: SharedSettings,
    *,
    source_factory: SourceFactory | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_ms: Callable[[], float] = _wall_ms,
) -> Starlette:
    """Build the push app. ``source_factory`` replaces the Kafka source (tests, benches)."""
    metrics = PushMetrics()
    registry = metrics.registry()
    hub = Hub(
        metrics=metrics,
        clock=clock,
        recent_buffer_size=settings.recent_buffer_size,
        recent_buffer_collections=settings.recent_buffer_collections,
        wall_ms=wall_ms,
    )
    if shared.redis_url is None:
        log.warning("SYNCPIPE_REDIS_URL unset; using %s", DEFAULT_REDIS_URL)
    # A blocking pool: a burst of subscribes (clients reconnecting together) waits for a
    # connection instead of failing with "Too many connections" beyond the pool size.
    pool = BlockingConnectionPool.from_url(
        shared.redis_url or DEFAULT_REDIS_URL,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
    )
    redis = Redis.from_pool(pool)
    snapshots = SnapshotReader(redis, shared.redis_prefix, settings.snapshot_scan_count, metrics)
    source: Source = (
        source_factory(hub, metrics)
        if source_factory is not None
        else KafkaSource(shared, settings, hub, metrics, clock)
    )
    deps = session.Deps(
        settings=settings,
        shared=shared,
        hub=hub,
        snapshots=snapshots,
        metrics=metrics,
        hlc=HlcClock(settings.node),
        limits=limits_of(settings),
        hello_limits=hello_limits(settings),
        clock=clock,
        wall_ms=wall_ms,
    )

    async def sweeper() -> None:
        while True:
            await asyncio.sleep(settings.sweep_interval_s)
            hub.sweep(clock(), settings.idle_timeout_s, settings.close_timeout_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(source.run(), name="push-source"),
            asyncio.create_task(sweeper(), name="push-sweeper"),
        ]
        try:
            yield
        finally:
            hub.shutdown(clock(), settings.retry_after_ms)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(settings.close_timeout_s):
                    await hub.drained()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await redis.aclose()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks = {"source": source.ready, "redis": await _redis_ok(redis, settings)}
        status = 200 if all(checks.values()) else 503
        return JSONResponse({"ready": status == 200, "checks": checks}, status_code=status)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
        ],
        lifespan=lifespan,
        middleware=[Middleware(WsEndpoint, deps=deps)],
    )
    app.state.hub = hub
    app.state.metrics = metrics
    app.state.source = source
    app.state.deps = deps
    return app


class WsEndpoint:
    """``GET /v1/ws``, served ahead of Starlette's routing and exception middleware.

    Every frame of the fanout goes through the ASGI ``send``; here it is the server's
    own, not wrapped once more per call by the exception middleware (the session
    handles its errors itself; nothing escapes it).
    """

    PATH = "/v1/ws"

    def __init__(self, app: ASGIApp, deps: session.Deps) -> None:
        self.app = app
        self.deps = deps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == self.PATH:
            await session.serve(WebSocket(scope, receive, send), self.deps, send)
        else:
            await self.app(scope, receive, send)


async def _redis_ok(redis: Redis, settings: PushSettings) -> bool:
    try:
        return bool(await asyncio.wait_for(redis.ping(), settings.redis_timeout_s))
    except (RedisError, OSError, TimeoutError):
        return False


def uvicorn_config(app: Starlette, settings: PushSettings) -> uvicorn.Config:
    """How push runs on uvicorn: the sans-I/O websockets protocol (faster than the legacy
    one), uvloop when installed, and a hard frame cap above ``max_frame_bytes`` (frames
    between the two get error + 4500 from the session; beyond it the WebSocket layer
    closes with 1009).

    permessage-deflate is off: it would compress every frame once per connection (a
    separate zlib context each), turning a serialize-once fanout into per-client CPU
    work; the byte budget counts uncompressed JSON either way."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ws="websockets-sansio",
        ws_max_size=max(4 * settings.max_frame_bytes, 64 * 1024),
        ws_per_message_deflate=False,
        lifespan="on",
        access_log=settings.access_log,
        log_config=None,
    )


def tune_gc() -> None:
    """Fewer, cheaper cyclic-GC passes for a fanout process.

    The send path allocates many short-lived container objects (queue items, batches,
    writer actions), all freed by reference counting; with default thresholds the
    collector still runs full passes over every long-lived object (connections, queues,
    buffers) often enough to add tens of ms to the send-path tail. Freeze what exists
    at startup and collect the young generation less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def run(settings: PushSettings, shared: SharedSettings) -> None:
    """Serve until interrupted."""
    app = create_app(settings, shared)
    tune_gc()
    uvicorn.Server(uvicorn_config(app, settings)).run()
