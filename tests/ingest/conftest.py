"""Ingest fixtures: a real broker subprocess, the real Redis, the real app.

The broker is shared by the session (each test writes under its own topic prefix); tests
that stop or restart a broker make their own with ``broker_factory``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.app import create_app
from ingest.settings import IngestSettings
from schemas.settings import SharedSettings
from tests.ingest.helpers import Ingest
from tests.processes import BrokerProcess


@pytest.fixture(scope="session")
def session_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    broker = BrokerProcess(tmp_path_factory.mktemp("ingest-broker") / "data")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[[], BrokerProcess]]:
    """Private brokers for tests that stop or restart them."""
    made: list[BrokerProcess] = []

    def make() -> BrokerProcess:
        broker = BrokerProcess(tmp_path / f"broker-{len(made)}")
        broker.start()
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.stop()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


IngestFactory = Callable[..., Any]


@pytest.fixture
async def ingest_factory(
    redis_server_url: str, redis_prefix: str, topic_prefix: str, session_broker: BrokerProcess
) -> AsyncIterator[IngestFactory]:
    """Build and start ingest apps (lifespan run) with settings overrides."""
    stack: list[tuple[Any, httpx.AsyncClient]] = []

    async def make(
        *, bootstrap: str | None = None, redis_url: str | None = None, **overrides: Any
    ) -> Ingest:
        shared = SharedSettings(
            kafka_bootstrap=bootstrap or session_broker.bootstrap,
            redis_url=redis_url or redis_server_url,
            redis_prefix=redis_prefix,
            topic_prefix=topic_prefix,
        )
        settings = IngestSettings(**{"produce_timeout_s": 3.0, "retry_after_s": 1, **overrides})
        app = create_app(settings, shared)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ingest.test"
        )
        stack.append((lifespan, client))
        return Ingest(app=app, client=client, settings=settings, shared=shared)

    yield make
    for lifespan, client in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def ingest(ingest_factory: IngestFactory) -> Ingest:
    made: Ingest = await ingest_factory()
    return made
