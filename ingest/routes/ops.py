"""POST /v1/ops: a batch of ops in, one result per op out.

The route is served by :class:`OpsEndpoint`, a plain ASGI app placed in front of FastAPI:
FastAPI's middleware, routing, request objects and dependency resolution cost more CPU
than everything else a one-op request does. The FastAPI route below stays registered, for
the OpenAPI document and for requests the endpoint passes on (an app mounted under a root
path); both run :func:`accept_ops`, and errors become the same problems either way.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import orjson
from fastapi import APIRouter, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.auth import BEARER_SECURITY, header_principal
from ingest.cors import RawHeaders, SimpleCorsHeaders
from ingest.deps import AppContext, running_service
from ingest.errors import (
    PROBLEM_MEDIA_TYPE,
    BodyTooLargeError,
    IngestError,
    InvalidBatchError,
    TooManyOpsError,
)
from ingest.problems import ProblemResponse, Problems
from ingest.routes.docs import problem_responses
from schemas.generated.op_batch_result_schema import OpBatchResult
from schemas.limits import MAX_BATCH_BYTES, MAX_BATCH_OPS

router = APIRouter(tags=["ops"])

PATH: Final = "/v1/ops"

OP_BATCH_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpBatch"}}},
    },
    "security": BEARER_SECURITY,
}
"""The body is read by hand (so one bad op never fails the batch) but documented as OpBatch;
the bearer token is read by hand too (FastAPI's dependency resolution costs more CPU than
the rest of a one-op request) but documented as the HTTPBearer scheme."""

_JSON: Final = b"application/json"
_PROBLEM_JSON: Final = PROBLEM_MEDIA_TYPE.encode()


def _too_large(size: str) -> BodyTooLargeError:
    return BodyTooLargeError(
        f"request body is {size} bytes, over the limit of {MAX_BATCH_BYTES} bytes (1 MiB); "
        "split the ops into several batches"
    )


def check_declared_length(declared: str | None) -> None:
    """Refuse a body whose Content-Length is over the limit before reading it."""
    if declared is not None and declared.isdigit() and int(declared) > MAX_BATCH_BYTES:
        raise _too_large(declared)


def parse_batch(body: bytes) -> list[Any]:
    """The raw ops of a batch body, each still unvalidated JSON."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidBatchError(f'body is not valid JSON ({exc}); send {{"ops": [...]}}') from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("ops"), list):
        raise InvalidBatchError('body must be a JSON object {"ops": [op, ...]}')
    if len(doc) > 1:
        extra = sorted(set(doc) - {"ops"})
        raise InvalidBatchError(
            f'unexpected member(s) {", ".join(extra)}: the body is {{"ops": [...]}}'
        )
    ops: list[Any] = doc["ops"]
    if not ops:
        raise InvalidBatchError(f"'ops' is empty: send 1-{MAX_BATCH_OPS} ops")
    if len(ops) > MAX_BATCH_OPS:
        raise TooManyOpsError(
            f"batch has {len(ops)} ops, over the limit of {MAX_BATCH_OPS} ops per batch; "
            "split it into several batches"
        )
    return ops


def encode_result(result: OpBatchResult) -> bytes:
    return orjson.dumps(result.model_dump(mode="json", exclude_none=True))


async def accept_ops(
    ctx: AppContext, authorization: str | None, read_body: Callable[[], Awaitable[bytes]]
) -> bytes:
    """Authenticate, read and accept a batch; the 202 body. Raises :class:`IngestError`."""
    principal = header_principal(ctx, authorization)
    service = running_service(ctx)
    raw_ops = parse_batch(await read_body())
    return encode_result(await service.accept(raw_ops, principal))


@router.post(
    PATH,
    status_code=202,
    response_model=OpBatchResult,
    summary="Submit a batch of ops",
    description=(
        "Each op is validated and answered on its own, in request order: 'accepted' (durably "
        "in the log at partition/offset), 'duplicate' (op_id seen before; the original "
        "partition/offset, nothing written twice) or 'rejected' (code: invalid_op, "
        "op_too_large, clock_skew, in_flight). Always adopt server_hlc."
    ),
    responses={
        202: {"description": "Every op answered; 'accepted' ones are durably in the log."},
        **problem_responses(401, 413, 422, 429, 503),
    },
    openapi_extra=OP_BATCH_BODY,
)
async def post_ops(request: Request) -> Response:
    async def read_body() -> bytes:
        check_declared_length(request.headers.get("content-length"))
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BATCH_BYTES:
                raise _too_large(f"more than {MAX_BATCH_BYTES}")
            chunks.append(chunk)
        return b"".join(chunks)

    ctx: AppContext = request.app.state.ctx
    body = await accept_ops(ctx, request.headers.get("authorization"), read_body)
    return Response(body, status_code=202, media_type="application/json")


class _ClientGoneError(Exception):
    """The client disconnected before its request body arrived."""


class OpsEndpoint:
    """``POST /v1/ops`` served as plain ASGI; every other request goes on to ``app``.

    Answers exactly like the FastAPI route would behind the app's middleware: the same
    202 body or problem+json (via ``problems``), one observation of the request-duration
    histogram, and the CORS headers of the app's CORS middleware (``cors``), if any.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        ctx: AppContext,
        problems: Problems,
        cors: SimpleCorsHeaders | None,
    ) -> None:
        self.app = app
        self._ctx = ctx
        self._problems = problems
        self._cors = cors
        self._durations: dict[int, Any] = {}  # histogram children by status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        authorization: str | None = None
        declared: str | None = None
        origin: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"content-length":
                if declared is None:
                    declared = value.decode("latin-1")
            elif name == b"origin" and origin is None:
                origin = value.decode("latin-1")

        async def read_body() -> bytes:
            check_declared_length(declared)
            return await _read_body(receive)

        problem: ProblemResponse | None = None
        try:
            body = await accept_ops(self._ctx, authorization, read_body)
        except IngestError as exc:
            problem = self._problems.of_error(exc, PATH)
        except _ClientGoneError:
            return
        except Exception as exc:
            problem = self._problems.unexpected(exc, PATH)
        if problem is None:
            status = 202
            headers: RawHeaders = [(b"content-type", _JSON)]
        else:
            status, body = problem.status, problem.body
            headers = [(b"content-type", _PROBLEM_JSON)]
            headers += [(k.lower().encode(), v.encode()) for k, v in problem.headers.items()]
        headers.append((b"content-length", str(len(body)).encode()))
        if self._cors is not None:
            headers += await self._cors.for_origin(origin)
        start: Message = {"type": "http.response.start", "status": status, "headers": headers}
        await send(start)
        await send({"type": "http.response.body", "body": body})
        duration = self._durations.get(status)
        if duration is None:
            metrics = self._ctx.metrics.request_seconds
            duration = self._durations[status] = metrics.labels("POST", PATH, str(status))
        duration.observe(time.perf_counter() - started)


async def _read_body(receive: Receive) -> bytes:
    """The whole request body, refused (413) as soon as it passes the limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGoneError
        chunk: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        if not chunks and not more:
            if len(chunk) > MAX_BATCH_BYTES:
                raise _too_large(f"more than {MAX_BATCH_BYTES}")
            return chunk
        size += len(chunk)
        if size > MAX_BATCH_BYTES:
            raise _too_large(f"more than {MAX_BATCH_BYTES}")
        chunks.append(chunk)
        if not more:
            return b"".join(chunks)
