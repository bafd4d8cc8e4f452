"""The writer's I/O: one task per connection, plus eager flushes done by the hub in a pass.

Waking one task per connection for every broadcast costs a task switch per frame, which
dominates the send path with a thousand subscribers. So when a connection's writer task
is idle (waiting for messages), the hub does its writing for it: after a dispatch it runs
one pass over the subscribers of the dispatched events (:mod:`push.fanout`) and the
connections that became ready and, for each, executes the policy's flushes right there.
On uvicorn (:mod:`push.wire`) a flush is one ``transport.write`` of a frame built once
for every connection popping the same items; under another ASGI server the pass drives
the ``send`` coroutine synchronously, which on a healthy socket completes without
suspending. Either way a pass is one tight loop of writes, like a raw broadcast. If a
socket cannot take a frame now (its transport is paused, or ``send`` suspends), the
frame is handed to that connection's writer task, which finishes it; the pass moves on
and never waits for one client.

The task itself handles everything that involves waiting: throttling (a timed wait for
byte budget), blocked sends, closing. :func:`run_writer` is that task.

Metrics of a pass are observed in aggregate (:class:`PassAccount`): per slice of at most
:data:`SLICE` frames, each distinct item's queue wait and end-to-end latency are observed
once with the count of sockets that got it, measured when the whole slice is written, so
a value is at most one slice late and never early.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from push.conflation import FrameCache, Item
from push.connection import Connection, Flush, Wait
from push.metrics import PushMetrics
from push.wire import FrameWriter, WireCache, text_frame

SendText = Callable[[str], Coroutine[Any, Any, None]]
CloseSocket = Callable[[int, str], Awaitable[None]]
Pending = tuple[Coroutine[Any, Any, None] | None, Any, Flush, float]

SLICE: Final = 32
"""Frames per metrics slice of a pass (a few hundred microseconds of writes)."""


class PassAccount:
    """Metrics of one flush pass, observed per slice of frames (see the module doc)."""

    __slots__ = ("_clock", "_frames", "_metrics", "_runs", "_started", "_wall_ms", "frames")

    def __init__(
        self, metrics: PushMetrics, clock: Callable[[], float], wall_ms: Callable[[], float]
    ) -> None:
        self._metrics = metrics
        self._clock = clock
        self._wall_ms = wall_ms
        self._runs: list[tuple[bytes, list[Item], list[int]]] = []  # frame, items, [sockets]
        self._frames = 0
        self._started = clock()
        self.frames = 0  # written in the whole pass

    def add(self, flush: Flush, sockets: int = 1) -> None:
        """``flush``'s frame was written to ``sockets`` sockets (connections popping the
        same items share it)."""
        runs = self._runs
        if runs and runs[-1][0] is flush.frame:
            runs[-1][2][0] += sockets
        else:
            runs.append((flush.frame, flush.items, [sockets]))
        self._frames += sockets
        if self._frames >= SLICE:
            self.settle()

    def settle(self) -> None:
        """Observe the frames written since the last settle."""
        frames = self._frames
        if not frames:
            return
        done, wall_ms = self._clock(), self._wall_ms()
        m = self._metrics
        sent, queue_wait, e2e = m.messages_sent, m.queue_wait, m.end_to_end
        for frame, items, (n,) in self._runs:
            m.sent_bytes += len(frame) * n
            for item in items:
                sent[item.msg_type] += n
                queue_wait.observe(done - item.enqueued_at, n)
                if item.received_at_ms is not None:
                    e2e.observe(max(0.0, wall_ms - item.received_at_ms) / 1000.0, n)
        m.frames_sent += frames
        m.socket_write.observe((done - self._started) / frames, frames)
        self.frames += frames
        self._runs = []
        self._frames = 0
        self._started = done


class Writer:
    """The socket side of one connection's writer."""

    __slots__ = (
        "clock",
        "close",
        "conn",
        "failed",
        "pending",
        "send_text",
        "wall_ms",
        "write_frame",
    )

    def __init__(
        self,
        conn: Connection,
        send_text: SendText,
        close: CloseSocket,
        clock: Callable[[], float],
        wall_ms: Callable[[], float],
        write_frame: FrameWriter | None = None,
    ) -> None:
        self.conn = conn
        self.send_text = send_text
        self.close = close
        self.clock = clock
        self.wall_ms = wall_ms
        self.write_frame = write_frame  # push.wire.direct_writer, when the server allows
        self.pending: Pending | None = None
        self.failed = False

    def flush_now(
        self,
        frames: FrameCache | None = None,
        wires: WireCache | None = None,
        account: PassAccount | None = None,
    ) -> None:
        """Write what the policy allows now, without suspending (called by the hub's pass
        while the writer task is idle); anything that needs waiting goes to the task.
        ``frames``, ``wires`` and ``account`` are the pass's, shared by its connections."""
        conn, clock = self.conn, self.clock
        conn.ready_signalled = False
        if self.pending is not None or self.failed or not conn.idle:
            return
        write = self.write_frame
        if write is not None:
            if frames is None or wires is None or account is None:  # a pass of one
                own = PassAccount(conn.metrics, clock, self.wall_ms)
                self._write_direct(write, FrameCache(), WireCache(), own)
                own.settle()
            else:
                self._write_direct(write, frames, wires, account)
            return
        while True:
            action = conn.next_action(clock(), frames)
            if isinstance(action, Flush):
                conn.writing_since = started = clock()
                coro = self.send_text(action.frame.decode())
                try:
                    blocked_on = coro.send(None)
                except StopIteration:
                    conn.written(action, started, clock(), self.wall_ms())
                    if account is not None:
                        account.frames += 1
                    if not conn.queue:
                        return  # drained (what next_action would say)
                    continue
                except Exception:
                    self.failed = True
                    conn.wake()
                    return
                self.pending = (coro, blocked_on, action, started)
                conn.wake()
                return
            if isinstance(action, Wait) and action.seconds is None:
                return  # drained
            conn.wake()  # throttled or closing: the task waits and closes
            return

    def _write_direct(
        self, write: FrameWriter, frames: FrameCache, wires: WireCache, account: PassAccount
    ) -> None:
        conn, clock = self.conn, self.clock
        while True:
            action = conn.next_action(clock(), frames)
            if isinstance(action, Flush):
                try:
                    written = write(wires.frame(action.frame))
                except Exception:  # the transport failed: the client is gone
                    self.failed = True
                    conn.wake()
                    return
                if written:
                    conn.sent(action)
                    account.add(action)
                    if not conn.queue:
                        return  # drained (what next_action would say)
                    continue
                # the transport is paused (or closing): the task waits for the ASGI send
                conn.writing_since = started = clock()
                self.pending = (None, None, action, started)
                conn.wake()
                return
            if isinstance(action, Wait) and action.seconds is None:
                return  # drained
            conn.wake()  # throttled or closing: the task waits and closes
            return

    async def finish_pending(self) -> None:
        """Complete a send the pass started (or left to the task) and the socket could not
        take at once."""
        assert self.pending is not None
        coro, blocked_on, action, started = self.pending
        self.pending = None
        if coro is None:
            await self.send_text(action.frame.decode())
        else:
            await _resume(coro, blocked_on)
        self.conn.written(action, started, self.clock(), self.wall_ms())

    async def send(self, frame: bytes) -> None:
        """Write ``frame`` directly when the socket takes it now, else by the ASGI send."""
        write = self.write_frame
        if write is None or not write(text_frame(frame)):
            await self.send_text(frame.decode())


async def _resume(coro: Coroutine[Any, Any, None], blocked_on: Any) -> None:
    """Finish driving ``coro`` after it yielded ``blocked_on``, the way a Task would:
    clear the future's blocking flag, wait until it is done, then send ``None`` (the
    coroutine reads the future's outcome itself)."""
    try:
        while True:
            if blocked_on is None:  # a bare yield: just give the loop a turn
                await asyncio.sleep(0)
            else:
                blocked_on._asyncio_future_blocking = False
                await asyncio.wait((blocked_on,))
            try:
                blocked_on = coro.send(None)
            except StopIteration:
                return
    except BaseException:
        coro.close()
        raise


async def run_writer(writer: Writer) -> None:
    """Drive the connection's policy until it closes; socket errors end it quietly."""
    conn, clock = writer.conn, writer.clock
    while True:
        if writer.failed:
            return
        if writer.pending is not None:
            await writer.finish_pending()
        action = conn.next_action(clock())
        if isinstance(action, Flush):
            conn.writing_since = started = clock()
            await writer.send(action.frame)
            conn.written(action, started, clock(), writer.wall_ms())
        elif isinstance(action, Wait):
            await conn.wait(action.seconds)
        else:
            if action.final is not None:
                conn.writing_since = clock()
                await writer.send(action.final)
                conn.metrics.sent_bytes += len(action.final)
                conn.metrics.frames_sent += 1
                conn.metrics.messages_sent[action.final_type] += 1
            conn.metrics.closes[action.code.label] += 1
            await writer.close(int(action.code), action.reason)
            conn.mark_closed()
            return
