"""The hub: who is subscribed to what, routing of log events, the resume buffer.

Routing
-------
* Entity states go to every connection subscribed to their ``(tenant, collection)``;
  tenant comes from the connection's token, never from the client, so a tenant never
  sees another's entities.
* Conflicts and receipts go only to the connections of the client that authored the op:
  same tenant, same ``client_id`` (the WebSocket query parameter ``client_id``, the
  device id the client also puts in its ops) and same user (token ``sub`` equals the
  record's ``user_id``), so another user cannot read them by claiming a client id.

Dispatching is synchronous: one :class:`~push.conflation.Item` is built per event (the
frame serialized once). Nothing here awaits a client. Conflicts, receipts and controls
are offered to the target connections' queues at once. An entity event goes to the
subscribers without a hub-driven writer at once too, and to the others through
:mod:`push.fanout`: it waits in its stream for the flush pass the dispatch scheduled,
which writes the stream's frame straight to every subscriber that can take it now.

Cursors and resume
------------------
The hub's position is, per partition of the ``entities`` topic, the offset after the
last record it dispatched; every entity message and snapshot carries it as a cursor
(:mod:`push.cursor`). ``subscribe {cursor}`` is answered from the recent buffer
(:mod:`push.recent`) with ``snapshot {resumed: true}`` holding the latest state of each
entity changed since the cursor, when the buffer covers it; otherwise with a full
snapshot from Redis (``resumed: false``). Conflicts and receipts are not replayed.

A full snapshot is read from Redis asynchronously, then finished synchronously: the
states are merged (by version) with the buffered states of the collection, which covers
both Redis lagging the log and events dispatched during the read; the subscription is
registered and the snapshot queued in the same step, so every later event follows it.
If the buffer no longer covers the position the read started at, the read is retried.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from push import cursor as cursors
from push import frames
from push.close_codes import CloseCode
from push.conflation import FrameCache, Item, Kind
from push.connection import Connection
from push.errors import CursorError
from push.fanout import Fanout
from push.metrics import PushMetrics
from push.recent import Event, RecentBuffers, StreamKey
from push.records import ClientEvent, EntityEvent
from push.wire import WireCache
from push.writer import PassAccount, Writer

Abort = Callable[[], None]
States = dict[str, tuple[int, bytes]]  # entity_id -> (version, EntityState JSON)


class Hub:
    """Subscriptions, routing and the recent buffer of one push replica."""

    def __init__(
        self,
        *,
        metrics: PushMetrics,
        clock: Callable[[], float],
        recent_buffer_size: int,
        recent_buffer_collections: int,
        wall_ms: Callable[[], float] = lambda: time.time() * 1000.0,
    ) -> None:
        self.metrics = metrics
        self.clock = clock
        self.wall_ms = wall_ms
        self.connections: dict[Connection, Abort] = {}
        self._subs: dict[StreamKey, set[Connection]] = {}  # offered to at dispatch
        self._fanout: dict[StreamKey, set[Connection]] = {}  # with a writer: in the pass
        self._clients: dict[tuple[str, str], set[Connection]] = {}
        self.buffers = RecentBuffers(recent_buffer_size, recent_buffer_collections)
        self.positions: dict[int, int] = {}
        self.cursor = cursors.encode(self.positions)
        self.started = False
        self._drained: asyncio.Future[None] | None = None
        self._writers: dict[Connection, Writer] = {}
        self._pending = Fanout(self._fanout, self._writers, metrics, clock)
        self._ready: list[Writer] = []
        self._pass_scheduled = False
        self._frames = FrameCache()
        self._wires = WireCache()

    def start(self, positions: Mapping[int, int]) -> None:
        """The source starts consuming ``entities`` at ``positions`` (partition -> offset)."""
        self.positions = dict(positions)
        self.cursor = cursors.encode(self.positions)
        self.buffers.start(positions)
        self.started = True

    # -- connections and subscriptions -----------------------------------------------

    def add(self, conn: Connection, abort: Abort, writer: Writer | None = None) -> None:
        """Register a connection; with its ``writer``, the hub flushes it eagerly."""
        self.connections[conn] = abort
        if writer is not None:
            self._writers[conn] = writer
            conn.on_ready = self._on_ready
        if conn.client_id is not None:
            self._clients.setdefault((conn.tenant, conn.client_id), set()).add(conn)
        self.metrics.connections = len(self.connections)

    def remove(self, conn: Connection) -> None:
        if self.connections.pop(conn, None) is None:
            return
        self._writers.pop(conn, None)
        conn.on_ready = None
        for collection in list(conn.subscriptions):
            self.unsubscribe(conn, collection)
        if conn.client_id is not None:
            key = (conn.tenant, conn.client_id)
            peers = self._clients.get(key)
            if peers is not None:
                peers.discard(conn)
                if not peers:
                    del self._clients[key]
        self.metrics.connections = len(self.connections)
        if not self.connections and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _subscribe(self, conn: Connection, collection: str) -> None:
        if collection not in conn.subscriptions:
            conn.subscriptions.add(collection)
            subs = self._fanout if conn in self._writers else self._subs
            subs.setdefault((conn.tenant, collection), set()).add(conn)
            self.metrics.subscriptions += 1

    def unsubscribe(self, conn: Connection, collection: str) -> None:
        if collection not in conn.subscriptions:
            return
        self._pending.catch_up(conn)  # its pending updates are dropped and counted below
        conn.subscriptions.discard(collection)
        key = (conn.tenant, collection)
        for subs_of in (self._subs, self._fanout):
            subs = subs_of.get(key)
            if subs is not None:
                subs.discard(conn)
                if not subs:
                    del subs_of[key]
        conn.remove_collection(collection)
        self.metrics.subscriptions -= 1

    def subscribers(self, tenant: str, collection: str) -> int:
        key = (tenant, collection)
        return len(self._subs.get(key, ())) + len(self._fanout.get(key, ()))

    def offer(self, conn: Connection, item: Item) -> None:
        """Queue a message that is not a log event (hello, pong, error) after every event
        already dispatched."""
        self._pending.catch_up(conn)
        conn.offer(item)

    # -- log events (synchronous; never awaits a client) --------------------------------

    def entity(self, partition: int, offset: int, ev: EntityEvent) -> None:
        self.positions[partition] = offset + 1
        cur = self.cursor = cursors.encode(self.positions)
        key = (ev.tenant, ev.collection)
        event = Event(partition, offset, ev.entity_id, ev.version, ev.raw)
        self.buffers.append(key, event, self.positions)
        targets, fanout = self._subs.get(key), self._fanout.get(key)
        if not targets and not fanout:
            return
        item = Item(
            Kind.ENTITY,
            "entity",
            frames.entity(ev.raw, cur),
            self.clock(),
            key=ev.key,
            received_at_ms=ev.received_at_ms,
            cursor=cur,
        )
        if targets:
            for conn in targets:
                conn.offer(item)
        if fanout:  # written in the pass (push.fanout)
            self._pending.add(key, item)
            if not self._pass_scheduled:
                self._pass_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush_pass)

    def client_event(self, ev: ClientEvent) -> None:
        """Route a conflict or receipt to its author's connections."""
        targets = self._clients.get((ev.tenant, ev.client_id))
        if not targets:
            return
        if self._pending:
            for conn in targets:
                self._pending.catch_up(conn)
        if ev.kind == "conflict":
            kind, frame = Kind.CONFLICT, frames.conflict(ev.raw)
        else:
            kind, frame = Kind.RECEIPT, frames.receipt(ev.raw)
        item = Item(kind, ev.kind, frame, self.clock(), received_at_ms=ev.received_at_ms)
        for conn in targets:
            if conn.user_id == ev.user_id:
                conn.offer(item)

    def _on_ready(self, conn: Connection) -> None:
        """``conn`` got a message while its writer idles: flush it in the next pass."""
        writer = self._writers.get(conn)
        if writer is None:
            conn.wake()
            return
        self._ready.append(writer)
        if not self._pass_scheduled:
            self._pass_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_pass)

    def _flush_pass(self) -> None:
        """One pass of eager writes over the ready connections (see :mod:`push.writer`);
        runs after the current dispatch so its messages share frames."""
        frames, wires, m = self._frames, self._wires, self.metrics
        account = PassAccount(m, self.clock, self.wall_ms)
        started = self.clock()
        if self._pending:
            self._pending.write(account)
        ready, self._ready = self._ready, []
        self._pass_scheduled = False
        for writer in ready:
            writer.flush_now(frames, wires, account)
        account.settle()
        if account.frames:
            m.flush_pass.observe(self.clock() - started)
            m.flush_pass_frames += account.frames

    # -- answering subscribe ---------------------------------------------------------

    def try_resume(self, conn: Connection, collection: str, cursor: str) -> bool:
        """Subscribe with ``snapshot {resumed: true}`` if the buffer covers ``cursor``."""
        try:
            position = cursors.decode(cursor)
        except CursorError:
            return False
        key = (conn.tenant, collection)
        if not self.started or not self.buffers.covers(key, position):
            return False
        states = self.buffers.latest_since(key, position)
        self._answer(conn, collection, states, resumed=True)
        return True

    def finish_snapshot(
        self, conn: Connection, collection: str, states: States, read_from: Mapping[int, int]
    ) -> bool:
        """Subscribe with a full snapshot of ``states`` read from Redis, which began when
        the hub was at ``read_from``; False (retry) if the buffer no longer covers it."""
        key = (conn.tenant, collection)
        if not self.buffers.covers(key, read_from):
            return False
        merged = dict(states)
        for entity_id, (version, state) in self.buffers.latest_since(key, {}).items():
            held = merged.get(entity_id)
            if held is None or version > held[0]:
                merged[entity_id] = (version, state)
        self._answer(conn, collection, merged, resumed=False)
        return True

    def _answer(self, conn: Connection, collection: str, states: States, *, resumed: bool) -> None:
        self._pending.materialize()  # the snapshot holds the pending events: they go first
        self._subscribe(conn, collection)
        frame = frames.snapshot(
            collection, (s for _, s in states.values()), self.cursor, resumed=resumed
        )
        conn.offer(
            Item(
                Kind.CONTROL,
                "snapshot",
                frame,
                self.clock(),
                key=f"snapshot:{collection}",
                cursor=self.cursor,
            )
        )
        self.metrics.subscribes["resumed" if resumed else "snapshot"] += 1

    # -- housekeeping ------------------------------------------------------------------

    def sweep(self, now: float, idle_timeout_s: float, close_timeout_s: float) -> None:
        """Idle timeouts and stuck writers; abandons connections that cannot close."""
        for conn, abort in list(self.connections.items()):
            if conn.sweep(now, idle_timeout_s, close_timeout_s):
                abort()

    async def drained(self) -> None:
        """Return once every connection has been removed (callers bound the wait)."""
        if self.connections:
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained

    def shutdown(self, now: float, retry_after_ms: int) -> None:
        """Ask every connection to leave: notice with its cursor, then close 4002."""
        for conn in list(self.connections):
            notice = frames.disconnect_notice(
                "server_shutting_down", retry_after_ms, conn.last_cursor
            )
            if conn.closing is None:
                self.metrics.disconnect_notices["server_shutting_down"] += 1
            conn.request_close(
                CloseCode.SERVER_SHUTTING_DOWN,
                "server_shutting_down",
                now,
                notice,
                "disconnect_notice",
            )
