"""One client connection: read frames, run handlers, write responses in request order.

Requests are started in arrival order (each handler runs synchronously up to its first
await, so appends happen in order) and may overlap: a produce waiting for its fsync
does not stop the next request from being read. Responses are written strictly in
request order, as Kafka clients require. Anything wrong with a frame, or a Python
exception in a handler, closes this connection only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Awaitable

from broker.api import HANDLERS
from broker.api.registry import RequestContext
from broker.codec.headers import frame_response, parse_request_header
from broker.errors import DecodeError
from broker.state import BrokerState

log = logging.getLogger(__name__)

_SIZE = struct.Struct(">i")
_PRODUCE, _FETCH = 0, 1

Pending = tuple[int, "asyncio.Task[bytes | None]"]


class Connection:
    def __init__(
        self, state: BrokerState, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.state = state
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.host = peer[0] if isinstance(peer, tuple) else ""
        self.queue: asyncio.Queue[Pending | None] = asyncio.Queue(
            state.settings.max_in_flight_requests
        )

    async def serve(self) -> None:
        self.state.metrics.connections.inc()
        sender = asyncio.create_task(self._send_loop())
        try:
            await self._receive_loop()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # client went away, possibly mid-frame
        except DecodeError as exc:
            self._fail("malformed", str(exc))
        finally:
            # The client is gone or misbehaved: nobody will read pending responses.
            sender.cancel()
            self._drain_cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await sender
            self.writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self.writer.wait_closed()

    async def _receive_loop(self) -> None:
        limit = self.state.settings.max_request_bytes
        while not self.writer.is_closing():
            (size,) = _SIZE.unpack(await self.reader.readexactly(4))
            if size < 8 or size > limit:
                self._fail("size", f"frame of {size} bytes (limit {limit})")
                return
            frame = await self.reader.readexactly(size)
            self.state.metrics.bytes_in.inc(size + 4)
            header, body = parse_request_header(frame)
            api = HANDLERS.get(header.api_key)
            if api is None or not (api.serves(header.api_version) or api.any_version):
                self._fail(
                    "unsupported",
                    f"api key {header.api_key} version {header.api_version} not served",
                )
                return
            self.state.metrics.requests.labels(api.name).inc()
            ctx = RequestContext(self.state, header, self.host)
            task = asyncio.create_task(self._timed(api.key, api.fn(ctx, body)))
            await self.queue.put((header.correlation_id, task))

    async def _timed(self, key: int, work: Awaitable[bytes | None]) -> bytes | None:
        start = time.perf_counter()
        result = await work
        if key == _PRODUCE:
            self.state.metrics.produce_latency.observe(time.perf_counter() - start)
        elif key == _FETCH:
            self.state.metrics.fetch_latency.observe(time.perf_counter() - start)
        return result

    async def _send_loop(self) -> None:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            correlation_id, task = item
            try:
                body = await task
            except Exception as exc:
                self._fail("handler", repr(exc), exc_info=True)
                self._drain_cancel()
                return
            if body is None:  # acks=0 produce: no response at all
                continue
            out = frame_response(correlation_id, body)
            self.writer.write(out)
            self.state.metrics.bytes_out.inc(len(out))
            if self.writer.transport.get_write_buffer_size() > 1 << 20:
                await self.writer.drain()

    def _drain_cancel(self) -> None:
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if item is not None:
                item[1].cancel()

    def _fail(self, reason: str, detail: str, exc_info: bool = False) -> None:
        self.state.metrics.errors.labels(reason).inc()
        log.warning(
            "closing connection",
            extra={"peer": self.peer, "reason": reason, "detail": detail},
            exc_info=exc_info,
        )
        self.writer.close()
