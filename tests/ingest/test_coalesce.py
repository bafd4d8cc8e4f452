"""ingest/coalesce.py: concurrent calls go together, each caller gets its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from ingest.coalesce import Coalescer


class Recorder:
    """A ``send`` that records its batches and answers each item with its double."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def send(self, items: list[int]) -> Sequence[int | BaseException]:
        self.batches.append(items)
        await self.release.wait()
        return [ValueError(f"odd {i}") if i % 2 else i * 2 for i in items]


async def test_calls_made_while_one_is_in_flight_go_together() -> None:
    rec = Recorder()
    rec.release.clear()
    c: Coalescer[int, int] = Coalescer(rec.send)
    first = asyncio.create_task(c.submit(0))
    await asyncio.sleep(0)  # the first call is on its way
    rest = [asyncio.create_task(c.submit(i)) for i in (2, 4, 6)]
    await asyncio.sleep(0)
    rec.release.set()
    assert await first == 0
    assert [await t for t in rest] == [4, 8, 12]
    assert rec.batches == [[0], [2, 4, 6]]


async def test_each_caller_gets_its_own_outcome() -> None:
    rec = Recorder()
    c: Coalescer[int, int] = Coalescer(rec.send)
    outcomes = await asyncio.gather(*(c.submit(i) for i in range(4)), return_exceptions=True)
    assert outcomes[0] == 0
    assert outcomes[2] == 4
    assert isinstance(outcomes[1], ValueError)
    assert str(outcomes[1]) == "odd 1"
    assert isinstance(outcomes[3], ValueError)


async def test_a_failed_send_fails_only_its_own_batch() -> None:
    calls = 0

    async def send(items: list[int]) -> Sequence[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("down")
        return items

    c: Coalescer[int, int] = Coalescer(send)
    with pytest.raises(ConnectionError):
        await c.submit(1)
    assert await c.submit(2) == 2


async def test_a_cancelled_caller_leaves_the_others_answered() -> None:
    rec = Recorder()
    rec.release.clear()
    c: Coalescer[int, int] = Coalescer(rec.send)
    tasks = [asyncio.create_task(c.submit(i)) for i in (0, 2, 4)]
    await asyncio.sleep(0)
    tasks[1].cancel()
    rec.release.set()
    assert await tasks[0] == 0
    assert await tasks[2] == 8
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]
