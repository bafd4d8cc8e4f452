"""push/cursor.py: cursor strings round-trip; malformed ones are refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from push import cursor
from push.errors import CursorError


@given(st.dictionaries(st.integers(0, 500), st.integers(0, 10**12), max_size=60))
def test_cursor_round_trips(positions: dict[int, int]) -> None:
    text = cursor.encode(positions)
    assert len(text) <= 1024
    assert cursor.decode(text) == positions


def test_cursor_format_is_partitions_ascending() -> None:
    assert cursor.encode({2: 7, 0: 15}) == "v1:0=15,2=7"
    assert cursor.encode({}) == "v1:"


@pytest.mark.parametrize(
    "text",
    ["", "v2:0=1", "v1:0", "v1:a=1", "v1:0=-1", "v1:0=1,0=2", "v1:0=1,", "x" * 2000, "v1:0=\u0661"],
    ids=["empty", "version", "no-eq", "alpha", "negative", "dup", "trailing", "long", "unicode"],
)
def test_cursor_malformed_is_refused(text: str) -> None:
    with pytest.raises(CursorError):
        cursor.decode(text)
