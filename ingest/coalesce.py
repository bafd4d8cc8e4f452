"""Calls of concurrent requests to Redis, sent together: one round trip for many.

A :class:`Coalescer` sends the first call at once; calls made while it is on its way to
Redis queue up and go together as soon as it returns. Nothing waits for a timer, so a lone
request pays nothing, and under load the batches grow with the round-trip time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """Runs ``send(items)`` for the items of all callers waiting; each gets its own outcome.

    ``send`` returns one result or exception per item, in order; an exception ``send``
    raises fails every item of that call.
    """

    def __init__(self, send: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]) -> None:
        self._send = send
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, answer))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain())
        return await answer

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                outcomes = await self._send([item for item, _ in batch])
            except asyncio.CancelledError:  # the loop is shutting down: nobody may hang
                for _, answer in batch + self._queue:
                    answer.cancel()
                self._queue = []
                raise
            except Exception as exc:
                outcomes = [exc] * len(batch)
            for (_, answer), outcome in zip(batch, outcomes, strict=True):
                if answer.done():  # its caller was cancelled
                    continue
                if isinstance(outcome, BaseException):
                    answer.set_exception(outcome)
                else:
                    answer.set_result(outcome)
