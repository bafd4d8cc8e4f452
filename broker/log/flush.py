"""Durability policies; ``group`` folds concurrent produces into one fsync.

Group commit: an append marks its segment dirty and awaits :meth:`Flusher.durable`. One
flush task at a time takes every dirty file, fsyncs them in a worker thread, then wakes
all the waiters of that round and advances the partitions' high watermarks. Appends that
arrive during a round join the next one, so under load each fsync covers many produces.

The fsync runs in a worker thread so the loop keeps reading requests while the disk
works. The thread needs the GIL back to report completion; the server lowers the
interpreter's switch interval so that hand-back costs well under a millisecond.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from broker.settings import FsyncPolicy

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Dirty:
    fd: int
    on_durable: Callable[[], None]
    nbytes: int


class Flusher:
    def __init__(self, policy: FsyncPolicy, interval_ms: int) -> None:
        self.policy = policy
        self.interval_s = interval_ms / 1000
        self._dirty: dict[object, _Dirty] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._interval_task: asyncio.Task[None] | None = None
        self.fsyncs = 0

    @property
    def acks_wait(self) -> bool:
        """Whether acks=1/-1 wait for a flush (only the group policy defers it)."""
        return self.policy == "group"

    def mark(self, key: object, fd: int, on_durable: Callable[[], None], nbytes: int = 0) -> None:
        """Note that ``fd`` has unflushed data; ``on_durable`` runs once it is on disk.

        The callback captures what was written so far, so a later append does not
        become visible by riding an earlier flush."""
        if self.policy == "always":
            os.fsync(fd)
            self.fsyncs += 1
            on_durable()
            return
        if self.policy == "never":
            on_durable()
            return
        if self.policy == "interval":
            on_durable()
        prev = self._dirty.get(key)
        if prev is not None and prev.fd != fd:
            self._fsync_quietly(prev.fd)  # segment rolled: old file must still reach disk
        self._dirty[key] = _Dirty(fd, on_durable, nbytes + (prev.nbytes if prev else 0))
        if self.policy == "group":
            self._kick()

    async def durable(self) -> None:
        """Wait until everything marked before this call is on disk (group policy)."""
        idle = self._task is None or self._task.done()
        if self.policy != "group" or (not self._dirty and idle):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._kick()
        await fut

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._dirty or self._waiters:
            batch, self._dirty = self._dirty, {}
            waiters, self._waiters = self._waiters, []
            fds = [d.fd for d in batch.values()]
            try:
                await asyncio.to_thread(self._fsync_all, fds)
            except Exception as exc:  # disk failure: fail the waiters, do not ack
                log.error("fsync failed", extra={"error": str(exc)})
                for w in waiters:
                    if not w.done():
                        w.set_exception(exc)
                continue
            for d in batch.values():
                d.on_durable()
            for w in waiters:
                if not w.done():
                    w.set_result(None)

    def _fsync_all(self, fds: list[int]) -> None:
        for fd in fds:
            self._fsync_quietly(fd)

    def _fsync_quietly(self, fd: int) -> None:
        try:
            os.fsync(fd)
            self.fsyncs += 1
        except OSError as exc:  # file closed by retention/compaction/delete meanwhile
            log.debug("fsync skipped", extra={"fd": fd, "error": str(exc)})

    def forget(self, key: object) -> None:
        self._dirty.pop(key, None)

    async def start_interval(self) -> None:
        if self.policy == "interval" and self._interval_task is None:
            self._interval_task = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            if self._dirty:
                batch, self._dirty = self._dirty, {}
                await asyncio.to_thread(self._fsync_all, [d.fd for d in batch.values()])

    async def close(self) -> None:
        if self._interval_task is not None:
            self._interval_task.cancel()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._dirty:
            self._fsync_all([d.fd for d in self._dirty.values()])
            self._dirty.clear()
