"""push/writer.py: eager flush passes by the hub, hand-over of blocked sends to the task."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import orjson

from push import frames
from push.close_codes import CloseCode
from push.conflation import Item, Kind
from push.connection import Connection
from push.hub import Hub
from push.records import EntityEvent, decode_entity, decode_receipt
from push.writer import Writer, run_writer
from tests.push.records import entity_key, receipt, state
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
        self.sent: list[dict[str, object]] = []
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


async def test_hub_pass_writes_for_idle_writers_one_batch_each() -> None:
    hub = make_hub()
    socks = [FakeSocket() for _ in range(3)]
    writers = [connect(hub, s) for s in socks]
    await until_idle(*(w for w, _ in writers))
    for w, _ in writers:
        subscribe_fresh(hub, w.conn)
    for i in range(4):
        hub.entity(0, 100 + i, _event(f"e{i}"))
    await asyncio.sleep(0)  # the pass scheduled by the dispatch runs
    for sock in socks:
        assert len(sock.sent) == 1
        assert sock.sent[0]["type"] == "batch"
        assert len(sock.sent[0]["messages"]) == 4  # type: ignore[arg-type]
    assert hub.metrics.frames_sent == 3
    assert hub.metrics.flush_pass_frames == 3
    assert hub.metrics.flush_pass.count == 1  # one pass wrote all three
    assert all(w.conn.idle for w, _ in writers)  # the tasks never had to run
    for _, task in writers:
        task.cancel()


async def test_blocked_send_is_finished_by_the_writer_task_and_others_are_not_delayed() -> None:
    hub = make_hub()
    slow, fast = FakeSocket(), FakeSocket()
    (ws, ts), (wf, tf) = connect(hub, slow), connect(hub, fast)
    await until_idle(ws, wf)
    subscribe_fresh(hub, ws.conn)
    subscribe_fresh(hub, wf.conn)
    slow.gate = asyncio.Event()
    hub.entity(0, 100, _event("e1"))
    await asyncio.sleep(0)
    assert len(fast.sent) == 1  # written in the pass
    assert slow.sent == []
    assert ws.pending is not None  # handed to the slow connection's task
    hub.entity(0, 101, _event("e2"))
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


def _event(eid: str, version: int = 1, collection: str = "tasks") -> EntityEvent:
    return decode_entity(
        entity_key(eid, collection=collection), state(eid, version, collection=collection)
    )


async def test_direct_pass_writes_one_shared_frame_per_socket_and_counts_every_message() -> None:
    hub = make_hub()
    socks = [FakeSocket() for _ in range(3)]
    writers = [connect(hub, s, direct=True) for s in socks]
    await until_idle(*(w for w, _ in writers))
    for w, _ in writers:
        subscribe_fresh(hub, w.conn)
    m = hub.metrics
    before = m.messages_sent["entity"], m.queue_wait.count, m.end_to_end.count, m.frames_sent
    for i in range(4):
        hub.entity(0, 100 + i, _event(f"e{i}"))
    await asyncio.sleep(0)  # the pass scheduled by the dispatch runs
    frames = [s.wire[-1] for s in socks]
    assert frames[0] is frames[1] is frames[2]  # built once, written to each socket
    for sock in socks:
        assert sock.sent[-1]["type"] == "batch"
        assert len(sock.sent[-1]["messages"]) == 4  # type: ignore[arg-type]
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
    (ws, ts), (wf, tf) = connect(hub, slow, direct=True), connect(hub, fast, direct=True)
    await until_idle(ws, wf)
    subscribe_fresh(hub, ws.conn)
    subscribe_fresh(hub, wf.conn)
    slow.paused, slow.gate = True, asyncio.Event()
    hub.entity(0, 100, _event("e1"))
    await asyncio.sleep(0)
    assert fast.sent[-1]["type"] == "entity"  # written in the pass
    assert ws.pending is not None  # handed to the slow connection's task
    hub.entity(0, 101, _event("e2"))
    await asyncio.sleep(0)
    assert [m["type"] for m in fast.sent[-2:]] == ["entity", "entity"]
    slow.paused = False
    slow.gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    entities = [m for m in slow.sent if m["type"] == "entity"]
    assert [m["state"]["entity_id"] for m in entities] == ["e1", "e2"]  # type: ignore[index]
    tf.cancel()
    ts.cancel()


def _messages(sent: dict[str, object]) -> list[dict[str, object]]:
    """The messages of one frame (a batch's, or the frame itself)."""
    if sent["type"] == "batch":
        return sent["messages"]  # type: ignore[return-value]
    return [sent]


def _entities(sock: FakeSocket) -> list[tuple[str, int]]:
    return [
        (m["state"]["entity_id"], m["state"]["version"])  # type: ignore[index]
        for sent in sock.sent
        for m in _messages(sent)
        if m["type"] == "entity"
    ]


async def test_fanout_pass_conflates_an_entity_updated_twice_like_the_queue_would() -> None:
    hub = make_hub()
    socks = [FakeSocket() for _ in range(2)]
    writers = [connect(hub, s, direct=True) for s in socks]
    await until_idle(*(w for w, _ in writers))
    for w, _ in writers:
        subscribe_fresh(hub, w.conn)
    hub.entity(0, 100, _event("e1"))
    hub.entity(0, 101, _event("e2"))
    hub.entity(0, 102, _event("e1", 2))
    await asyncio.sleep(0)
    for sock in socks:
        assert len(sock.sent) == 1
        assert _entities(sock) == [("e2", 1), ("e1", 2)]  # latest state, at its position
    m = hub.metrics
    assert m.messages_conflated["entity_superseded"] == 2
    assert m.messages_sent["entity"] == 4
    assert all(w.conn.last_cursor == hub.cursor for w, _ in writers)
    for _, task in writers:
        task.cancel()


async def test_messages_offered_between_dispatch_and_pass_keep_their_order() -> None:
    hub = make_hub()
    sock = FakeSocket()
    w, task = connect(hub, sock, direct=True)
    await until_idle(w)
    subscribe_fresh(hub, w.conn)
    hub.offer(w.conn, Item(Kind.CONTROL, "pong", frames.PONG, 0.0))
    hub.entity(0, 100, _event("e1"))
    hub.offer(w.conn, Item(Kind.CONTROL, "pong", frames.PONG, 0.0))
    hub.entity(0, 101, _event("e2"))
    await asyncio.sleep(0)
    (sent,) = sock.sent
    assert [m["type"] for m in _messages(sent)] == ["pong", "entity", "pong", "entity"]
    assert _entities(sock) == [("e1", 1), ("e2", 1)]
    task.cancel()


async def test_subscribing_between_dispatch_and_pass_gets_the_event_in_its_snapshot_only() -> None:
    hub = make_hub()
    old_sock, new_sock = FakeSocket(), FakeSocket()
    (old, t1), (new, t2) = connect(hub, old_sock, direct=True), connect(hub, new_sock, direct=True)
    await until_idle(old, new)
    subscribe_fresh(hub, old.conn)
    hub.entity(0, 100, _event("e1"))
    assert hub.finish_snapshot(new.conn, "tasks", {}, dict(hub.positions))
    await asyncio.sleep(0)
    assert _entities(old_sock) == [("e1", 1)]
    (snapshot,) = new_sock.sent  # no entity message older than the snapshot's cursor
    assert snapshot["type"] == "snapshot"
    assert [e["entity_id"] for e in snapshot["entities"]] == ["e1"]  # type: ignore[union-attr]
    assert snapshot["cursor"] == hub.cursor == old.conn.last_cursor == new.conn.last_cursor
    t1.cancel()
    t2.cancel()


async def test_unsubscribing_between_dispatch_and_pass_drops_and_counts_the_event() -> None:
    hub = make_hub()
    sock = FakeSocket()
    w, task = connect(hub, sock, direct=True)
    await until_idle(w)
    subscribe_fresh(hub, w.conn)
    hub.entity(0, 100, _event("e1"))
    hub.unsubscribe(w.conn, "tasks")
    await asyncio.sleep(0)
    assert sock.sent == []
    assert hub.metrics.messages_dropped["unsubscribed"] == 1
    task.cancel()


async def test_a_pass_over_two_collections_keeps_dispatch_order_per_connection() -> None:
    hub = make_hub()
    both, tasks, notes = FakeSocket(), FakeSocket(), FakeSocket()
    (wb, tb), (wt, tt), (wn, tn) = (connect(hub, s, direct=True) for s in (both, tasks, notes))
    await until_idle(wb, wt, wn)
    for w, collection in ((wb, "tasks"), (wb, "notes"), (wt, "tasks"), (wn, "notes")):
        subscribe_fresh(hub, w.conn, collection)
    hub.entity(0, 100, _event("t1"))
    hub.entity(0, 101, _event("n1", collection="notes"))
    after_notes = hub.cursor
    hub.entity(0, 102, _event("t2"))
    await asyncio.sleep(0)
    assert _entities(both) == [("t1", 1), ("n1", 1), ("t2", 1)]
    assert _entities(tasks) == [("t1", 1), ("t2", 1)]
    assert _entities(notes) == [("n1", 1)]
    assert [len(s.sent) for s in (both, tasks, notes)] == [1, 1, 1]  # one frame each
    assert wb.conn.last_cursor == wt.conn.last_cursor == hub.cursor
    assert wn.conn.last_cursor == after_notes
    for task in (tb, tt, tn):
        task.cancel()


async def test_a_subscriber_without_budget_for_the_pass_frame_gets_what_its_limit_allows() -> None:
    hub = make_hub()
    rich, poor = FakeSocket(), FakeSocket()
    one = len(frames.entity(state("e1"), hub.cursor)) + 40  # one message, not two
    (wr, tr), (wp, tp) = (
        connect(hub, rich, direct=True),
        connect(hub, poor, direct=True, budget=one),
    )
    await until_idle(wr, wp)
    subscribe_fresh(hub, wr.conn)
    subscribe_fresh(hub, wp.conn)
    hub.entity(0, 100, _event("e1"))
    hub.entity(0, 101, _event("e2"))
    await asyncio.sleep(0)
    assert _entities(rich) == [("e1", 1), ("e2", 1)]
    assert _entities(poor) == [("e1", 1)]  # the rest waits for budget
    assert len(wp.conn.queue) == 1
    assert hub.metrics.throttle_events == 1
    tr.cancel()
    tp.cancel()


async def test_a_message_to_one_subscriber_mid_dispatch_leaves_the_others_the_shared_frame() -> (
    None
):
    hub = make_hub()
    socks = [FakeSocket() for _ in range(3)]
    writers = [connect(hub, s, direct=True) for s in socks]
    await until_idle(*(w for w, _ in writers))
    for w, _ in writers:
        subscribe_fresh(hub, w.conn)
    pinged = writers[0][0].conn
    queued: list[Item] = []  # what the others were offered one by one: nothing
    for w, _ in writers[1:]:
        w.conn.offer = queued.append  # type: ignore[method-assign]
    hub.entity(0, 100, _event("e1"))
    hub.offer(pinged, Item(Kind.CONTROL, "pong", frames.PONG, 0.0))
    hub.entity(0, 101, _event("e2"))
    hub.offer(pinged, Item(Kind.CONTROL, "pong", frames.PONG, 0.0))
    hub.entity(0, 102, _event("e3"))
    await asyncio.sleep(0)
    (sent,) = socks[0].sent  # one batch, in the order of the offers
    assert [m["type"] for m in _messages(sent)] == ["entity", "pong", "entity", "pong", "entity"]
    assert _entities(socks[0]) == [("e1", 1), ("e2", 1), ("e3", 1)]
    assert queued == []
    assert socks[1].wire[-1] is socks[2].wire[-1]  # the others: the stream's frame
    assert _entities(socks[1]) == _entities(socks[2]) == [("e1", 1), ("e2", 1), ("e3", 1)]
    assert hub.metrics.messages_sent["entity"] == 9
    assert all(w.conn.last_cursor == hub.cursor for w, _ in writers)
    for _, task in writers:
        task.cancel()


async def test_a_receipt_for_one_subscriber_mid_dispatch_follows_the_events_before_it() -> None:
    hub = make_hub()
    author, other = FakeSocket(), FakeSocket()
    (wa, ta), (wo, to) = connect(hub, author, direct=True), connect(hub, other, direct=True)
    await until_idle(wa, wo)
    subscribe_fresh(hub, wa.conn)
    subscribe_fresh(hub, wo.conn)
    hub.entity(0, 100, _event("e1"))
    hub.client_event(decode_receipt(b"acme/dev-1", receipt("op-1")))  # both are dev-1
    hub.entity(0, 101, _event("e2"))
    await asyncio.sleep(0)
    for sock in (author, other):
        (sent,) = sock.sent
        assert [m["type"] for m in _messages(sent)] == ["entity", "receipt", "entity"]
    ta.cancel()
    to.cancel()
