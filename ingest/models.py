"""Response bodies of ingest's own endpoints (the op contract is in ``schemas``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.generated.entity_state_schema import EntityState


class EntityPage(BaseModel):
    """One page of a collection from the read model."""

    model_config = ConfigDict(frozen=True)

    entities: list[EntityState] = Field(
        description=(
            "Entities of this page, in no particular order. A page holds about 'limit' "
            "entities (it may hold a few more or fewer, and an entity updated during the "
            "scan may appear twice: keep the higher version)."
        )
    )
    cursor: str | None = Field(
        description=(
            "Opaque cursor of the next page: send it back as ?cursor=. null when this was "
            "the last page."
        )
    )


class Health(BaseModel):
    """Liveness: the process serves HTTP."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Readiness: the broker and Redis both answer."""

    ready: bool
    checks: dict[str, str] = Field(
        description="Per dependency ('broker', 'redis'): 'ok' or why it is not reachable."
    )
