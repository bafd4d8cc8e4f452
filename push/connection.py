"""One client connection's outbound side: the writer, which owns all the policy.

The hub offers messages with :meth:`Connection.offer` (synchronous, never blocks, never
awaits the client). The writer (:mod:`push.writer`: the hub's eager flush pass while the
connection is idle, else the connection's own task) executes
:meth:`Connection.next_action`, a pure decision made from the queue, the token bucket and
an injected ``now``::

          offer()                 next_action(now)
    hub ─────────► OutboundQueue ◄──────────────── writer ──► socket
                   (conflate,       Flush: pop what the byte budget allows, ONE frame
                    bound)                 (a batch when more than one message)
                                    Wait:  nothing queued, or budget exhausted (throttled)
                                    Close: notice/error frame, then the close code

States of a connection's writer::

    idle ──offer──► backlog ──queue drained──► idle
                      │ backlog (or one socket write) older than overload_grace_s,
                      │ or the entity bound hit
                      ▼
                    closing: queue dropped, disconnect_notice{cursor}, close 4000

``backlog_since`` is when the queue last went from empty to non-empty; a writer that
drains its queue at every flush (a fast client, or a slow one whose updates conflation
absorbs) never builds a sustained backlog, so only a client that truly cannot keep up is
disconnected, and never before the grace period.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import Final

from push import frames
from push.close_codes import CloseCode
from push.conflation import FrameCache, Item, Kind, Offer, OutboundQueue, build_frame, last_cursor
from push.limiter import TokenBucket
from push.metrics import PushMetrics

_ids = count(1)
OVERLOAD: Final = "overload"
QUEUE_OVERFLOW: Final = "queue_overflow"


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits (from :class:`push.settings.PushSettings`)."""

    max_bps: int
    burst_bytes: int
    overload_grace_s: float
    retry_after_ms: int
    max_queued_entities: int
    max_queued_conflicts: int
    max_queued_receipts: int
    max_client_messages_per_s: float
    max_bad_frames: int


@dataclass(slots=True)
class Flush:
    """Write ``frame`` (the messages ``items``) to the socket; ``cursor`` is the resume
    cursor the client holds once it has the frame (None: unchanged)."""

    frame: bytes
    items: list[Item]
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Wait:
    """Wait until woken (new message, close) or ``seconds`` pass (None: until woken)."""

    seconds: float | None


@dataclass(frozen=True, slots=True)
class Close:
    """Write ``final`` (a notice or error frame) if given, then close with ``code``."""

    code: CloseCode
    reason: str
    final: bytes | None
    final_type: str = "error"


Action = Flush | Wait | Close
IDLE: Final = Wait(None)


class Connection:
    """Queue + byte budget + overload policy of one WebSocket; synchronous and clock-free."""

    def __init__(
        self,
        *,
        tenant: str,
        user_id: str,
        client_id: str | None,
        limits: Limits,
        metrics: PushMetrics,
        now: float,
    ) -> None:
        self.id = next(_ids)
        self.tenant = tenant
        self.user_id = user_id
        self.client_id = client_id
        self.limits = limits
        self.metrics = metrics
        self.queue = OutboundQueue(
            max_entities=limits.max_queued_entities,
            max_conflicts=limits.max_queued_conflicts,
            max_receipts=limits.max_queued_receipts,
        )
        self.bucket = TokenBucket(limits.max_bps, limits.burst_bytes, now)
        self.inbound = TokenBucket(
            limits.max_client_messages_per_s, 2 * limits.max_client_messages_per_s, now
        )
        self.subscriptions: set[str] = set()
        self.bad_frames = 0
        self.last_client_frame_at = now
        self.last_cursor: str | None = None
        self.backlog_since: float | None = None
        self.writing_since: float | None = None
        self.throttled = False
        self.closing: Close | None = None
        self.closing_since: float | None = None
        self._closed_sent = False
        self._waiter: asyncio.Future[None] | None = None
        # The writer task is waiting for messages (not throttled, writing or closing): a
        # plain attribute, read for every socket of every flush pass.
        self.idle = False
        self.on_ready: Callable[[Connection], None] | None = None
        self.ready_signalled = False  # on_ready called, the hub's pass not run yet

    def __repr__(self) -> str:
        return f"<Connection {self.id} tenant={self.tenant} client={self.client_id}>"

    # -- fed by the hub and the reader: synchronous, never blocks ---------------------

    def offer(self, item: Item) -> None:
        """Queue one message (conflating, bounded); never waits for the client."""
        if self.closing is not None:
            self.metrics.messages_dropped["closing"] += 1
            return
        was_empty = not self.queue
        result = self.queue.offer(item)
        if result is Offer.CONFLATED:
            self.metrics.messages_conflated[f"{item.msg_type}_superseded"] += 1
        elif result is Offer.FULL:
            self.metrics.messages_dropped[f"{item.kind.label}_queue_full"] += 1
            if item.kind is Kind.ENTITY:  # dropping a state would be a silent gap
                self.overload(QUEUE_OVERFLOW, item.enqueued_at)
            return
        if was_empty:
            self.backlog_since = item.enqueued_at
        if self.idle:
            if self.on_ready is not None:
                if not self.ready_signalled:
                    self.ready_signalled = True
                    self.on_ready(self)  # the hub flushes ready connections in one pass
            else:
                self._wake()

    def remove_collection(self, collection: str) -> None:
        """Drop queued entity updates and snapshots of ``collection`` (on unsubscribe)."""
        prefix = f"{self.tenant}/{collection}/"
        snap = f"snapshot:{collection}"
        gone = self.queue.remove_where(
            lambda i: i.key is not None and (i.key.startswith(prefix) or i.key == snap)
        )
        if gone:
            self.metrics.messages_dropped["unsubscribed"] += len(gone)
        if not self.queue:
            self.backlog_since = None

    def request_close(
        self,
        code: CloseCode,
        reason: str,
        now: float,
        final: bytes | None = None,
        final_type: str = "error",
    ) -> None:
        """Close after ``final``; queued messages are dropped. The first request wins."""
        if self.closing is not None:
            return
        dropped = self.queue.clear()
        if dropped:
            self.metrics.messages_dropped["closing"] += len(dropped)
        self.closing = Close(code, reason, final, final_type)
        self.closing_since = now
        self.idle = False
        self._wake()

    def overload(self, reason: str, now: float) -> None:
        """Give up on a client that cannot keep up: notice with its cursor, then 4000."""
        if self.closing is not None:
            return
        notice = frames.disconnect_notice(reason, self.limits.retry_after_ms, self.last_cursor)
        self.metrics.disconnect_notices[reason] += 1
        self.request_close(CloseCode.OVERLOADED, reason, now, notice, "disconnect_notice")

    # -- the writer's policy -----------------------------------------------------------

    def next_action(self, now: float, frames: FrameCache | None = None) -> Action:
        """What the writer does next; pops and charges the budget for a Flush (whose frame
        comes from ``frames`` when given, shared with connections popping the same items)."""
        if self.closing is None and self._overdue(now):
            self.overload(OVERLOAD, now)
        if self.closing is not None:
            return self.closing
        queue = self.queue
        if not queue:
            return IDLE
        bucket = self.bucket
        budget = bucket.available(now)
        items = queue.pop_within(budget, oversized_head=budget >= bucket.burst)
        if not items:
            self._throttle()
            assert self.backlog_since is not None
            until_budget = bucket.wait_time(queue.head_size(), now)
            until_grace = self.backlog_since + self.limits.overload_grace_s - now
            return Wait(max(0.0, min(until_budget, until_grace)))
        if frames is None:
            frame, cursor = build_frame(items), last_cursor(items)
        else:
            frame, cursor = frames.build(items)
        bucket.take(len(frame), now)  # pop_within chose what fits
        if queue:
            self._throttle()
        else:
            self.backlog_since = None
            self.throttled = False
        return Flush(frame, items, cursor)

    def _overdue(self, now: float) -> bool:
        backlog, writing = self.backlog_since, self.writing_since
        if backlog is None and writing is None:
            return False
        grace = self.limits.overload_grace_s
        if backlog is not None and now - backlog >= grace:
            return True
        return writing is not None and now - writing >= grace

    def _throttle(self) -> None:
        if not self.throttled:
            self.throttled = True
            self.metrics.throttle_events += 1

    def sent(self, flush: Flush) -> None:
        """The socket accepted ``flush``'s frame: this connection's part of the
        accounting (the metrics are :meth:`written`'s, or a pass's in aggregate)."""
        self.writing_since = None
        if flush.cursor is not None:
            self.last_cursor = flush.cursor

    def written(self, flush: Flush, started: float, done: float, wall_ms: float) -> None:
        """Account for a frame the socket accepted (``started``/``done`` monotonic)."""
        self.sent(flush)
        m = self.metrics
        m.sent_bytes += len(flush.frame)
        m.frames_sent += 1
        m.socket_write.observe(done - started)
        sent, queue_wait, e2e = m.messages_sent, m.queue_wait, m.end_to_end
        for item in flush.items:
            sent[item.msg_type] += 1
            queue_wait.observe(started - item.enqueued_at)
            if item.received_at_ms is not None:
                e2e.observe(max(0.0, wall_ms - item.received_at_ms) / 1000.0)

    def sweep(self, now: float, idle_timeout_s: float, close_timeout_s: float) -> bool:
        """Periodic check: idle timeout, a stuck writer; True when the writer must be
        abandoned (it has not managed to close within ``close_timeout_s``)."""
        if self.closing is None:
            if now - self.last_client_frame_at >= idle_timeout_s:
                self.request_close(CloseCode.IDLE_TIMEOUT, "idle_timeout", now)
            elif self._overdue(now):
                self.overload(OVERLOAD, now)
        return (
            self.closing_since is not None
            and not self._closed_sent
            and now - self.closing_since >= close_timeout_s
        )

    # -- waking the writer --------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, seconds: float | None) -> None:
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        self.idle = seconds is None and self.closing is None
        handle = None if seconds is None else loop.call_later(seconds, _resolve, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            self.idle = False
            if handle is not None:
                handle.cancel()

    def wake(self) -> None:
        """Hand control back to the writer task."""
        self._wake()

    def mark_closed(self) -> None:
        self._closed_sent = True


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
