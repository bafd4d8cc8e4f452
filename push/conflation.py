"""The per-connection outbound queue: a data structure with no policy.

It keeps pending messages in order, conflates entity updates and bounds conflicts and
receipts; the writer (:mod:`push.connection`) decides when to pop, how much, and what to
do when :meth:`OutboundQueue.offer` reports ``FULL``.

Conflation and position semantics
---------------------------------
Entity updates are keyed by entity key (``{tenant}/{collection}/{entity_id}``). Offering
an update for a key already queued **removes the older one and appends the newer at the
tail** (it does not take the older one's place). So the queue stays in log order of the
latest update per entity, and the cursors carried by entity messages stay monotonic on a
connection: when a client holds cursor ``c`` of the last message it received, every
update enqueued before that message was either delivered or superseded by a newer state
of the same entity that was enqueued later and is therefore at or after ``c``. Resuming
from ``c`` replays that newer state, so no state is ever skipped silently.

Controls with a key (one pending snapshot per collection) conflate the same way. Items
without a key (hello, pong, error, notices, conflicts, receipts) are never conflated.
Conflicts and receipts are bounded by count; entity entries are bounded by distinct keys.
Controls are not bounded here: they only answer client frames, which are rate limited.

Items are immutable and shared: the hub builds one :class:`Item` per log event and offers
the same object to every subscribed connection's queue. They compare by identity, so a
list of popped items equals another connection's exactly when both hold the same events;
:class:`FrameCache` builds the frame of such a list once for all of them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum
from itertools import count
from typing import Final

BATCH_OPEN: Final = b'{"type":"batch","messages":['
BATCH_CLOSE: Final = b"]}"
BATCH_OVERHEAD: Final = len(BATCH_OPEN) + len(BATCH_CLOSE)


class Kind(IntEnum):
    """What an item is; an int so it indexes the queue's per-kind lists (hot path)."""

    ENTITY = 0
    CONFLICT = 1
    RECEIPT = 2
    CONTROL = 3

    @property
    def label(self) -> str:
        return self.name.lower()


_UNBOUNDED: Final = 1 << 62


class Offer(Enum):
    """What :meth:`OutboundQueue.offer` did with an item."""

    QUEUED = "queued"
    CONFLATED = "conflated"  # replaced an older queued item with the same key
    FULL = "full"  # bound reached: the item was not queued


@dataclass(frozen=True, slots=True, eq=False)
class Item:
    """One serialized server message and what the writer needs to account for it."""

    kind: Kind
    msg_type: str  # protocol 'type' of the frame, a bounded metric label
    frame: bytes  # the message's JSON; a batch frame is built from several of these
    enqueued_at: float  # monotonic seconds (queue-wait histogram)
    key: str | None = None  # conflation key (entity key, or 'snapshot:{collection}')
    received_at_ms: int | None = None  # ingest receive time carried by the record (e2e)
    cursor: str | None = None  # resume cursor after this message (entity, snapshot)


def frame_size(sizes_total: int, n: int) -> int:
    """Bytes of the frame holding ``n`` messages whose JSON totals ``sizes_total`` bytes."""
    return sizes_total if n == 1 else sizes_total + BATCH_OVERHEAD + (n - 1)


def build_frame(items: list[Item]) -> bytes:
    """One message as is, several as one ``batch`` frame (in order)."""
    if len(items) == 1:
        return items[0].frame
    return BATCH_OPEN + b",".join([i.frame for i in items]) + BATCH_CLOSE


def last_cursor(items: list[Item]) -> str | None:
    """The resume cursor after ``items``: that of the last one carrying a cursor."""
    for item in reversed(items):
        if item.cursor is not None:
            return item.cursor
    return None


def conflated(items: list[Item]) -> tuple[list[Item], int]:
    """What an empty :class:`OutboundQueue` holds after offering ``items`` in order: the
    latest item per key, in the order of the latest (see the module doc); and how many
    were superseded."""
    keys = {i.key if i.key is not None else id(i) for i in items}
    if len(keys) == len(items):
        return items, 0
    latest: dict[object, Item] = {}
    for i in items:
        k = i.key if i.key is not None else id(i)
        latest.pop(k, None)
        latest[k] = i
    return list(latest.values()), len(items) - len(latest)


class FrameCache:
    """The frame of the last item list built, reused while the next lists are the same.

    In a fanout pass every subscriber of a stream pops the same items (the same objects,
    in the same order), so their batch frame is built once and the same bytes object is
    written to each socket. One entry is enough: connections are flushed in the order
    they became ready, which groups the subscribers of one dispatch together.
    """

    __slots__ = ("_cursor", "_frame", "_items")

    def __init__(self) -> None:
        self._items: list[Item] = []
        self._frame = b""
        self._cursor: str | None = None

    def build(self, items: list[Item]) -> tuple[bytes, str | None]:
        """``items``' frame (:func:`build_frame`) and resume cursor (:func:`last_cursor`)."""
        if items != self._items:  # Items compare by identity: a C-level scan
            self._items = items
            self._frame = build_frame(items)
            self._cursor = last_cursor(items)
        return self._frame, self._cursor


class OutboundQueue:
    """Ordered pending messages of one connection, with conflation and bounds."""

    __slots__ = ("_bytes", "_counts", "_limits", "_seq", "entries")

    def __init__(self, *, max_entities: int, max_conflicts: int, max_receipts: int) -> None:
        # The pending messages in order, by conflation key (read-only outside the queue;
        # the flush pass tests it for emptiness without a call).
        self.entries: OrderedDict[object, Item] = OrderedDict()
        self._limits = [max_entities, max_conflicts, max_receipts, _UNBOUNDED]  # by Kind
        self._counts = [0, 0, 0, 0]
        self._bytes = 0
        self._seq = count()

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def bytes(self) -> int:
        """Sum of the queued messages' sizes."""
        return self._bytes

    def count(self, kind: Kind) -> int:
        return self._counts[kind]

    def offer(self, item: Item) -> Offer:
        """Queue ``item``: conflate it with a queued item of the same key, or refuse it."""
        key = item.key
        if key is not None:
            old = self.entries.pop(key, None)
            if old is not None:
                self.entries[key] = item
                self._bytes += len(item.frame) - len(old.frame)
                return Offer.CONFLATED
        if self._counts[item.kind] >= self._limits[item.kind]:
            return Offer.FULL
        self.entries[key if key is not None else next(self._seq)] = item
        self._counts[item.kind] += 1
        self._bytes += len(item.frame)
        return Offer.QUEUED

    def head_size(self) -> int:
        """Size of the first message (0 when empty)."""
        if not self.entries:
            return 0
        return len(next(iter(self.entries.values())).frame)

    def pop_within(self, budget: float, *, oversized_head: bool = False) -> list[Item]:
        """Pop the longest prefix whose frame (:func:`frame_size`) fits ``budget`` bytes.

        With ``oversized_head`` the first item is popped even if it alone exceeds the
        budget (the writer allows it when the limiter is full).
        """
        items = self.entries
        n = len(items)
        # the usual case, everything fits (frame_size inlined: this runs per socket)
        if (self._bytes if n == 1 else self._bytes + BATCH_OVERHEAD + n - 1) <= budget:
            out = list(items.values())
            items.clear()
            self._counts = [0, 0, 0, 0]
            self._bytes = 0
            return out
        out = []
        total = 0
        while items:
            key, item = items.popitem(last=False)
            size = len(item.frame)
            if frame_size(total + size, len(out) + 1) > budget and (out or not oversized_head):
                items[key] = item
                items.move_to_end(key, last=False)
                break
            out.append(item)
            total += size
            self._counts[item.kind] -= 1
            self._bytes -= size
            if oversized_head and len(out) == 1 and size > budget:
                break
        return out

    def remove_where(self, pred: Callable[[Item], bool]) -> list[Item]:
        """Remove and return every queued item matching ``pred`` (e.g. on unsubscribe)."""
        gone = [(k, i) for k, i in self.entries.items() if pred(i)]
        for k, i in gone:
            del self.entries[k]
            self._counts[i.kind] -= 1
            self._bytes -= len(i.frame)
        return [i for _, i in gone]

    def clear(self) -> list[Item]:
        """Remove and return everything."""
        out = list(self.entries.values())
        self.entries.clear()
        self._counts = [0, 0, 0, 0]
        self._bytes = 0
        return out
