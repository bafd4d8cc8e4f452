"""The ingest app factory: wiring, lifespan, and the one place errors become HTTP.

``create_app(settings, shared)`` builds a FastAPI app that owns its Redis client, Kafka
producer, HLC and metrics registry; nothing is module-level, so tests build as many
apps as they like. Domain errors (:mod:`ingest.errors`) and the framework's own errors
are all answered as RFC 9457 ``application/problem+json`` (rendered by one
:class:`~ingest.problems.Problems`).

``POST /v1/ops`` is answered ahead of FastAPI's middleware stack by
:class:`~ingest.routes.ops.OpsEndpoint`, with the same problems, request metrics and CORS
headers; every other request goes through the stack.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from typing import Any, Final

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from redis.asyncio import BlockingConnectionPool, Redis
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.cors import SimpleCorsHeaders
from ingest.dedupe import Deduper
from ingest.deps import AppContext
from ingest.errors import HTTP_CODES, PROBLEM_MEDIA_TYPE, IngestError, Problem
from ingest.metrics import IngestMetrics
from ingest.problems import ProblemResponse, Problems
from ingest.producer import OpProducer
from ingest.ratelimit import RateLimiter
from ingest.routes import entities, health, ops
from ingest.routes.ops import OpsEndpoint
from ingest.service import IngestService, ServiceConfig
from ingest.settings import IngestSettings
from schemas.generated.op_batch_schema import OpBatch
from schemas.hlc import HlcClock
from schemas.settings import SettingsError, SharedSettings

logger = logging.getLogger(__name__)

_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def _app_version() -> str:
    try:
        return dist_version("syncpipe")
    except PackageNotFoundError:
        return "0+unknown"


class RequestMetrics:
    """Pure ASGI middleware timing every request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: IngestMetrics) -> None:
        self.app = app
        self.metrics = metrics
        # Children by (method, route, status): every label is bounded, so is this.
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"
            labels = (method, route, status)
            child = self._children.get(labels)
            if child is None:
                child = self.metrics.request_seconds.labels(method, route, str(status))
                self._children[labels] = child
            child.observe(time.perf_counter() - started)


def _problem_response(problem: ProblemResponse) -> Response:
    return Response(
        problem.body,
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _install_error_handlers(app: FastAPI, problems: Problems) -> None:
    async def on_ingest_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, IngestError)
        return _problem_response(problems.of_error(exc, request.url.path))

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        parts = [
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:3]
        ]
        return _problem_response(
            problems.render(
                status=422,
                code="invalid_request",
                title="Invalid request",
                detail="invalid request parameter(s): " + "; ".join(parts),
                retriable=False,
                instance=request.url.path,
            )
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code, title = HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
        return _problem_response(
            problems.render(
                status=exc.status_code,
                code=code,
                title=title,
                detail=str(exc.detail),
                retriable=exc.status_code >= 500,
                instance=request.url.path,
                headers=dict(exc.headers or {}),
            )
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        return _problem_response(problems.unexpected(exc, request.url.path))

    app.add_exception_handler(IngestError, on_ingest_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


class _IngestApp(FastAPI):
    """FastAPI with ``POST /v1/ops`` answered in front of its middleware stack."""

    fast_routes: Callable[[ASGIApp], ASGIApp] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return stack if self.fast_routes is None else self.fast_routes(stack)


def _openapi_with_contract(app: FastAPI) -> dict[str, Any]:
    """The generated OpenAPI document plus the models routes reference by hand."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in (OpBatch, Problem):
        js = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(js.pop("$defs", {}))
        schemas[model.__name__] = js
    app.openapi_schema = doc
    return doc


def create_app(settings: IngestSettings, shared: SharedSettings) -> FastAPI:
    """Build the ingest app; Kafka and Redis are connected when its lifespan starts."""
    redis_url = shared.redis_url
    if not redis_url:
        raise SettingsError(
            "SYNCPIPE_REDIS_URL is required by ingest (op-id dedupe, rate limits, read model)"
        )
    metrics = IngestMetrics()
    problems = Problems(metrics)
    ctx = AppContext(settings=settings, shared=shared, metrics=metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # A blocking pool: a burst of requests beyond the pool size waits for a connection
        # (up to the Redis timeout) instead of failing at once with "Too many connections".
        pool = BlockingConnectionPool.from_url(
            redis_url,
            max_connections=settings.redis_max_connections,
            timeout=settings.redis_timeout_s,
            socket_timeout=settings.redis_timeout_s,
            socket_connect_timeout=settings.redis_timeout_s,
        )
        redis = Redis.from_pool(pool)
        producer = OpProducer(
            bootstrap=shared.kafka_bootstrap,
            topic=shared.topics.ops,
            client_id=f"syncpipe-{settings.node}",
            timeout_s=settings.produce_timeout_s,
            max_inflight_ops=settings.max_inflight_ops,
            batch_bytes=settings.producer_batch_bytes,
            linger_ms=settings.producer_linger_ms,
            retry_after_s=settings.retry_after_s,
            metrics=metrics,
        )
        prefix = shared.redis_prefix
        ctx.service = IngestService(
            config=ServiceConfig(
                max_clock_skew_ms=settings.max_clock_skew_ms,
                in_flight_wait_s=settings.produce_timeout_s + 1.0,
                redis_prefix=prefix,
                retry_after_s=settings.retry_after_s,
            ),
            redis=redis,
            producer=producer,
            limiter=RateLimiter(
                redis,
                prefix=prefix,
                rate_per_s=settings.rate_limit_ops_per_s,
                burst=settings.rate_limit_burst_ops,
                retry_after_s=settings.retry_after_s,
            ),
            deduper=Deduper(
                redis,
                prefix=prefix,
                claim_ttl_s=settings.claim_ttl_s,
                ttl_s=settings.dedupe_ttl_s,
                retry_after_s=settings.retry_after_s,
            ),
            clock=HlcClock(settings.node),
            metrics=metrics,
        )
        await producer.start()
        logger.info("ingest started", extra={"topic": producer.topic, "node": settings.node})
        service = ctx.service
        try:
            yield
        finally:
            ctx.service = None
            await producer.close()
            await service.aclose()
            await redis.aclose()

    app = _IngestApp(
        title="syncpipe ingest",
        version=_app_version(),
        description=(
            "Ops in (POST /v1/ops), snapshot reads out. Errors are RFC 9457 "
            "application/problem+json with a stable 'code' (type urn:syncpipe:problem:<code>)."
        ),
        lifespan=lifespan,
        # Ingest exports Prometheus metrics (RequestMetrics) and sets up no OpenTelemetry;
        # FastAPI's native telemetry would still look up the global OTel providers on
        # every request, a measurable share of a one-op request's CPU.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.ctx = ctx
    app.include_router(ops.router)
    app.include_router(entities.router)
    app.include_router(health.router)
    _install_error_handlers(app, problems)
    cors: SimpleCorsHeaders | None = None
    if settings.cors_origins:
        cors_options: dict[str, Any] = {
            "allow_origins": settings.cors_origins,
            "allow_methods": ["GET", "POST"],
            "allow_headers": ["Authorization", "Content-Type"],
            "expose_headers": ["Retry-After"],
            "max_age": 600,
        }
        app.add_middleware(CORSMiddleware, **cors_options)
        cors = SimpleCorsHeaders(**cors_options)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.fast_routes = partial(OpsEndpoint, ctx=ctx, problems=problems, cors=cors)
    # Replacing ``app.openapi`` is FastAPI's documented hook for extending the schema;
    # mypy sees it as assigning to a method.
    app.openapi = lambda: _openapi_with_contract(app)  # type: ignore[method-assign]
    return app
