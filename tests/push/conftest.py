"""Push fixtures: real uvicorn servers on free ports (in this process), real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from push.settings import PushSettings
from schemas.settings import SharedSettings
from tests.push.helpers import PushServer, serve_push


@pytest.fixture
def shared(redis_server_url: str, redis_prefix: str) -> SharedSettings:
    return SharedSettings(redis_url=redis_server_url, redis_prefix=redis_prefix)


PushFactory = Callable[..., Awaitable[PushServer]]


@pytest.fixture
async def push_factory(shared: SharedSettings) -> AsyncIterator[PushFactory]:
    """Start push servers with given settings overrides; all stopped after the test."""
    stack: list[Any] = []

    async def start(
        *, shared_settings: SharedSettings | None = None, **overrides: Any
    ) -> PushServer:
        cm = serve_push(PushSettings(**overrides), shared_settings or shared)
        stack.append(cm)
        return await cm.__aenter__()

    yield start
    for cm in reversed(stack):
        await cm.__aexit__(None, None, None)


@pytest.fixture
async def push_server(push_factory: PushFactory) -> PushServer:
    return await push_factory(sweep_interval_s=0.02)
