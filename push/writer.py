"""The writer's I/O: one task per connection, plus eager flushes done by the hub in a pass.

Waking one task per connection for every broadcast costs a task switch per frame, which
dominates the send path with a thousand subscribers. So when a connection's writer task
is idle (waiting for messages), the hub does its writing for it: after a dispatch it runs
one pass over the connections that became ready and, for each, executes the policy's
flushes right there, driving the ASGI ``send`` coroutine synchronously. On a healthy
socket ``send`` completes without suspending (the transport takes the bytes), so a pass
is one tight loop of writes, like a raw broadcast. If a ``send`` does suspend (the
client's socket is full), the started coroutine is handed to that connection's writer
task, which finishes it; the pass moves on and never waits for one client.

The task itself handles everything that involves waiting: throttling (a timed wait for
byte budget), blocked sends, closing. :func:`run_writer` is that task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from push.connection import Connection, Flush, Wait

SendText = Callable[[str], Coroutine[Any, Any, None]]
CloseSocket = Callable[[int, str], Awaitable[None]]


class Writer:
    """The socket side of one connection's writer."""

    __slots__ = ("clock", "close", "conn", "failed", "pending", "send_text", "wall_ms")

    def __init__(
        self,
        conn: Connection,
        send_text: SendText,
        close: CloseSocket,
        clock: Callable[[], float],
        wall_ms: Callable[[], float],
    ) -> None:
        self.conn = conn
        self.send_text = send_text
        self.close = close
        self.clock = clock
        self.wall_ms = wall_ms
        self.pending: tuple[Coroutine[Any, Any, None], Any, Flush, float] | None = None
        self.failed = False

    def flush_now(self) -> None:
        """Write what the policy allows now, without suspending (called by the hub's pass
        while the writer task is idle); anything that needs waiting goes to the task."""
        conn, clock = self.conn, self.clock
        conn.ready_signalled = False
        if self.pending is not None or self.failed or not conn.idle:
            return
        while True:
            action = conn.next_action(clock())
            if isinstance(action, Flush):
                conn.writing_since = started = clock()
                coro = self.send_text(action.frame.decode())
                try:
                    blocked_on = coro.send(None)
                except StopIteration:
                    conn.written(action, started, clock(), self.wall_ms())
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

    async def finish_pending(self) -> None:
        """Complete a send the pass started and the socket could not take at once."""
        assert self.pending is not None
        coro, blocked_on, action, started = self.pending
        self.pending = None
        await _resume(coro, blocked_on)
        self.conn.written(action, started, self.clock(), self.wall_ms())


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
    conn, clock, send_text = writer.conn, writer.clock, writer.send_text
    while True:
        if writer.failed:
            return
        if writer.pending is not None:
            await writer.finish_pending()
        action = conn.next_action(clock())
        if isinstance(action, Flush):
            conn.writing_since = started = clock()
            await send_text(action.frame.decode())
            conn.written(action, started, clock(), writer.wall_ms())
        elif isinstance(action, Wait):
            await conn.wait(action.seconds)
        else:
            if action.final is not None:
                conn.writing_since = clock()
                await send_text(action.final.decode())
                conn.metrics.sent_bytes += len(action.final)
                conn.metrics.frames_sent += 1
                conn.metrics.messages_sent[action.final_type] += 1
            conn.metrics.closes[action.code.label] += 1
            await writer.close(int(action.code), action.reason)
            conn.mark_closed()
            return
