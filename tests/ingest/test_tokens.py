"""Verified-token cache of ingest/tokens.py: fast repeats, never past a token's expiry."""

from __future__ import annotations

import time

import jwt
import pytest

from ingest.errors import UnauthorizedError
from ingest.tokens import TokenCache
from schemas.auth import mint_token
from schemas.settings import SharedSettings
from tests.processes import wait_until

SHARED = SharedSettings(jwt_leeway_s=0)


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_cached_token_is_rejected_once_expired() -> None:
    cache = TokenCache(SHARED)
    token = mint_token(SHARED, tenant="acme", user_id="alice", ttl_s=1)
    principal = cache.verify(token)
    assert (principal.tenant, principal.user_id) == ("acme", "alice")
    assert len(cache) == 1

    def rejected() -> bool:
        try:
            cache.verify(token)
        except UnauthorizedError:
            return True
        return False

    wait_until(rejected, timeout=5, what="the cached token to be rejected after its exp")
    with pytest.raises(UnauthorizedError, match="token expired"):
        cache.verify(token)
    assert len(cache) == 0


def test_cache_never_serves_a_token_past_its_exp() -> None:
    clock = FakeClock()
    cache = TokenCache(SHARED, clock=clock)
    token = mint_token(SHARED, tenant="acme", user_id="alice", ttl_s=600)
    cache.verify(token)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    clock.now = exp - 1
    assert len(cache) == 1
    cache.verify(token)  # still fresh: served from the cache
    assert len(cache) == 1
    clock.now = exp + 1
    cache.verify(token)  # past exp by the cache's clock: verified again (still valid by jwt's)
    assert len(cache) == 0  # re-verified at the cache's exp + 1: nothing left to remember


@pytest.mark.parametrize(
    "token",
    ["garbage", mint_token(SharedSettings(jwt_secret="x" * 40), tenant="acme", user_id="a")],
    ids=["garbage", "wrong-secret"],
)
def test_bad_tokens_are_never_cached(token: str) -> None:
    cache = TokenCache(SHARED)
    for _ in range(2):
        with pytest.raises(UnauthorizedError):
            cache.verify(token)
    assert len(cache) == 0


def test_cache_is_bounded_dropping_the_oldest() -> None:
    cache = TokenCache(SHARED, max_entries=3)
    tokens = [mint_token(SHARED, tenant="acme", user_id=f"u{i}") for i in range(5)]
    for token in tokens:
        cache.verify(token)
    assert len(cache) == 3


def test_max_age_bounds_how_long_a_token_is_trusted() -> None:
    clock = FakeClock()
    cache = TokenCache(SHARED, max_age_s=10, clock=clock)
    token = mint_token(SHARED, tenant="acme", user_id="alice", ttl_s=600)
    cache.verify(token)
    clock.now += 11
    assert cache._entries[token][1] < clock.now  # stale: the next call verifies again
