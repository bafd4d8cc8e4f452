"""Streams fixtures: the session's Kafka, the real Redis, real ``python -m streams`` workers.

The Kafka (``SYNCPIPE_TEST_KAFKA``: embedded broker, container or external cluster) is shared
by the session; each test gets its own topic prefix, consumer group (the group id starts with
the topic prefix) and Redis prefix, so tests never see each other's records.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from schemas.readmodel import entities_key
from schemas.settings import SharedSettings
from schemas.topics import Topics
from streams.provision import ensure_topics
from streams.settings import StreamsSettings
from tests.kafka_modes import KafkaUnderTest
from tests.streams.helpers import Worker

PARTITIONS = 4


@pytest.fixture(scope="session")
def streams_broker(kafka: KafkaUnderTest) -> KafkaUnderTest:
    """The session's Kafka (this package's historical name for it)."""
    return kafka


@dataclass
class Pipeline:
    """One test's slice of the pipeline: topics, Redis prefix, workers."""

    broker: KafkaUnderTest
    redis: aioredis.Redis
    redis_url: str
    redis_prefix: str
    topics: Topics
    tmp: Path
    workers: list[Worker] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def shared(self) -> SharedSettings:
        return SharedSettings(
            kafka_bootstrap=self.bootstrap,
            redis_url=self.redis_url,
            redis_prefix=self.redis_prefix,
            topic_prefix=self.topics.prefix,
        )

    def settings(self, **overrides: Any) -> StreamsSettings:
        return StreamsSettings(**{**WORKER_SETTINGS, **overrides})

    def env(self) -> dict[str, str]:
        env = {
            "SYNCPIPE_KAFKA_BOOTSTRAP": self.bootstrap,
            "SYNCPIPE_REDIS_URL": self.redis_url,
            "SYNCPIPE_REDIS_PREFIX": self.redis_prefix,
            "SYNCPIPE_TOPIC_PREFIX": self.topics.prefix,
        }
        env.update({f"SYNCPIPE_STREAMS_{k.upper()}": str(v) for k, v in WORKER_SETTINGS.items()})
        return env

    def worker(self, start: bool = True) -> Worker:
        w = Worker(self.env(), self.tmp / f"worker-{len(self.workers)}.log")
        self.workers.append(w)
        if start:
            w.start()
        return w

    async def read_model(self, tenant: str = "acme", collection: str = "tasks") -> dict[str, Any]:
        raw = await self.redis.hgetall(entities_key(self.redis_prefix, tenant, collection))
        return {
            (k.decode() if isinstance(k, bytes) else k): orjson.loads(v) for k, v in raw.items()
        }

    def logs(self) -> str:
        return "\n".join(f"--- {w.log_path.name}\n{w.log()[-6000:]}" for w in self.workers)


WORKER_SETTINGS: dict[str, Any] = {
    "partitions": PARTITIONS,
    "session_timeout_s": 3.0,
    "commit_interval_s": 0.5,
    "lag_interval_s": 0.5,
    "materialize_linger_ms": 10,
}


@pytest.fixture
async def pipeline(
    streams_broker: KafkaUnderTest,
    redis_server_url: str,
    redis_prefix: str,
    topic_prefix: str,
    tmp_path: Path,
) -> AsyncIterator[Pipeline]:
    topics = Topics(topic_prefix)
    await ensure_topics(streams_broker.bootstrap, topics, partitions=PARTITIONS)
    client = aioredis.from_url(redis_server_url)
    p = Pipeline(streams_broker, client, redis_server_url, redis_prefix, topics, tmp_path)
    try:
        yield p
    finally:
        for w in p.workers:
            w.stop()
        await client.aclose()


@pytest.fixture
def dump_logs(pipeline: Pipeline) -> Callable[[], str]:
    return pipeline.logs
