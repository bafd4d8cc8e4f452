"""POST /v1/ops end to end: real app, real broker process, real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from redis.asyncio import Redis

from ingest.dedupe import dedupe_key
from schemas.generated.op_batch_result_schema import OpBatchResult
from schemas.generated.op_record_schema import OpRecord
from schemas.hlc import Hlc
from schemas.limits import MAX_BATCH_BYTES, MAX_BATCH_OPS
from schemas.topics import entity_key
from tests.ingest.conftest import IngestFactory
from tests.ingest.helpers import Ingest, eventually, make_op, now_ms

pytestmark = pytest.mark.timeout(60)


def results(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 202, response.text
    OpBatchResult.model_validate_json(response.content)
    out: list[dict[str, Any]] = response.json()["results"]
    return out


async def test_accepted_ops_land_on_the_ops_topic_as_op_records(ingest: Ingest) -> None:
    ops = [make_op(entity_id=f"e{i}", fields={"title": f"t{i}", "n": i}) for i in range(20)]
    ops.append(make_op(kind="delete", entity_id="e3"))
    before = now_ms()
    response = await ingest.post_ops(ops, tenant="acme")
    answered = results(response)
    assert [r["status"] for r in answered] == ["accepted"] * 21
    assert [r["op_id"] for r in answered] == [op["op_id"] for op in ops]

    records = await ingest.consume(21)
    assert len(records) == 21
    by_op_id = {OpRecord.model_validate_json(r.value).op_id: r for r in records}
    for op, result in zip(ops, answered, strict=True):
        rec = by_op_id[op["op_id"]]
        assert (rec.partition, rec.offset) == (result["partition"], result["offset"])
        assert rec.key == entity_key("acme", op["collection"], op["entity_id"]).encode()
        doc = orjson.loads(rec.value)
        assert {k: doc[k] for k in op} == op
        assert doc["tenant"] == "acme"
        assert doc["user_id"] == "alice"
        assert before <= doc["received_at_ms"] <= now_ms()


async def test_one_bad_op_never_fails_the_batch(ingest: Ingest) -> None:
    good = [make_op() for _ in range(3)]
    bad_schema = {**make_op(), "collection": "Not Valid"}
    bad_rule = {**make_op(), "fields": None}
    ops: list[Any] = [good[0], bad_schema, good[1], "not an op", bad_rule, good[2]]
    answered = results(await ingest.post_ops(ops))
    assert [r["status"] for r in answered] == [
        "accepted",
        "rejected",
        "accepted",
        "rejected",
        "rejected",
        "accepted",
    ]
    assert answered[1]["code"] == "invalid_op"
    assert "field 'collection'" in answered[1]["message"]
    assert answered[3]["op_id"] == ""
    assert "op #3 rejected" in answered[3]["message"]
    assert "an upsert needs" in answered[4]["message"]
    assert all(r["retriable"] is False for r in answered)
    records = await ingest.consume(3)
    assert sorted(OpRecord.model_validate_json(r.value).op_id for r in records) == sorted(
        op["op_id"] for op in good
    )


async def test_tenant_comes_from_the_token_never_the_body(ingest: Ingest) -> None:
    smuggled = {**make_op(), "tenant": "victim"}
    honest = make_op()
    answered = results(await ingest.post_ops([smuggled, honest], tenant="acme"))
    assert answered[0]["code"] == "invalid_op"
    assert "'tenant'" in answered[0]["message"]
    (record,) = await ingest.consume(1)
    assert OpRecord.model_validate_json(record.value).tenant == "acme"


async def test_resent_op_is_a_duplicate_with_the_original_offset_and_written_once(
    ingest: Ingest,
) -> None:
    ops = [make_op() for _ in range(3)]
    first = results(await ingest.post_ops(ops))
    again = results(await ingest.post_ops([ops[1], make_op(), ops[2]]))
    assert again[0] == {**first[1], "status": "duplicate"}
    assert again[1]["status"] == "accepted"
    assert again[2] == {**first[2], "status": "duplicate"}
    records = await ingest.consume(4)
    assert len(records) == 4


async def test_same_op_id_twice_in_one_batch_is_written_once(ingest: Ingest) -> None:
    op = make_op()
    answered = results(await ingest.post_ops([op, make_op(), op]))
    assert answered[0]["status"] == "accepted"
    assert answered[2] == {**answered[0], "status": "duplicate"}
    assert len(await ingest.consume(2)) == 2


async def test_concurrent_requests_with_one_op_id_produce_it_once(ingest: Ingest) -> None:
    shared_ops = [make_op() for _ in range(5)]
    responses = await asyncio.gather(*(ingest.post_ops([*shared_ops, make_op()]) for _ in range(8)))
    answers = [results(r) for r in responses]
    for i in range(5):
        statuses = sorted(a[i]["status"] for a in answers)
        assert statuses == ["accepted"] + ["duplicate"] * 7
        assert len({(a[i]["partition"], a[i]["offset"]) for a in answers}) == 1
    records = await ingest.consume(5 + 8)
    assert len(records) == 13
    assert len({OpRecord.model_validate_json(r.value).op_id for r in records}) == 13


async def test_same_op_id_in_two_tenants_is_two_ops(ingest: Ingest) -> None:
    op = make_op()
    assert results(await ingest.post_ops([op], tenant="acme"))[0]["status"] == "accepted"
    assert results(await ingest.post_ops([op], tenant="globex"))[0]["status"] == "accepted"


async def test_op_ahead_of_server_clock_is_rejected_with_the_server_hlc(ingest: Ingest) -> None:
    ahead = make_op(client_id="fast-clock", wall_ms=now_ms() + 93_500)
    fine = make_op(client_id="fast-clock", wall_ms=now_ms() + 30_000)  # within the 60 s limit
    response = await ingest.post_ops([ahead, fine])
    answered = results(response)
    assert answered[0]["status"] == "rejected"
    assert answered[0]["code"] == "clock_skew"
    assert answered[0]["retriable"] is True
    assert (
        "s ahead of server time (limit 60 s); adopt server_hlc and retry"
        in (answered[0]["message"])
    )
    assert answered[1]["status"] == "accepted"
    server = Hlc.parse(response.json()["server_hlc"])
    assert server.node == "ingest"
    # The server clock received the accepted op's HLC, so adopting it moves the client on.
    assert server > Hlc.parse(fine["hlc"])
    assert server < Hlc.parse(ahead["hlc"])


async def test_every_response_carries_a_fresh_server_hlc(ingest: Ingest) -> None:
    first = (await ingest.post_ops([make_op()])).json()["server_hlc"]
    second = (await ingest.post_ops(["junk"])).json()["server_hlc"]
    assert Hlc.parse(second) > Hlc.parse(first)


async def test_op_over_64_kib_is_rejected_alone(ingest: Ingest) -> None:
    big = make_op(fields={"blob": "x" * 70_000})
    answered = results(await ingest.post_ops([big, make_op()]))
    assert answered[0]["code"] == "op_too_large"
    assert "65536 bytes" in answered[0]["message"]
    assert answered[1]["status"] == "accepted"


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        (b'{"ops": [', 422, "invalid_batch", "not valid JSON"),
        (b"[]", 422, "invalid_batch", '{"ops": [op, ...]}'),
        (b'{"ops": []}', 422, "invalid_batch", "'ops' is empty"),
        (b'{"ops": [{}], "tenant": "x"}', 422, "invalid_batch", "unexpected member(s) tenant"),
        (
            orjson.dumps({"ops": [{}] * (MAX_BATCH_OPS + 1)}),
            413,
            "too_many_ops",
            "over the limit of 500 ops per batch",
        ),
        (
            orjson.dumps({"ops": [{"x": "y" * 60_000}] * 18}),
            413,
            "body_too_large",
            f"over the limit of {MAX_BATCH_BYTES} bytes (1 MiB)",
        ),
    ],
    ids=["not-json", "not-an-object", "empty", "extra-member", "501-ops", "over-1MiB"],
)
async def test_malformed_or_oversized_batch_is_a_problem_naming_the_limit(
    ingest: Ingest, body: bytes, status: int, code: str, fragment: str
) -> None:
    response = await ingest.client.post(
        "/v1/ops",
        content=body,
        headers={**ingest.auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"urn:syncpipe:problem:{code}"
    assert problem["code"] == code
    assert problem["status"] == status
    assert fragment in problem["detail"]
    assert problem["instance"] == "/v1/ops"


async def test_rate_limit_per_client_is_429_with_retry_after(
    ingest_factory: IngestFactory,
) -> None:
    ingest = await ingest_factory(rate_limit_ops_per_s=0.01, rate_limit_burst_ops=10)
    phone = [make_op(client_id="phone-1") for _ in range(10)]
    assert all(r["status"] == "accepted" for r in results(await ingest.post_ops(phone)))
    response = await ingest.post_ops([make_op(client_id="phone-1")])
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["Retry-After"]) >= 1
    problem = response.json()
    assert problem["code"] == "rate_limited"
    assert problem["retriable"] is True
    assert problem["retry_after_s"] == int(response.headers["Retry-After"])
    # Another device of the same tenant has its own bucket.
    other = results(await ingest.post_ops([make_op(client_id="laptop-2")]))
    assert other[0]["status"] == "accepted"
    metrics = (await ingest.client.get("/metrics")).text
    assert 'syncpipe_ingest_requests_failed_total{code="rate_limited"} 1.0' in metrics


async def test_two_replicas_share_dedupe_and_write_each_op_once(
    ingest_factory: IngestFactory,
) -> None:
    first = await ingest_factory(node="ingest-1")
    second = await ingest_factory(node="ingest-2")
    ops = [make_op() for _ in range(20)]
    a, b = await asyncio.gather(first.post_ops(ops), second.post_ops(ops))
    for x, y in zip(results(a), results(b), strict=True):
        assert sorted([x["status"], y["status"]]) == ["accepted", "duplicate"]
        assert (x["partition"], x["offset"]) == (y["partition"], y["offset"])
    assert Hlc.parse(a.json()["server_hlc"]).node == "ingest-1"
    assert Hlc.parse(b.json()["server_hlc"]).node == "ingest-2"
    assert len(await first.consume(20)) == 20


async def test_op_claimed_by_a_vanished_request_is_in_flight_then_retriable(
    ingest_factory: IngestFactory, redis_server_url: str, redis_prefix: str
) -> None:
    ingest = await ingest_factory(produce_timeout_s=0.3)
    op, other = make_op(), make_op()
    redis = Redis.from_url(redis_server_url)
    try:
        # A replica claimed the op and died before producing it; its claim has not expired.
        await redis.set(dedupe_key(redis_prefix, "acme", op["op_id"]), "p:gone", px=60_000)
        answered = results(await ingest.post_ops([op, other]))
        assert answered[0]["status"] == "rejected"
        assert answered[0]["code"] == "in_flight"
        assert answered[0]["retriable"] is True
        assert answered[1]["status"] == "accepted"
        # Once the claim is gone (expired or released) the resend is written.
        await redis.delete(dedupe_key(redis_prefix, "acme", op["op_id"]))
        assert results(await ingest.post_ops([op]))[0]["status"] == "accepted"
    finally:
        await redis.aclose()


async def test_request_waits_for_a_claim_released_by_a_failed_request(
    ingest: Ingest, redis_server_url: str, redis_prefix: str
) -> None:
    op = make_op()
    key = dedupe_key(redis_prefix, "acme", op["op_id"])
    redis = Redis.from_url(redis_server_url)
    try:
        await redis.set(key, "p:other-request", px=60_000)

        async def waiting() -> bool:
            metrics = (await ingest.client.get("/metrics")).text
            return "syncpipe_ingest_claim_waits_total 0.0" not in metrics

        async def release_soon() -> None:
            await eventually(waiting, "the request to wait for the claim")
            await redis.delete(key)  # the other request's produce failed

        response, _ = await asyncio.gather(ingest.post_ops([op]), release_soon())
        assert results(response)[0]["status"] == "accepted"
        assert len(await ingest.consume(1)) == 1
    finally:
        await redis.aclose()


async def test_ops_of_one_entity_share_a_partition_of_a_multi_partition_topic(
    ingest: Ingest,
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=ingest.shared.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(ingest.shared.topics.ops, 4, 1)])
    finally:
        await admin.close()
    ops = [make_op(entity_id=f"e{i % 10}") for i in range(60)]
    answered = results(await ingest.post_ops(ops))
    by_entity: dict[str, set[int]] = {}
    for op, result in zip(ops, answered, strict=True):
        by_entity.setdefault(op["entity_id"], set()).add(result["partition"])
    assert all(len(p) == 1 for p in by_entity.values())
    assert len(set().union(*by_entity.values())) > 1  # keys spread over partitions
    assert len(await ingest.consume(60)) == 60
