"""POST /v1/ops is served ahead of FastAPI's stack (ingest/routes/ops.py ``OpsEndpoint``):
it answers exactly like the FastAPI route behind the app's middleware, which still serves
requests of an app mounted under a root path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from ingest.app import create_app
from ingest.settings import IngestSettings
from schemas.auth import mint_token
from schemas.limits import MAX_BATCH_BYTES
from schemas.settings import SharedSettings
from tests.ingest.helpers import Ingest, make_op

pytestmark = pytest.mark.timeout(60)

ALLOWED = "http://localhost:5173"  # a default CORS origin


def comparable(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in response.headers.items() if k != "content-length"}
    body = response.json()
    if response.status_code == 202:  # per-request values: offsets and the server HLC
        body = [(r["status"], r.get("code")) for r in body["results"]]
    return response.status_code, headers, body


async def both_ways(
    ingest: Ingest, body: Callable[[], bytes], headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    """The same kind of request through the ASGI endpoint and through FastAPI's stack."""
    fast = await ingest.client.post("/v1/ops", content=body(), headers=headers)
    transport = httpx.ASGITransport(app=ingest.app, root_path="/mounted")
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as client:
        routed = await client.post("/v1/ops", content=body(), headers=headers)
    return fast, routed


@pytest.mark.parametrize("origin", [ALLOWED, "https://elsewhere.example", None])
async def test_accepted_batch_matches_the_routed_answer_and_cors_headers(
    ingest: Ingest, origin: str | None
) -> None:
    headers = {**ingest.auth(), "Content-Type": "application/json"}
    if origin is not None:
        headers["Origin"] = origin
    fast, routed = await both_ways(
        ingest, lambda: orjson.dumps({"ops": [make_op(), "junk"]}), headers
    )
    assert comparable(fast) == comparable(routed)
    assert fast.status_code == 202
    assert fast.headers["content-type"] == "application/json"
    assert fast.headers["vary"] == "Origin"
    if origin == ALLOWED:
        assert fast.headers["access-control-allow-origin"] == ALLOWED
        assert fast.headers["access-control-expose-headers"] == "Retry-After"
    else:
        assert "access-control-allow-origin" not in fast.headers


@pytest.mark.parametrize(
    ("body", "token", "extra", "status"),
    [
        (b'{"ops": []}', False, {}, 401),
        (b'{"ops": [', True, {}, 422),
        (b'{"ops": [1]}', True, {"Content-Length": str(MAX_BATCH_BYTES + 1)}, 413),
    ],
    ids=["no-token", "not-json", "declared-too-large"],
)
async def test_problems_match_the_routed_answer(
    ingest: Ingest, body: bytes, token: bool, extra: dict[str, str], status: int
) -> None:
    headers = {"Content-Type": "application/json", "Origin": ALLOWED, **extra}
    if token:
        headers.update(ingest.auth())
    if extra:  # a declared length the body does not have: only the raw endpoint sees it
        fast = await call(ingest.app, body, headers)
        assert fast[0] == status
        assert orjson.loads(fast[2])["code"] == "body_too_large"
        return
    fast, routed = await both_ways(ingest, lambda: body, headers)
    assert comparable(fast) == comparable(routed)
    assert fast.status_code == status
    assert fast.headers["content-type"] == "application/problem+json"


async def call(
    app: Any, body: bytes, headers: dict[str, str], messages: list[dict[str, Any]] | None = None
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One POST /v1/ops straight through the ASGI interface."""
    incoming = messages or [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/ops",
        "raw_path": b"/v1/ops",
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    await app(scope, receive, send)
    if not sent:
        return 0, {}, b""
    start, body_message = sent
    return start["status"], dict(start["headers"]), body_message["body"]


async def test_body_in_chunks_is_reassembled(ingest: Ingest) -> None:
    body = orjson.dumps({"ops": [make_op()]})
    half = len(body) // 2
    status, headers, answer = await call(
        ingest.app,
        body,
        {**ingest.auth()},
        [
            {"type": "http.request", "body": body[:half], "more_body": True},
            {"type": "http.request", "body": body[half:], "more_body": False},
        ],
    )
    assert status == 202, answer
    assert headers[b"content-length"] == str(len(answer)).encode()
    assert orjson.loads(answer)["results"][0]["status"] == "accepted"


async def test_client_gone_before_the_body_gets_no_answer_and_writes_nothing(
    ingest: Ingest,
) -> None:
    status, _, _ = await call(ingest.app, b"", ingest.auth(), [{"type": "http.disconnect"}])
    assert status == 0
    metrics = (await ingest.client.get("/metrics")).text
    assert "syncpipe_ingest_ops_accepted_total 0.0" in metrics
    assert 'route="/v1/ops"' not in metrics


async def test_app_used_without_its_lifespan_answers_500_problem() -> None:
    shared = SharedSettings(redis_url="redis://127.0.0.1:1/0")
    app = create_app(IngestSettings(), shared)
    auth = {"Authorization": f"Bearer {mint_token(shared, tenant='acme', user_id='a')}"}
    status, headers, body = await call(app, orjson.dumps({"ops": [make_op()]}), auth)
    assert status == 500
    assert headers[b"content-type"] == b"application/problem+json"
    problem = orjson.loads(body)
    assert problem["code"] == "internal"
    assert problem["retriable"] is True
    assert problem["instance"] == "/v1/ops"
