"""No input gets a 5xx: arbitrary bodies, paths and queries against the real app.

A stand-in for a schemathesis run (schemathesis is not installed): hypothesis generates
JSON bodies (op-shaped and not), collection names, cursors and limits; every answer must
be a documented 2xx/4xx, and every error problem+json.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.helpers import Ingest, hlc

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False,
    allow_infinity=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
    max_size=3),
    max_leaves=10,
)  # fmt: skip
OP_LIKE = st.fixed_dictionaries(
    {
        "op_id": st.from_regex(r"[A-Za-z0-9_.:-]{1,20}", fullmatch=True) | JSON,
        "client_id": st.just("fuzz-1") | JSON,
        "collection": st.sampled_from(["tasks", "notes"]) | JSON,
        "entity_id": st.text(min_size=1, max_size=8) | JSON,
        "kind": st.sampled_from(["upsert", "delete"]) | JSON,
        "hlc": st.just(hlc("fuzz-1")) | JSON,
    },
    optional={"fields": st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True), JSON)},
)
BODY = (
    st.fixed_dictionaries({"ops": st.lists(OP_LIKE | JSON, min_size=0, max_size=5)}) | JSON
).map(orjson.dumps) | st.binary(max_size=64)


@FUZZ
@given(body=BODY)
async def test_post_ops_never_answers_5xx(ingest: Ingest, body: bytes) -> None:
    response = await ingest.client.post(
        "/v1/ops", content=body, headers={**ingest.auth(), "Content-Type": "application/json"}
    )
    assert response.status_code in (202, 413, 422), response.text
    if response.status_code != 202:
        assert response.headers["content-type"] == "application/problem+json"


@FUZZ
@given(
    collection=st.text(min_size=1, max_size=12).map(lambda s: quote(s, safe="")),
    query=st.dictionaries(
        st.sampled_from(["cursor", "limit", "other"]),
        st.text(max_size=8) | st.integers(-5, 10**21).map(str),
    ),
)
async def test_get_entities_never_answers_5xx(
    ingest: Ingest, collection: str, query: dict[str, Any]
) -> None:
    response = await ingest.client.get(
        f"/v1/collections/{collection}/entities", params=query, headers=ingest.auth()
    )
    assert response.status_code in (200, 404, 422), response.text
