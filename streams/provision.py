"""Create the topics streams uses, with the right configs, before the worker starts.

Faust declares only its internal topics (the table changelog, the assignor topic); a
source topic it merely subscribes to would be auto-created by the broker with one
partition. So the worker creates ``ops``, ``entities`` (``cleanup.policy=compact``),
``conflicts``, ``receipts`` and ``ops.dlq`` itself when they are missing, and sizes its
table by the partitions ``ops`` really has (the changelog must match its source).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from schemas.topics import Topics
from streams.errors import BrokerUnavailableError, TopicSetupError

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
COMPACT = {"cleanup.policy": "compact"}


def changelog_topic(topics: Topics, app_id: str) -> str:
    """Faust's name for the ``entities`` table changelog of this app."""
    return f"{group_id(topics, app_id)}-entities-changelog"


def group_id(topics: Topics, app_id: str) -> str:
    """The Faust app id, which is also the consumer group id."""
    return f"{topics.prefix}{app_id}"


async def ensure_topics(
    bootstrap: str,
    topics: Topics,
    *,
    partitions: int,
    replication_factor: int = 1,
    names: Iterable[str] | None = None,
    timeout_s: float = 30.0,
) -> int:
    """Create missing topics; return the partition count of ``ops``."""
    wanted = list(names) if names is not None else list(topics.all())
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if missing:
            await _create(admin, topics, missing, partitions, replication_factor)
        return await _partitions(admin, topics.ops)
    except (KafkaError, OSError, TimeoutError) as exc:
        raise BrokerUnavailableError(
            f"could not set up topics on {bootstrap}: {exc!r}; is the broker running?"
        ) from exc
    finally:
        await admin.close()


async def _create(
    admin: AIOKafkaAdminClient,
    topics: Topics,
    names: list[str],
    partitions: int,
    replication_factor: int,
) -> None:
    new = [
        NewTopic(
            name,
            partitions,
            replication_factor,
            topic_configs=COMPACT if topics.is_compacted(name) else {},
        )
        for name in names
    ]
    response = await admin.create_topics(new)
    for name, code, *rest in response.topic_errors:
        if code not in (0, TOPIC_ALREADY_EXISTS):
            message = rest[0] if rest else ""
            raise TopicSetupError(f"creating topic {name!r} failed: error {code} {message}")
        log.info("topic ready", extra={"topic": name, "partitions": partitions})


async def _partitions(admin: AIOKafkaAdminClient, topic: str) -> int:
    described = await admin.describe_topics([topic])
    for entry in described:
        if entry["topic"] == topic and entry["error_code"] == 0 and entry["partitions"]:
            return len(entry["partitions"])
    raise TopicSetupError(f"topic {topic!r} has no partitions after creation: {described!r}")
