"""GET /v1/collections/{collection}/entities: pages of the Redis read model."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Path, Query

from ingest.auth import PrincipalDep
from ingest.deps import ServiceDep
from ingest.errors import InvalidRequestError
from ingest.models import EntityPage
from ingest.routes.docs import problem_responses

router = APIRouter(tags=["entities"])

MAX_PAGE: Final = 500
MAX_CURSOR: Final = 2**64 - 1  # Redis SCAN cursors are unsigned 64-bit


@router.get(
    "/v1/collections/{collection}/entities",
    response_model=EntityPage,
    summary="List a collection's entities",
    description=(
        "Entities of the caller's tenant (from the token) in one collection, a page at a time. "
        "Start without a cursor; pass each response's cursor back until it is null."
    ),
    responses=problem_responses(401, 422, 503),
)
async def list_entities(
    principal: PrincipalDep,
    service: ServiceDep,
    collection: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")],
    cursor: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{0,20}$",
            description="Cursor from the previous page; omit (or send empty) for the first page.",
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE, description="About how many entities per page.")
    ] = 100,
) -> EntityPage:
    position = int(cursor) if cursor else 0
    if position > MAX_CURSOR:
        raise InvalidRequestError(
            "invalid cursor: send back the cursor of the previous page unchanged"
        )
    return await service.list_entities(principal, collection, position, limit)
