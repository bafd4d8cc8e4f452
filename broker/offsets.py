"""Committed consumer offsets, durable across restarts.

An append-only file of JSON lines (one line per OffsetCommit request), fsynced through
the same group-commit flusher as the logs before the commit is acknowledged. On start
it is replayed (a torn last line is ignored) and rewritten as a compact snapshot.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from broker.log.flush import Flusher
from broker.log.partition import fsync_dir

log = logging.getLogger(__name__)

REWRITE_EVERY_LINES = 50_000


@dataclass(frozen=True, slots=True)
class Committed:
    offset: int
    leader_epoch: int
    metadata: str | None
    commit_ms: int


Key = tuple[str, str, int]  # group, topic, partition


class OffsetStore:
    def __init__(self, data_dir: Path, flusher: Flusher) -> None:
        self.dir = data_dir / "offsets"
        self.path = self.dir / "commits.log"
        self.flusher = flusher
        self.committed: dict[Key, Committed] = {}
        self._fd = -1
        self._lines = 0

    def load(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            for line in self.path.read_bytes().splitlines():
                try:
                    entries = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.warning("ignoring torn offset commit line", extra={"path": str(self.path)})
                    continue
                self._apply(entries)
        self._rewrite()

    def _apply(self, entries: list[list[object]]) -> None:
        for g, t, p, o, e, m, ts in entries:
            key = (str(g), str(t), int(str(p)))
            if o is None:
                self.committed.pop(key, None)
            else:
                self.committed[key] = Committed(
                    int(str(o)), int(str(e)), None if m is None else str(m), int(str(ts))
                )

    def _rewrite(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        snapshot = [
            [g, t, p, c.offset, c.leader_epoch, c.metadata, c.commit_ms]
            for (g, t, p), c in self.committed.items()
        ]
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            if snapshot:
                f.write(orjson.dumps(snapshot) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.dir)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._lines = 1

    def commit(self, group: str, entries: list[tuple[str, int, int, int, str | None]]) -> None:
        """Record (topic, partition, offset, leader_epoch, metadata) commits; await
        ``flusher.durable()`` before acknowledging. An offset of -1 deletes."""
        now = int(time.time() * 1000)
        rows: list[list[object]] = []
        for topic, partition, offset, epoch, metadata in entries:
            rows.append(
                [group, topic, partition, None if offset < 0 else offset, epoch, metadata, now]
            )
        self._apply(rows)
        os.write(self._fd, orjson.dumps(rows) + b"\n")
        self._lines += 1
        self.flusher.mark(self, self._fd, lambda: None)
        if self._lines > REWRITE_EVERY_LINES:
            self._rewrite()

    def fetch(self, group: str, topic: str, partition: int) -> Committed | None:
        return self.committed.get((group, topic, partition))

    def for_group(self, group: str) -> dict[tuple[str, int], Committed]:
        return {(t, p): c for (g, t, p), c in self.committed.items() if g == group}

    def groups(self) -> set[str]:
        return {g for g, _, _ in self.committed}

    def expire(self, retention_ms: int, live_groups: set[str]) -> int:
        """Drop commits of groups without members older than ``retention_ms``."""
        if retention_ms < 0:
            return 0
        cutoff = int(time.time() * 1000) - retention_ms
        doomed = [
            (g, t, p, -1, -1, None)
            for (g, t, p), c in self.committed.items()
            if g not in live_groups and c.commit_ms < cutoff
        ]
        by_group: dict[str, list[tuple[str, int, int, int, str | None]]] = {}
        for g, t, p, o, e, m in doomed:
            by_group.setdefault(g, []).append((t, p, o, e, m))
        for g, rows in by_group.items():
            self.commit(g, rows)
        return len(doomed)

    def close(self) -> None:
        self.flusher.forget(self)
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
