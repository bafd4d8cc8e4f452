"""Entity events waiting in their stream for the flush pass, and the pass's writes of them.

An entity event is not offered to each subscriber's queue at dispatch: offering one event
to a thousand queues costs more than writing it. The hub hands it to :class:`Fanout`,
which keeps it with its stream (``(tenant, collection)``) until the flush pass the
dispatch scheduled. The pass (:meth:`Fanout.write`) builds each stream's frame once and
writes it straight to every subscriber in the state where its queue would hold exactly
these events and the policy would flush them all at once: queue empty, writer idle, byte
budget for the frame, no other stream's events pending for it. Every other subscriber is
offered the events, in dispatch order, and its writer's policy flushes it as before; so
both paths write the same frames, conflated the same way, and account for them the same
way (:class:`push.writer.PassAccount`).

Anything that must come after the pending events for a connection first offers them to
its queue: another message to that connection (:meth:`Fanout.catch_up`; the pass then
leaves the connection to its queue), or a subscription change (every subscriber's,
:meth:`Fanout.materialize`). So every connection sees the order of dispatch.
"""

from __future__ import annotations

from collections.abc import Callable

from push.conflation import Item, build_frame, conflated, last_cursor
from push.connection import Connection, Flush
from push.metrics import PushMetrics
from push.recent import StreamKey
from push.wire import text_frame
from push.writer import SLICE, PassAccount, Writer


class Fanout:
    """The pending entity events of every stream, until the next flush pass."""

    __slots__ = (
        "_caught_up",
        "_clock",
        "_metrics",
        "_pending",
        "_pending_order",
        "_subscribers",
        "_writers",
    )

    def __init__(
        self,
        subscribers: dict[StreamKey, set[Connection]],
        writers: dict[Connection, Writer],
        metrics: PushMetrics,
        clock: Callable[[], float],
    ) -> None:
        self._subscribers = subscribers  # the hub's, of connections with a writer
        self._writers = writers  # the hub's
        self._metrics = metrics
        self._clock = clock
        self._pending: dict[StreamKey, list[Item]] = {}  # dispatched, not yet written
        self._pending_order: list[tuple[StreamKey, Item]] = []  # the same, in order
        self._caught_up: dict[Connection, int] = {}  # offered the first n of the order

    def __bool__(self) -> bool:
        """Events are pending."""
        return bool(self._pending_order)

    def add(self, key: StreamKey, item: Item) -> None:
        """``item`` was dispatched to the subscribers of ``key``."""
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = [item]
        else:
            pending.append(item)
        self._pending_order.append((key, item))

    def materialize(self) -> None:
        """Offer the pending entity events to their subscribers' queues now, in dispatch
        order: before anything that must come after them (another message to one of the
        connections, a subscription change)."""
        order = self._pending_order
        if not order:
            return
        caught_up = self._caught_up
        self._pending, self._pending_order, self._caught_up = {}, [], {}
        fanout = self._subscribers
        for i, (key, item) in enumerate(order):
            for conn in fanout.get(key, ()):
                if not caught_up or caught_up.get(conn, 0) <= i:
                    conn.offer(item)

    def catch_up(self, conn: Connection) -> None:
        """Offer ``conn`` the pending events of its subscriptions (in dispatch order) that
        it was not offered yet, before a message that must follow them; the pass then
        leaves it to its queue."""
        order = self._pending_order
        start = self._caught_up.get(conn, 0)
        if start == len(order):
            return
        self._caught_up[conn] = len(order)
        fanout = self._subscribers
        for key, item in order[start:]:
            if conn in fanout.get(key, ()):
                conn.offer(item)

    def write(self, account: PassAccount) -> None:
        """Write the pending events of each stream to its subscribers (the module doc);
        offer them to the queues of the subscribers that cannot take the frame now."""
        pending, order, caught_up = self._pending, self._pending_order, self._caught_up
        self._pending, self._pending_order, self._caught_up = {}, [], {}
        now = self._clock()
        several = len(pending) > 1
        writers, fanout, m = self._writers, self._subscribers, self._metrics
        lagging: dict[StreamKey, list[Connection]] = {}
        for key, items in pending.items():
            conns = fanout.get(key)
            if not conns:
                continue
            batch, superseded = conflated(items)
            frame = build_frame(batch)
            flush = Flush(frame, batch, last_cursor(batch))
            wire, size, cursor = text_frame(frame), len(frame), flush.cursor
            born, count = items[0].enqueued_at, len(batch)
            slow: list[Connection] = []
            written = 0
            limits, within = None, False  # connections mostly share one Limits
            for conn in conns:
                if caught_up and conn in caught_up:
                    continue  # offered some of the events already: the rest below
                writer = writers[conn]
                write = writer.write_frame
                if conn.limits is not limits:
                    limits = conn.limits
                    within = (
                        count <= limits.max_queued_entities and now - born < limits.overload_grace_s
                    )
                if (
                    write is None
                    or not within
                    or not conn.idle
                    or conn.queue.entries
                    or writer.pending is not None
                    or writer.failed
                    or (several and len(conn.subscriptions) > 1)
                    or not conn.bucket.take_within(size, now)
                ):
                    slow.append(conn)
                    continue
                try:
                    ok = write(wire)
                except Exception:  # the transport failed: the client is gone
                    writer.failed = True
                    conn.wake()
                    continue
                if not ok:  # the transport is paused: the task waits for the ASGI send
                    conn.writing_since = now
                    writer.pending = (None, None, flush, now)
                    conn.wake()
                    continue
                if cursor is not None:
                    conn.last_cursor = cursor
                written += 1
                if written == SLICE:
                    account.add(flush, written)
                    written = 0
            if written:
                account.add(flush, written)
            if superseded:
                done = len(conns) - len(slow)
                if caught_up:
                    done -= sum(1 for conn in conns if conn in caught_up)
                m.messages_conflated["entity_superseded"] += superseded * done
            if slow:
                lagging[key] = slow
        if lagging:
            for key, item in order:
                for conn in lagging.get(key, ()):
                    conn.offer(item)
        for conn, start in caught_up.items():
            for key, item in order[start:]:
                if conn in fanout.get(key, ()):
                    conn.offer(item)
