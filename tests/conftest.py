"""Fixtures shared by every test package."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_server import redis_url


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Redis server shared by the session."""
    with redis_url(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to one test, so tests sharing the server never collide."""
    return f"test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
