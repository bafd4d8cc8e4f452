"""Ingest's Redis pool: a burst of requests larger than the pool waits for connections."""

from __future__ import annotations

import asyncio

import pytest

from tests.ingest.conftest import IngestFactory
from tests.ingest.helpers import make_op

pytestmark = pytest.mark.timeout(60)


async def test_more_concurrent_requests_than_redis_connections_all_succeed(
    ingest_factory: IngestFactory,
) -> None:
    ingest = await ingest_factory(redis_max_connections=2, rate_limit_ops_per_s=100_000.0)
    batches = [[make_op(entity_id=f"burst{i}")] for i in range(40)]

    responses = await asyncio.gather(*(ingest.post_ops(batch) for batch in batches))

    assert [r.status_code for r in responses] == [202] * len(batches), [
        r.text for r in responses if r.status_code != 202
    ]
    statuses = {r.json()["results"][0]["status"] for r in responses}
    assert statuses == {"accepted"}
    assert len(await ingest.consume(len(batches))) == len(batches)
