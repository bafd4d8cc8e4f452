"""End-to-end latency client: many WebSocket subscribers in one lean asyncio process.

Every bench op carries one field, ``bench``, whose value is ``"<n>:<posted_ms>"``: ``n``
is the op's sequence number (``step * STEP_SPAN + i``, so the step is ``n // STEP_SPAN``)
and ``posted_ms`` the wall-clock time the op was posted (ms, float). Each entity state a
subscriber receives (alone or inside a ``batch`` frame; snapshots are not deliveries) is
one delivery; its latency is receipt time minus ``posted_ms``. Both processes read the
same clock, so nothing is stamped by the system under test.

The WebSocket side is a minimal RFC 6455 client (one asyncio Protocol per connection, no
JSON parsing of deliveries, one regex over each text frame) so 1,000 connections at
50,000 deliveries/s fit beside the system on the same cores. It runs as a child process
of ``perf/bench.py`` (``python perf/e2e_client.py``), driven by one JSON command per line
on stdin and answering one JSON line on stdout per command:

* ``{"cmd": "open", "url": ws_url, "collection": c, "tokens": [jwt, ...]}`` opens one
  connection per token, subscribes and waits for every snapshot;
* ``{"cmd": "count", "step": k}``: distinct deliveries of step ``k`` so far and seconds
  since the last one (the bench waits for the pipeline to drain with it);
* ``{"cmd": "result", "step": k}``: distinct deliveries, duplicates and latency
  percentiles of step ``k`` (then forgotten), connections still open, server closes;
* ``{"cmd": "close"}`` closes every connection; ``{"cmd": "quit"}`` exits.

The parsing helpers (``deliveries``, ``bench_field``) are also used by the Locust file.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import sys
import time
from array import array
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

STEP_SPAN = 1_000_000_000
FIELD = "bench"
# `"bench":{"value":"<n>:<ms>"` inside an entity state's field registers
_MARK = re.compile(rb'"bench":\{"value":"(\d+):([0-9.]+)"')
_RECEIVED = re.compile(rb'"received_at_ms":(\d+)')
_SNAPSHOT = b'{"type":"snapshot"'
_BATCH = b'{"type":"batch"'


def bench_field(n: int, posted_ms: float) -> str:
    """The value of the ``bench`` field of op ``n`` posted at ``posted_ms``."""
    return f"{n}:{posted_ms:.3f}"


def deliveries(frame: bytes) -> list[tuple[int, float]]:
    """``(n, posted_ms)`` of every bench entity state delivered in one server text frame.

    Snapshot frames carry states the client already had (or older ones) and are not
    deliveries; a batch frame may hold a snapshot among entity messages, so batches are
    parsed properly (rare) instead of scanned.
    """
    if frame.startswith(_SNAPSHOT):
        return []
    if frame.startswith(_BATCH) and _SNAPSHOT in frame:
        out: list[tuple[int, float]] = []
        for message in orjson.loads(frame)["messages"]:
            if message.get("type") == "entity":
                out.extend(deliveries(orjson.dumps(message)))
        return out
    return [(int(n), float(ms)) for n, ms in _MARK.findall(frame)]


@dataclass
class StepStats:
    """Deliveries of one step across every connection."""

    latencies_ms: array[float] = field(default_factory=lambda: array("d"))
    # ingest's received_at_ms stamp - post time: the share of the latency before ingest
    to_ingest_ms: array[float] = field(default_factory=lambda: array("d"))
    seen: set[int] = field(default_factory=set)  # conn index * STEP_SPAN * 1000 + n
    duplicates: int = 0
    last_at: float = 0.0


class Tracker:
    """Collects deliveries by step; one per client process."""

    def __init__(self) -> None:
        self.steps: dict[int, StepStats] = {}
        self.frames = 0
        self.bytes = 0
        self.other: dict[str, int] = {}

    def on_frame(self, conn: int, frame: bytes, now_ms: float) -> None:
        self.frames += 1
        self.bytes += len(frame)
        found = deliveries(frame)
        if not found:
            kind = frame[9:40].split(b'"', 1)[0].decode(errors="replace")
            self.other[kind] = self.other.get(kind, 0) + 1
            return
        stamps = _RECEIVED.findall(frame)
        if len(stamps) != len(found):  # states of other writers in the frame: no pairing
            stamps = []
        for i, (n, posted) in enumerate(found):
            step = self.steps.get(n // STEP_SPAN)
            if step is None:
                step = self.steps[n // STEP_SPAN] = StepStats()
            key = conn * STEP_SPAN * 1000 + n
            if key in step.seen:
                step.duplicates += 1
                continue
            step.seen.add(key)
            step.latencies_ms.append(now_ms - posted)
            if stamps:
                step.to_ingest_ms.append(int(stamps[i]) - posted)
            step.last_at = time.monotonic()


class WsConnection(asyncio.Protocol):
    """A minimal WebSocket client: HTTP upgrade, masked text/ping sends, frame parsing.

    Server frames are never masked; fragmented messages are reassembled (the push
    server does not fragment, but the protocol allows it).
    """

    def __init__(self, index: int, path: str, tracker: Tracker) -> None:
        self.index, self.path, self.tracker = index, path, tracker
        self.buf = bytearray()
        self.fragments = bytearray()
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.upgraded: asyncio.Future[None] = loop.create_future()
        self.subscribed: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[int | None] = loop.create_future()
        self.close_code: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Key: {key}\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        for fut in (self.upgraded, self.subscribed):
            if not fut.done():
                fut.set_exception(ConnectionError(f"connection lost: {exc or 'closed'}"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    def send(self, payload: bytes, opcode: int = 0x1) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        n = len(payload)
        if n < 126:
            head = bytes([0x80 | opcode, 0x80 | n])
        elif n < 65536:
            head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))  # client frames are small
        self.transport.write(head + mask + masked)

    def close(self) -> None:
        self.send((1000).to_bytes(2, "big"), opcode=0x8)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                status = bytes(buf[: buf.find(b"\r\n")]).decode(errors="replace")
                self.upgraded.set_exception(ConnectionError(f"upgrade refused: {status}"))
                assert self.transport is not None
                self.transport.close()
                return
            del buf[: end + 4]
            self.upgraded.set_result(None)
        pos, size = 0, len(buf)
        now_ms = time.time() * 1000
        while size - pos >= 2:
            b0, n = buf[pos], buf[pos + 1] & 0x7F
            hdr = 2
            if n == 126:
                if size - pos < 4:
                    break
                n, hdr = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif n == 127:
                if size - pos < 10:
                    break
                n, hdr = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if size - pos < hdr + n:
                break
            payload = bytes(buf[pos + hdr : pos + hdr + n])
            pos += hdr + n
            self.on_frame(b0 & 0x80 != 0, b0 & 0x0F, payload, now_ms)
        del buf[:pos]

    def on_frame(self, fin: bool, opcode: int, payload: bytes, now_ms: float) -> None:
        if opcode == 0x0 or (opcode == 0x1 and not fin):
            self.fragments += payload
            if not fin:
                return
            payload, self.fragments = bytes(self.fragments), bytearray()
            opcode = 0x1
        if opcode == 0x1:
            if not self.subscribed.done() and b'"type":"snapshot"' in payload:
                self.subscribed.set_result(None)
            self.tracker.on_frame(self.index, payload, now_ms)
        elif opcode == 0x8:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            if not self.closed.done():
                self.closed.set_result(self.close_code)
            assert self.transport is not None
            self.transport.close()
        elif opcode == 0x9:
            self.send(payload, opcode=0xA)


def percentiles(values: array[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean of latencies in ms (zeros when empty)."""
    import numpy as np

    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
    a = np.frombuffer(values, dtype=np.float64)
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(a.max()),
        "mean": float(a.mean()),
    }


class Client:
    """The subscriber fleet and its command handler."""

    def __init__(self) -> None:
        self.tracker = Tracker()
        self.conns: list[WsConnection] = []
        self.pinger: asyncio.Task[None] | None = None

    async def open(self, url: str, collection: str, tokens: list[str]) -> dict[str, Any]:
        started = time.monotonic()
        host, _, rest = url.removeprefix("ws://").partition("/")
        hostname, _, port = host.partition(":")
        subscribe = orjson.dumps({"type": "subscribe", "collection": collection})
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(100)  # connection attempts in flight

        async def one(i: int, token: str) -> WsConnection:
            async with gate:
                path = f"/{rest}?token={token}&client_id=bench-sub-{i}"
                _, conn = await loop.create_connection(
                    lambda: WsConnection(len(self.conns) + i, path, self.tracker),
                    hostname,
                    int(port or 80),
                )
                await asyncio.wait_for(conn.upgraded, 30)
                conn.send(subscribe)
                await asyncio.wait_for(conn.subscribed, 30)
                return conn

        results = await asyncio.gather(
            *(one(i, t) for i, t in enumerate(tokens)), return_exceptions=True
        )
        errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
        self.conns.extend(r for r in results if isinstance(r, WsConnection))
        if self.pinger is None:
            self.pinger = asyncio.create_task(self.ping_forever())
        return {
            "opened": len(self.conns),
            "failed": len(errors),
            "errors": sorted(set(errors))[:5],
            "seconds": time.monotonic() - started,
        }

    async def ping_forever(self) -> None:
        """An application ping every 20 s keeps connections under push's idle timeout."""
        ping = b'{"type":"ping"}'
        while True:
            await asyncio.sleep(20)
            for i, conn in enumerate(self.conns):
                conn.send(ping)
                if i % 100 == 99:
                    await asyncio.sleep(0)

    def count(self, step: int) -> dict[str, Any]:
        stats = self.tracker.steps.get(step)
        idle = time.monotonic() - stats.last_at if stats else None
        return {"distinct": len(stats.seen) if stats else 0, "idle_s": idle}

    def result(self, step: int) -> dict[str, Any]:
        stats = self.tracker.steps.pop(step, StepStats())
        closed = [c.close_code for c in self.conns if c.closed.done()]
        return {
            "distinct": len(stats.seen),
            "duplicates": stats.duplicates,
            "latency_ms": percentiles(stats.latencies_ms),
            "to_ingest_ms": percentiles(stats.to_ingest_ms),
            "connections_open": len(self.conns) - len(closed),
            "server_closes": {str(code): closed.count(code) for code in set(closed)},
            "frames": self.tracker.frames,
            "bytes": self.tracker.bytes,
            "other_frames": dict(self.tracker.other),
        }

    async def close(self) -> dict[str, Any]:
        for conn in self.conns:
            conn.close()
        waits = [c.closed for c in self.conns]
        if waits:
            await asyncio.wait(waits, timeout=10)
        for conn in self.conns:
            if conn.transport is not None:
                conn.transport.close()
        closed = len(self.conns)
        self.conns.clear()
        self.tracker = Tracker()
        return {"closed": closed}

    async def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        name = cmd.get("cmd")
        if name == "open":
            return await self.open(cmd["url"], cmd["collection"], cmd["tokens"])
        if name == "count":
            return self.count(int(cmd["step"]))
        if name == "result":
            return self.result(int(cmd["step"]))
        if name == "close":
            return await self.close()
        return {"error": f"unknown command {name!r}"}


async def serve_stdio() -> None:
    """Child mode: one JSON command per stdin line, one JSON answer per stdout line."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    client = Client()
    while line := await reader.readline():
        cmd = orjson.loads(line)
        if cmd.get("cmd") == "quit":
            await client.close()
            break
        answer = await client.handle(cmd)
        sys.stdout.buffer.write(orjson.dumps(answer) + b"\n")
        sys.stdout.buffer.flush()


def main() -> None:
    # The bench drives this process over stdin and stops it; Ctrl-C is the bench's to handle
    # (stdin closing ends the loop if the bench goes away).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve_stdio())
    else:
        uvloop.run(serve_stdio())


if __name__ == "__main__":
    main()
