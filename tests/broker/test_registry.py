"""The API registry: KAFKA-COMPAT ranges, one module per key, duplicates fail at import."""

from __future__ import annotations

import pytest

from broker.api import HANDLERS
from broker.api.registry import DuplicateHandlerError, handler

EXPECTED = {
    0: (3, 8),
    1: (4, 11),
    2: (1, 5),
    3: (0, 8),
    8: (2, 7),
    9: (1, 5),
    10: (0, 2),
    11: (0, 5),
    12: (0, 3),
    13: (0, 3),
    14: (0, 3),
    15: (0, 4),
    16: (0, 2),
    18: (0, 2),
    19: (0, 4),
    20: (0, 3),
    22: (0, 1),
    23: (2, 3),
    32: (0, 2),
}


def test_registry_advertises_exactly_the_compat_ranges_without_transactions() -> None:
    assert {k: (a.min_version, a.max_version) for k, a in HANDLERS.items()} == EXPECTED


def test_registry_modules_are_named_by_key() -> None:
    for key, api in HANDLERS.items():
        assert api.fn.__module__.rsplit(".", 1)[-1].startswith(f"k{key:02d}_")
        assert "v" in (__import__(api.fn.__module__, fromlist=["x"]).__doc__ or "")


def test_registering_a_key_twice_fails() -> None:
    async def dup(ctx, r):  # pragma: no cover - never called
        return b""

    with pytest.raises(DuplicateHandlerError, match="api key 3 registered twice"):
        handler(api_key=3, versions=(0, 1))(dup)
