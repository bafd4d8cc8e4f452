"""POST /v1/ops: a batch of ops in, one result per op out."""

from __future__ import annotations

from typing import Any, Final

import orjson
from fastapi import APIRouter, Request, Response

from ingest.auth import BEARER_SECURITY, request_principal
from ingest.deps import AppContext, running_service
from ingest.errors import BodyTooLargeError, InvalidBatchError, TooManyOpsError
from ingest.routes.docs import problem_responses
from schemas.generated.op_batch_result_schema import OpBatchResult
from schemas.limits import MAX_BATCH_BYTES, MAX_BATCH_OPS

router = APIRouter(tags=["ops"])

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


def _too_large(size: str) -> BodyTooLargeError:
    return BodyTooLargeError(
        f"request body is {size} bytes, over the limit of {MAX_BATCH_BYTES} bytes (1 MiB); "
        "split the ops into several batches"
    )


async def read_batch(request: Request) -> list[Any]:
    """The raw ops of a batch body, each still unvalidated JSON."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BATCH_BYTES:
        raise _too_large(declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BATCH_BYTES:
            raise _too_large(f"more than {MAX_BATCH_BYTES}")
        chunks.append(chunk)
    try:
        doc = orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise InvalidBatchError(f'body is not valid JSON ({exc}); send {{"ops": [...]}}') from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("ops"), list):
        raise InvalidBatchError('body must be a JSON object {"ops": [op, ...]}')
    extra = sorted(set(doc) - {"ops"})
    if extra:
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


@router.post(
    "/v1/ops",
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
    ctx: AppContext = request.app.state.ctx
    principal = request_principal(ctx, request)
    service = running_service(ctx)
    raw_ops = await read_batch(request)
    result = await service.accept(raw_ops, principal)
    return Response(
        orjson.dumps(result.model_dump(mode="json", exclude_none=True)),
        status_code=202,
        media_type="application/json",
    )
