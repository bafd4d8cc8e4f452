"""Locust scenario: ingest users post op batches, WebSocket users measure end-to-end latency.

Headless against a running system (``syncpipe dev`` or the compose stack)::

    uv run locust -f perf/locustfile.py --headless -u 20 -r 10 -t 60s \\
        --host http://127.0.0.1:8080

``--host`` is ingest. Environment (defaults in brackets):

* ``PUSH_URL`` [ws://<host of --host>:8081/v1/ws]: push's WebSocket endpoint;
* ``TENANTS`` [4]: tenants the users are spread over (the ``i``-th user of each kind
  takes tenant ``i % TENANTS``);
* ``COLLECTION`` [locust]; ``BATCH`` [10]: ops per request; ``ENTITIES`` [100] per tenant;
* tokens are minted for ``locust-<k>`` tenants with the dev secret (``SYNCPIPE_JWT_SECRET``
  when set), as ``syncpipe token`` does.

Ingest users (``IngestUser``) post ``BATCH`` upserts per request (one request per second
per user, ``wait_time``), reported as ``POST /v1/ops``; a request fails unless every op is
``accepted`` (429 rate limits and 503 overload count as failures). WebSocket users
(``SubscriberUser``) subscribe to the collection of their tenant and report one ``WS e2e``
sample per entity state received (response time = receipt - the post time the ingest user
put in the op, the same ``bench`` field ``perf/bench.py`` uses), so Locust's percentiles
are end-to-end latency over deliveries. Keep ``--users`` modest: each WebSocket user is a
greenlet and parses frames in Python; ``perf/bench.py`` drives 1,000 connections leaner.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
import orjson
import websocket
from locust import FastHttpUser, User, between, constant, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from e2e_client import bench_field, deliveries
from e2e_load import Hlc

from schemas.auth import mint_token
from schemas.settings import SharedSettings

TENANTS = int(os.environ.get("TENANTS", "4"))
COLLECTION = os.environ.get("COLLECTION", "locust")
BATCH = int(os.environ.get("BATCH", "10"))
ENTITIES = int(os.environ.get("ENTITIES", "100"))

_shared = SharedSettings()
_tokens: dict[str, str] = {}
_ingest_users = itertools.count()
_subscriber_users = itertools.count()
_op_ids = itertools.count()
_run = f"l{time.time_ns() // 1_000_000:x}"


def token(tenant: str) -> str:
    if tenant not in _tokens:
        _tokens[tenant] = mint_token(_shared, tenant=tenant, user_id="locust", ttl_s=6 * 3600)
    return _tokens[tenant]


def push_url(host: str) -> str:
    if url := os.environ.get("PUSH_URL"):
        return url
    return f"ws://{urlsplit(host).hostname or '127.0.0.1'}:8081/v1/ws"


class IngestUser(FastHttpUser):
    """Posts batches of upserts through ingest, one client id per user."""

    wait_time = constant(1)

    def on_start(self) -> None:
        index = next(_ingest_users)
        self.tenant = f"locust-{index % TENANTS}"
        self.client_id = f"locust-{_run}-{index}"
        self.hlc = Hlc(self.client_id)
        self.headers = {
            "Authorization": f"Bearer {token(self.tenant)}",
            "Content-Type": "application/json",
        }

    @task
    def post_ops(self) -> None:
        posted_ms = time.time() * 1000
        ops = []
        for _ in range(BATCH):
            n = next(_op_ids)
            ops.append(
                {
                    "op_id": f"{self.client_id}-{n}",
                    "client_id": self.client_id,
                    "collection": COLLECTION,
                    "entity_id": f"e{n % ENTITIES}",
                    "kind": "upsert",
                    "fields": {"bench": bench_field(n, posted_ms), "title": f"task {n}"},
                    "hlc": self.hlc.next(),
                }
            )
        with self.client.post(
            "/v1/ops",
            data=orjson.dumps({"ops": ops}),
            headers=self.headers,
            name="POST /v1/ops",
            catch_response=True,
        ) as response:
            if response.status_code != 202:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            results = orjson.loads(response.content or b"{}").get("results", [])
            bad = [r for r in results if r.get("status") != "accepted"]
            if bad or len(results) != BATCH:
                response.failure(f"{len(bad)} of {BATCH} ops not accepted: {bad[:1]}")


class SubscriberUser(User):
    """One WebSocket subscriber; every entity state received is one latency sample."""

    wait_time = between(5, 10)

    def on_start(self) -> None:
        index = next(_subscriber_users)
        self.tenant = f"locust-{index % TENANTS}"
        url = f"{push_url(self.host or '')}?token={token(self.tenant)}&client_id=locust-sub-{index}"
        started = time.perf_counter()
        try:
            self.ws = websocket.create_connection(url, timeout=10, enable_multithread=True)
            self.ws.send(json.dumps({"type": "subscribe", "collection": COLLECTION}))
        except (OSError, websocket.WebSocketException) as exc:
            self.fire("WS", "connect+subscribe", started, exc)
            raise
        self.fire("WS", "connect+subscribe", started, None)
        self.reader = gevent.spawn(self.receive)

    def fire(self, kind: str, name: str, started: float, exc: BaseException | None) -> None:
        events.request.fire(
            request_type=kind,
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=exc,
            context={},
        )

    def receive(self) -> None:
        while True:
            try:
                frame = self.ws.recv()
            except (OSError, websocket.WebSocketException):
                return
            if not frame:
                return
            now_ms = time.time() * 1000
            raw = frame.encode() if isinstance(frame, str) else frame
            for _, posted_ms in deliveries(raw):
                events.request.fire(
                    request_type="WS",
                    name="e2e (op posted -> state received)",
                    response_time=now_ms - posted_ms,
                    response_length=len(raw),
                    exception=None,
                    context={},
                )

    @task
    def keepalive(self) -> None:
        """A ping inside push's idle timeout; deliveries are read by ``receive``."""
        try:
            self.ws.send('{"type":"ping"}')
        except (OSError, websocket.WebSocketException) as exc:
            self.fire("WS", "ping", time.perf_counter(), exc)

    def on_stop(self) -> None:
        ws: Any = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
