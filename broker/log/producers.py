"""Idempotent producer state of one partition: dedupe retries, reject sequence gaps.

Per producer id we keep the epoch and the last five batches' sequence ranges (a producer
has at most five in flight, as in Kafka). The state is rebuilt from the batch headers in
the log on start-up, so a producer retrying across a broker restart does not write
duplicates. A snapshot taken at each segment roll lets recovery start from the tail
segments instead of re-reading every header of the log.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import orjson

from broker import errors
from broker.codec.records import NO_PRODUCER_ID, BatchHeader

MAX_CACHED_BATCHES = 5


@dataclass(slots=True)
class _Entry:
    epoch: int
    # (first_seq, last_seq, base_offset) of recent batches, oldest first
    recent: deque[tuple[int, int, int]] = field(
        default_factory=lambda: deque(maxlen=MAX_CACHED_BATCHES)
    )

    @property
    def last_seq(self) -> int:
        return self.recent[-1][1] if self.recent else -1


@dataclass(frozen=True, slots=True)
class Verdict:
    error: int = errors.NONE
    duplicate_of: int | None = None  # base offset of the original batch


ACCEPT = Verdict()


class ProducerStates:
    def __init__(self) -> None:
        self._by_id: dict[int, _Entry] = {}

    def check(self, h: BatchHeader) -> Verdict:
        """Decide whether a batch may be appended, is a duplicate, or is out of order."""
        if h.producer_id == NO_PRODUCER_ID or h.base_sequence < 0:
            return ACCEPT
        entry = self._by_id.get(h.producer_id)
        if entry is None:
            if h.base_sequence != 0:
                return Verdict(errors.OUT_OF_ORDER_SEQUENCE_NUMBER)
            return ACCEPT
        if h.producer_epoch < entry.epoch:
            return Verdict(errors.INVALID_PRODUCER_EPOCH)
        if h.producer_epoch > entry.epoch:
            if h.base_sequence != 0:
                return Verdict(errors.OUT_OF_ORDER_SEQUENCE_NUMBER)
            return ACCEPT
        for first, last, base in entry.recent:
            if first == h.base_sequence and last == h.last_sequence:
                return Verdict(duplicate_of=base)
        if h.base_sequence != (entry.last_seq + 1) & 0x7FFFFFFF:
            return Verdict(errors.OUT_OF_ORDER_SEQUENCE_NUMBER)
        return ACCEPT

    def update(self, h: BatchHeader) -> None:
        """Record an appended batch (``h`` carries its assigned base offset)."""
        if h.producer_id == NO_PRODUCER_ID or h.base_sequence < 0:
            return
        entry = self._by_id.get(h.producer_id)
        if entry is None or h.producer_epoch != entry.epoch:
            entry = _Entry(h.producer_epoch)
            self._by_id[h.producer_id] = entry
        entry.recent.append((h.base_sequence, h.last_sequence, h.base_offset))

    def snapshot(self) -> bytes:
        """The whole state as JSON (written beside a segment when it is rolled)."""
        return orjson.dumps({str(pid): [e.epoch, list(e.recent)] for pid, e in self._by_id.items()})

    @classmethod
    def from_snapshot(cls, data: bytes) -> ProducerStates:
        """Inverse of :meth:`snapshot`; ValueError if the data is not a snapshot."""
        states = cls()
        try:
            doc = orjson.loads(data)
            for pid, (epoch, recent) in doc.items():
                entry = _Entry(int(epoch))
                entry.recent.extend((int(a), int(b), int(c)) for a, b, c in recent)
                states._by_id[int(pid)] = entry
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"bad producer snapshot: {exc}") from exc
        return states

    def max_producer_id(self) -> int:
        return max(self._by_id, default=-1)

    def __len__(self) -> int:
        return len(self._by_id)
