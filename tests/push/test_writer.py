"""push/writer.py: eager flush passes by the hub, hand-over of blocked sends to the task."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import orjson

from push.close_codes import CloseCode
from push.connection import Connection
from push.hub import Hub
from push.records import EntityEvent, decode_entity
from push.writer import Writer, run_writer
from tests.push.records import entity_key, state
from tests.push.test_connection import LIMITS
from tests.push.test_hub import make_hub, subscribe_fresh
from tests.push.test_wire import parse


async def until_idle(*writers: Writer) -> None:
    for _ in range(100):
        if all(w.conn.idle for w in writers):
            return
        await asyncio.sleep(0)  # a loop turn, not a timed wait
    raise AssertionError("writer tasks never went idle")


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []  # the frames' JSON
        self.closed: list[int] = []
        self.gate: asyncio.Event | None = None  # set: sends block until it opens
        self.wire: list[bytes] = []  # frames written directly (push.wire)
        self.paused = False  # the direct writer declines, as with a paused transport

    def write_frame(self, frame: bytes) -> bool:
        if self.paused:
            return False
        self.wire.append(frame)
        self.sent.append(orjson.loads(parse(frame).data))
        return True

    async def send_text(self, text: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(orjson.loads(text))

    async def close(self, code: int, reason: str) -> None:
        self.closed.append(code)


def connect(
    hub: Hub, sock: FakeSocket, *, direct: bool = False, budget: int = 1_000_000
) -> tuple[Writer, asyncio.Task[None]]:
    limits = replace(LIMITS, max_bps=budget, burst_bytes=budget)
    conn = Connection(
        tenant="acme", user_id="alice", client_id="dev-1", limits=limits, metrics=hub.metrics, now=0
    )
    write = sock.write_frame if direct else None
    writer = Writer(conn, sock.send_text, sock.close, lambda: 0.0, lambda: 0.0, write)
    hub.add(conn, lambda: None, writer)
    return writer, asyncio.create_task(run_writer(writer))


async def subscribed(
    hub: Hub, socks: list[FakeSocket], *, direct: bool = False
) -> list[tuple[Writer, asyncio.Task[None]]]:
    """Connect a writer per socket, let their tasks go idle, subscribe each to "tasks"."""
    writers = [connect(hub, s, direct=direct) for s in socks]
    await until_idle(*(w for w, _ in writers))
    for w, _ in writers:
        subscribe_fresh(hub, w.conn)
    return writers


async def test_hub_pass_writes_for_idle_writers_one_batch_each() -> None:
    hub = make_hub()
    socks = [FakeSocket() for _ in range(3)]
    writers = await subscribed(hub, socks)
    for i in range(4):
        hub.entity(0, 100 + i, entity_event(f"e{i}"))
    await asyncio.sleep(0)  # the pass scheduled by the dispatch runs
    for sock in socks:
        assert len(sock.sent) == 1
        assert sock.sent[0]["type"] == "batch"
        assert len(sock.sent[0]["messages"]) == 4
    assert hub.metrics.frames_sent == 3
    assert hub.metrics.flush_pass_frames == 3
    assert hub.metrics.flush_pass.count == 1  # one pass wrote all three
    assert all(w.conn.idle for w, _ in writers)  # the tasks never had to run
    for _, task in writers:
        task.cancel()


async def test_blocked_send_is_finished_by_the_writer_task_and_others_are_not_delayed() -> None:
    hub = make_hub()
    slow, fast = FakeSocket(), FakeSocket()
    (ws, ts), (_wf, tf) = await subscribed(hub, [slow, fast])
    slow.gate = asyncio.Event()
    hub.entity(0, 100, entity_event("e1"))
    await asyncio.sleep(0)
    assert len(fast.sent) == 1  # written in the pass
    assert slow.sent == []
    assert ws.pending is not None  # handed to the slow connection's task
    hub.entity(0, 101, entity_event("e2"))
    await asyncio.sleep(0)
    assert len(fast.sent) == 2
    slow.gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert [m["type"] for m in slow.sent] == ["entity", "entity"]
    assert hub.metrics.messages_sent["entity"] == 4
    ws.conn.request_close(CloseCode.IDLE_TIMEOUT, "idle_timeout", 0.0)
    await asyncio.wait_for(ts, 5)
    assert slow.closed == [4001]
    tf.cancel()


def entity_event(eid: str, version: int = 1, collection: str = "tasks") -> EntityEvent:
    return decode_entity(
        entity_key(eid, collection=collection), state(eid, version, collection=collection)
    )


async def test_direct_pass_writes_one_shared_frame_per_socket_and_counts_every_message() -> None:
    hub = make_hub()
    socks = [FakeSocket() for _ in range(3)]
    writers = await subscribed(hub, socks, direct=True)
    m = hub.metrics
    before = m.messages_sent["entity"], m.queue_wait.count, m.end_to_end.count, m.frames_sent
    for i in range(4):
        hub.entity(0, 100 + i, entity_event(f"e{i}"))
    await asyncio.sleep(0)  # the pass scheduled by the dispatch runs
    frames = [s.wire[-1] for s in socks]
    assert frames[0] is frames[1] is frames[2]  # built once, written to each socket
    for sock in socks:
        assert sock.sent[-1]["type"] == "batch"
        assert len(sock.sent[-1]["messages"]) == 4
    assert m.messages_sent["entity"] - before[0] == 12
    assert m.queue_wait.count - before[1] == 12
    assert m.end_to_end.count - before[2] == 12
    assert m.frames_sent - before[3] == 3
    assert m.flush_pass_frames == 3
    assert m.flush_pass.count == 1
    assert all(w.conn.last_cursor == hub.cursor for w, _ in writers)
    assert all(w.conn.idle for w, _ in writers)  # the tasks never had to run
    for _, task in writers:
        task.cancel()


async def test_paused_transport_hands_the_frame_to_the_task_in_order() -> None:
    hub = make_hub()
    slow, fast = FakeSocket(), FakeSocket()
    (ws, ts), (_wf, tf) = await subscribed(hub, [slow, fast], direct=True)
    slow.paused, slow.gate = True, asyncio.Event()
    hub.entity(0, 100, entity_event("e1"))
    await asyncio.sleep(0)
    assert fast.sent[-1]["type"] == "entity"  # written in the pass
    assert ws.pending is not None  # handed to the slow connection's task
    hub.entity(0, 101, entity_event("e2"))
    await asyncio.sleep(0)
    assert [m["type"] for m in fast.sent[-2:]] == ["entity", "entity"]
    slow.paused = False
    slow.gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    entities = [m for m in slow.sent if m["type"] == "entity"]
    assert [m["state"]["entity_id"] for m in entities] == ["e1", "e2"]
    tf.cancel()
    ts.cancel()
