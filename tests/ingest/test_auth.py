"""Authentication: every request needs a valid token; tenants never see each other."""

from __future__ import annotations

import time

import jwt
import pytest

from schemas.auth import mint_token
from schemas.settings import SharedSettings
from tests.ingest.helpers import Ingest, make_op

pytestmark = pytest.mark.timeout(60)


def claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "alice",
        "tenant": "acme",
        "iss": "syncpipe",
        "iat": now,
        "exp": now + 600,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def signed(ingest: Ingest, **changes: object) -> str:
    return jwt.encode(claims(**changes), ingest.shared.hs256_secret(), algorithm="HS256")


CASES = {
    "missing": lambda ingest: None,
    "not-bearer": lambda ingest: f"Basic {ingest.token()}",
    "garbage": lambda ingest: "Bearer not.a.jwt",
    "expired": lambda ingest: (
        "Bearer "
        + mint_token(ingest.shared, tenant="acme", user_id="alice", ttl_s=60, now_s=1_000_000)
    ),
    "wrong-secret": lambda ingest: (
        "Bearer "
        + mint_token(SharedSettings(jwt_secret="another-secret-" * 3), tenant="acme", user_id="a")
    ),
    "no-tenant": lambda ingest: f"Bearer {signed(ingest, tenant=None)}",
    "wrong-issuer": lambda ingest: f"Bearer {signed(ingest, iss='someone-else')}",
    "tenant-with-slash": lambda ingest: f"Bearer {signed(ingest, tenant='acme/../x')}",
    "scheme-only": lambda ingest: "Bearer",
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/ops"), ("GET", "/v1/collections/tasks/entities")],
    ids=["post-ops", "get-entities"],
)
async def test_bad_or_missing_token_is_401_problem(
    ingest: Ingest, case: str, method: str, path: str
) -> None:
    header = CASES[case](ingest)
    headers = {"Authorization": header} if header else {}
    response = await ingest.client.request(
        method, path, headers=headers, json={"ops": [make_op()]} if method == "POST" else None
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    problem = response.json()
    assert problem["type"] == "urn:syncpipe:problem:unauthorized"
    assert problem["code"] == "unauthorized"
    assert problem["retriable"] is False
    assert problem["detail"]


async def test_expired_token_says_so(ingest: Ingest) -> None:
    token = mint_token(ingest.shared, tenant="acme", user_id="a", ttl_s=60, now_s=1_000_000)
    response = await ingest.client.get(
        "/v1/collections/tasks/entities", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.json()["detail"] == "token expired: get a new token and retry"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/ops"), ("GET", "/v1/collections/tasks/entities")],
    ids=["post-ops", "get-entities"],
)
@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_bearer_scheme_is_case_insensitive_and_repeats_are_served(
    ingest: Ingest, method: str, path: str, scheme: str
) -> None:
    headers = {"Authorization": f"{scheme} {ingest.token()}"}
    for _ in range(2):  # the second request is answered from the verified-token cache
        response = await ingest.client.request(
            method, path, headers=headers, json={"ops": [make_op()]} if method == "POST" else None
        )
        assert response.status_code in (200, 202), response.text
