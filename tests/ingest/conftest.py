"""Ingest fixtures: the session's Kafka (``SYNCPIPE_TEST_KAFKA``), the real Redis, the real app.

Each test writes under its own topic prefix (``topic_prefix``, from tests/conftest.py); tests
that stop or restart a broker make private ones with ``broker_factory`` (skipped, with the
reason, when the mode is ``external``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from ingest.app import create_app
from ingest.settings import IngestSettings
from schemas.settings import SharedSettings
from tests.ingest.helpers import Ingest
from tests.kafka_modes import KafkaUnderTest


@pytest.fixture(scope="session")
def session_broker(kafka: KafkaUnderTest) -> KafkaUnderTest:
    """The session's Kafka (this package's historical name for it)."""
    return kafka


@pytest.fixture
def broker_factory(
    stoppable_kafka_factory: Callable[[], KafkaUnderTest],
) -> Callable[[], KafkaUnderTest]:
    """Private brokers for tests that stop or restart them."""
    return stoppable_kafka_factory


IngestFactory = Callable[..., Any]


@pytest.fixture
async def ingest_factory(
    redis_server_url: str, redis_prefix: str, topic_prefix: str, session_broker: KafkaUnderTest
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
