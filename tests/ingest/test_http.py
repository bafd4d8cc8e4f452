"""The app over real HTTP (uvicorn on a free port): limits, framework errors, CORS, metrics
and the OpenAPI document."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from ingest.app import create_app
from ingest.settings import IngestSettings
from schemas.auth import mint_token
from schemas.limits import MAX_BATCH_BYTES
from schemas.settings import SharedSettings
from tests.ingest.helpers import eventually, make_op
from tests.processes import BrokerProcess, free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def base_url(
    redis_server_url: str, redis_prefix: str, topic_prefix: str, session_broker: BrokerProcess
) -> AsyncIterator[str]:
    shared = SharedSettings(
        kafka_bootstrap=session_broker.bootstrap,
        redis_url=redis_server_url,
        redis_prefix=redis_prefix,
        topic_prefix=topic_prefix,
    )
    port = free_port()
    settings = IngestSettings(port=port, cors_origins=["https://app.example"])
    config = uvicorn.Config(
        create_app(settings, shared), host="127.0.0.1", port=port, log_config=None
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started or serving.done()

    await eventually(started, "uvicorn to start")
    assert not serving.done(), serving
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(SharedSettings(), tenant='acme', user_id='a')}"}


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url) as client:
        yield client


async def test_ops_round_trip_over_http(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await http.post("/v1/ops", json={"ops": [make_op(), "x"]}, headers=auth)
    assert response.status_code == 202
    assert response.headers["content-type"] == "application/json"
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "rejected"]


async def test_declared_body_over_1_mib_is_413_before_reading_it(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = b'{"ops": [' + b" " * (2 * MAX_BATCH_BYTES) + b"]}"
    response = await http.post("/v1/ops", content=body, headers=auth)
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


async def test_chunked_body_over_1_mib_is_413(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"ops": ['
        for _ in range(20):
            yield b" " * 65_536

    response = await http.post("/v1/ops", content=chunks(), headers=auth)
    assert response.status_code == 413
    assert f"over the limit of {MAX_BATCH_BYTES} bytes" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/nope", 404, "not_found"),
        ("GET", "/v1/ops", 405, "method_not_allowed"),
        ("DELETE", "/v1/collections/tasks/entities", 405, "method_not_allowed"),
    ],
    ids=["unknown-route", "get-ops", "delete-entities"],
)
async def test_framework_errors_are_problems_too(
    http: httpx.AsyncClient, method: str, path: str, status: int, code: str
) -> None:
    response = await http.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"urn:syncpipe:problem:{code}"


async def test_cors_lets_the_pwa_origin_post_and_read_retry_after(http: httpx.AsyncClient) -> None:
    response = await http.options(
        "/v1/ops",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    simple = await http.get("/healthz", headers={"Origin": "https://app.example"})
    assert "retry-after" in simple.headers["access-control-expose-headers"].lower()


async def test_metrics_expose_latency_and_op_counters(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    bad = {**make_op(), "kind": "merge"}
    await http.post("/v1/ops", json={"ops": [make_op(), bad]}, headers=auth)
    await http.get(f"/v1/{make_op()['op_id']}")  # unknown paths share one label value
    text = (await http.get("/metrics")).text
    for line in (
        'syncpipe_ingest_request_duration_seconds_count{method="POST",route="/v1/ops",'
        'status="202"} 1.0',
        "syncpipe_ingest_ops_accepted_total 1.0",
        'syncpipe_ingest_ops_rejected_total{reason="invalid_op"} 1.0',
        "syncpipe_ingest_ops_duplicate_total 0.0",
        'syncpipe_ingest_produce_duration_seconds_count{outcome="ok"} 1.0',
        'syncpipe_ingest_request_duration_seconds_count{method="GET",route="unmatched",'
        'status="404"} 1.0',
    ):
        assert line in text


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


async def test_openapi_documents_bodies_responses_and_problems(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    post = doc["paths"]["/v1/ops"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/OpBatch"}
    assert set(post["responses"]) == {"202", "401", "413", "422", "429", "503"}
    assert post["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OpBatchResult"
    }
    for status in ("401", "413", "422", "429", "503"):
        content = post["responses"][status]["content"]
        assert content == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert "Retry-After" in post["responses"]["503"]["headers"]
    get = doc["paths"]["/v1/collections/{collection}/entities"]["get"]
    assert set(get["responses"]) == {"200", "401", "422", "503"}
    assert {p["name"] for p in get["parameters"]} == {"collection", "cursor", "limit"}
    assert post["security"] == get["security"] == [{"HTTPBearer": []}]
    assert {"/healthz", "/readyz", "/metrics"} <= set(doc["paths"])
