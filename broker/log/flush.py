"""Durability policies; ``group`` folds concurrent produces into one flush.

Group commit: an append marks its segment dirty and awaits :meth:`Flusher.durable`. One
flush task at a time takes every dirty file, makes them durable in a worker thread (the
loop keeps reading requests meanwhile), then wakes all the waiters of that round and
advances the partitions' high watermarks. Appends that arrive during a round join the
next one, so under load each flush covers many produces.

How a round flushes (``SYNCPIPE_BROKER_FSYNC_METHOD``). A round typically covers a dozen
files (every partition produced to since the last one), and every produce waits for one,
twice on each record's path (the op, then its outputs). Each fsync of a file that grew
commits the filesystem's journal and flushes the disk's cache by itself: with the whole
system running on two cores, 0.75 ms each, a round of four files 3.7 ms at the median.
``syncfs`` (:mod:`broker.log.syncfs`; method ``auto`` on the local filesystems known to
implement it) makes every file of a filesystem durable in one call and one journal
commit: 1.2 ms a round, and the teams benchmark's end-to-end median about halved. A
round of one file is fsynced either way. Method ``fsync`` keeps the files apart, for a
filesystem other programs write heavily to (syncfs writes their data out too).

With fsync, ``threads`` (``SYNCPIPE_BROKER_FSYNC_THREADS``) spreads a round's files:
concurrent fsyncs fold into one journal commit (a round took 2-20 ms one file after
another on a busy disk, about 1 ms over four threads), but each thread costs a hand-off,
a wake-up and a completion on the loop; on two shared cores four cost the broker ten
points of a core more than one, and latency rose with it. So one is the default.
A thread needs the GIL back to report completion; the server lowers the interpreter's
switch interval so that hand-back costs well under a millisecond.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

from broker.log import syncfs
from broker.settings import FsyncMethod, FsyncPolicy

log = logging.getLogger(__name__)

FSYNC_THREADS: Final = 1
"""Default of the threads sharing the fsyncs of one round (each takes every n-th file)."""


@dataclass(slots=True)
class _Dirty:
    fd: int
    on_durable: Callable[[], None]
    nbytes: int


class Flusher:
    def __init__(
        self,
        policy: FsyncPolicy,
        interval_ms: int,
        threads: int = FSYNC_THREADS,
        method: FsyncMethod = "auto",
    ) -> None:
        self.policy = policy
        self.interval_s = interval_ms / 1000
        self.threads = max(threads, 1)
        if method == "syncfs" and not syncfs.available():
            raise ValueError("syncfs is not available on this system")
        self.method = method if method != "auto" or syncfs.available() else "fsync"
        self._dirty: dict[object, _Dirty] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._interval_task: asyncio.Task[None] | None = None
        self._threads: ThreadPoolExecutor | None = None
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
                await self._fsync_concurrently(fds)
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

    async def _fsync_concurrently(self, fds: list[int]) -> None:
        """Make the files of a round durable: with syncfs, one call per filesystem holding
        several of them; else their fsyncs spread over up to ``threads`` threads."""
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self.threads, thread_name_prefix="fsync")
        loop = asyncio.get_running_loop()
        if self.method != "fsync" and len(fds) > 1:
            force = self.method == "syncfs"
            self.fsyncs += await loop.run_in_executor(
                self._threads, _flush_by_filesystem, fds, force
            )
            return
        n = min(len(fds), self.threads)
        synced = await asyncio.gather(
            *(loop.run_in_executor(self._threads, _fsync_each, fds[i::n]) for i in range(n))
        )
        self.fsyncs += sum(sum(s) for s in synced)

    def _fsync_quietly(self, fd: int) -> None:
        self.fsyncs += _fsync_or_skip(fd)

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
                try:
                    await self._fsync_concurrently([d.fd for d in batch.values()])
                except OSError as exc:  # acks did not wait for this flush: say so, go on
                    log.error("interval fsync failed", extra={"error": str(exc)})

    async def close(self) -> None:
        if self._interval_task is not None:
            self._interval_task.cancel()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._dirty:
            self.fsyncs += sum(_fsync_each([d.fd for d in self._dirty.values()]))
            self._dirty.clear()
        if self._threads is not None:
            self._threads.shutdown(wait=True)
            self._threads = None


def _fsync_each(fds: list[int]) -> list[bool]:
    return [_fsync_or_skip(fd) for fd in fds]


def _fsync_or_skip(fd: int) -> bool:
    """fsync ``fd``; False when it was closed meanwhile (retention, compaction, delete).

    Any other error (``EIO``: the data did not reach the disk) is raised."""
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EBADF:
            raise
        log.debug("fsync skipped", extra={"fd": fd, "error": str(exc)})
        return False
    return True


def _identity(fd: int) -> tuple[int, int] | None:
    """(device, inode) of open file ``fd``; None when it was closed meanwhile."""
    try:
        st = os.fstat(fd)
    except OSError as exc:
        if exc.errno != errno.EBADF:
            raise
        return None
    return st.st_dev, st.st_ino


def _flush_by_filesystem(fds: list[int], force: bool) -> int:
    """One syncfs per filesystem holding two or more of ``fds`` (unless ``force``, only
    on a filesystem :func:`syncfs.trusted <broker.log.syncfs.trusted>`), an fsync for any
    other file; returns the calls made. Files closed meanwhile are skipped."""
    by_device: dict[int, list[tuple[int, tuple[int, int]]]] = {}
    for fd in fds:
        ident = _identity(fd)
        if ident is not None:
            by_device.setdefault(ident[0], []).append((fd, ident))
    calls = 0
    for device, files in by_device.items():
        if len(files) == 1 or not (force or syncfs.trusted(device)):
            calls += sum(_fsync_each([f for f, _ in files]))
            continue
        fd, ident = files[0]
        try:
            syncfs.syncfs(fd)
        except OSError as exc:
            if exc.errno != errno.EBADF:
                raise
        else:
            calls += 1
            if _identity(fd) == ident:  # still the file whose filesystem we meant
                continue
        # closed (and perhaps its number reused) around the call: flush the rest one by one
        calls += sum(_fsync_each([f for f, _ in files[1:]]))
    return calls
