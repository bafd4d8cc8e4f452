"""Dependencies down: 503 problem+json with Retry-After (never 500, never a false 202),
and recovery when they return."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from schemas.generated.op_record_schema import OpRecord
from tests.ingest.conftest import IngestFactory
from tests.ingest.helpers import Ingest, consume, eventually, make_op
from tests.processes import BrokerProcess, free_port

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(autouse=True)
def no_asyncio_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Abandoning a producer must not leave failed callbacks or unretrieved exceptions."""
    yield
    errors = [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def assert_unavailable(response: httpx.Response, code: str) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
    problem: dict[str, Any] = response.json()
    assert problem["code"] == code
    assert problem["type"] == f"urn:syncpipe:problem:{code}"
    assert problem["retriable"] is True
    assert problem["retry_after_s"] == 1
    return problem


async def ready(ingest: Ingest) -> httpx.Response:
    return await ingest.client.get("/readyz")


async def test_broker_down_is_503_then_recovers_without_double_writes(
    ingest_factory: IngestFactory, broker_factory: Callable[[], BrokerProcess]
) -> None:
    broker = broker_factory()
    ingest = await ingest_factory(bootstrap=broker.bootstrap, produce_timeout_s=1.5)
    first = make_op()
    assert (await ingest.post_ops([first])).status_code == 202

    broker.stop()
    ops = [make_op() for _ in range(5)]
    assert_unavailable(await ingest.post_ops(ops), "broker_unavailable")
    assert_unavailable(await ingest.post_ops(ops), "broker_unavailable")  # claims were released
    readiness = await ready(ingest)
    assert readiness.status_code == 503
    assert readiness.json()["ready"] is False
    assert readiness.json()["checks"]["redis"] == "ok"
    assert readiness.json()["checks"]["broker"] != "ok"

    broker.start()

    async def accepted() -> bool:
        response = await ingest.post_ops(ops)
        return response.status_code == 202

    await eventually(accepted, "ingest to accept ops again", within_s=30, every_s=0.2)
    assert (await ready(ingest)).status_code == 200
    again = (await ingest.post_ops([first, *ops])).json()["results"]
    assert [r["status"] for r in again] == ["duplicate"] * 6
    records = await consume(broker.bootstrap, ingest.shared.topics.ops, 6)
    op_ids = [OpRecord.model_validate_json(r.value).op_id for r in records]
    assert sorted(op_ids) == sorted(op["op_id"] for op in [first, *ops])
    metrics = (await ingest.client.get("/metrics")).text
    # At least the two above; the recovery loop may have seen more before the broker was up.
    failed = 'syncpipe_ingest_requests_failed_total{code="broker_unavailable"} '
    count = next(line for line in metrics.splitlines() if line.startswith(failed))
    assert float(count.removeprefix(failed)) >= 2
    assert 'status="500"' not in metrics


async def test_ingest_started_without_a_broker_serves_503_until_it_appears(
    ingest_factory: IngestFactory, broker_factory: Callable[[], BrokerProcess]
) -> None:
    broker = broker_factory()
    broker.stop()
    ingest = await ingest_factory(bootstrap=broker.bootstrap, produce_timeout_s=1.0)
    assert (await ingest.client.get("/healthz")).json() == {"status": "ok"}
    assert (await ready(ingest)).status_code == 503
    problem = assert_unavailable(await ingest.post_ops([make_op()]), "broker_unavailable")
    assert "nothing was written" in problem["detail"]
    broker.start()

    async def is_ready() -> bool:
        return (await ready(ingest)).status_code == 200

    await eventually(is_ready, "readyz to turn 200", within_s=30, every_s=0.2)
    answered = (await ingest.post_ops([make_op()])).json()["results"]
    assert answered[0]["status"] == "accepted"


async def test_full_producer_queue_is_503_not_a_wait(
    ingest_factory: IngestFactory, broker_factory: Callable[[], BrokerProcess]
) -> None:
    broker = broker_factory()
    ingest = await ingest_factory(
        bootstrap=broker.bootstrap, produce_timeout_s=3.0, max_inflight_ops=10
    )
    assert (await ingest.post_ops([make_op()])).status_code == 202
    broker.stop()  # acks stop coming, so the first batch stays in flight
    async with asyncio.TaskGroup() as tasks:
        stuck = tasks.create_task(ingest.post_ops([make_op() for _ in range(8)]))

        async def in_flight() -> bool:
            metrics = (await ingest.client.get("/metrics")).text
            return "syncpipe_ingest_produce_inflight_ops 8.0" in metrics

        await eventually(in_flight, "the first batch to be in flight")
        problem = assert_unavailable(
            await ingest.post_ops([make_op() for _ in range(3)]), "producer_queue_full"
        )
        assert "limit 10" in problem["detail"]
    assert_unavailable(stuck.result(), "broker_unavailable")


async def test_redis_down_is_503(ingest_factory: IngestFactory) -> None:
    ingest = await ingest_factory(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    assert_unavailable(await ingest.post_ops([make_op()]), "redis_unavailable")
    assert_unavailable(
        await ingest.client.get("/v1/collections/tasks/entities", headers=ingest.auth()),
        "redis_unavailable",
    )
    readiness = await ready(ingest)
    assert readiness.status_code == 503
    assert readiness.json()["checks"]["redis"].startswith("Redis unreachable")


async def test_broker_restart_between_requests_is_survived(
    ingest_factory: IngestFactory, broker_factory: Callable[[], BrokerProcess]
) -> None:
    broker = broker_factory()
    ingest = await ingest_factory(bootstrap=broker.bootstrap, produce_timeout_s=1.5)
    before = [make_op() for _ in range(3)]
    assert (await ingest.post_ops(before)).status_code == 202
    broker.stop()
    broker.start()
    after = [make_op() for _ in range(3)]
    statuses: list[int] = []

    async def accepted() -> bool:
        response = await ingest.post_ops(after)
        statuses.append(response.status_code)
        return response.status_code == 202

    await eventually(accepted, "ingest to accept ops after the restart", within_s=30, every_s=0.2)
    assert set(statuses) <= {202, 503}
    records = await consume(broker.bootstrap, ingest.shared.topics.ops, 6)
    op_ids = sorted(OpRecord.model_validate_json(r.value).op_id for r in records)
    assert op_ids == sorted(op["op_id"] for op in before + after)
