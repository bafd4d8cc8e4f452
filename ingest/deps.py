"""What routes get injected: the per-app context, the service, the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from ingest.metrics import IngestMetrics
from ingest.service import IngestService
from ingest.settings import IngestSettings
from ingest.tokens import TokenCache
from schemas.settings import SharedSettings


@dataclass(slots=True)
class AppContext:
    """Everything one ingest app owns; set on ``app.state.ctx`` by the factory."""

    settings: IngestSettings
    shared: SharedSettings
    metrics: IngestMetrics
    tokens: TokenCache = field(init=False)
    service: IngestService | None = None

    def __post_init__(self) -> None:
        self.tokens = TokenCache(self.shared)


def _context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


# Dependencies are ``async def`` so FastAPI calls them inline, not in a worker thread.
async def get_context(request: Request) -> AppContext:
    return _context(request)


def running_service(ctx: AppContext) -> IngestService:
    service = ctx.service
    if service is None:  # only between app creation and lifespan start
        raise RuntimeError("ingest service not started: run the app with its lifespan")
    return service


async def get_service(request: Request) -> IngestService:
    return running_service(_context(request))


ContextDep = Annotated[AppContext, Depends(get_context)]
ServiceDep = Annotated[IngestService, Depends(get_service)]
