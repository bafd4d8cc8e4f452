"""push/fanout.py: entity events wait in their stream for the pass, which writes the
stream's frame to every subscriber that can take it and keeps each connection's order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from push import frames
from push.conflation import Item, Kind
from push.records import decode_receipt
from tests.push.records import receipt, state
from tests.push.test_hub import make_hub, subscribe_fresh
from tests.push.test_writer import FakeSocket, connect, entity_event, subscribed, until_idle


def _messages(sent: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages of one frame (a batch's, or the frame itself)."""
    if sent["type"] == "batch":
        messages: list[dict[str, Any]] = sent["messages"]
        return messages
    return [sent]


def _entities(sock: FakeSocket) -> list[tuple[str, int]]:
    return [
        (m["state"]["entity_id"], m["state"]["version"])
        for sent in sock.sent
        for m in _messages(sent)
        if m["type"] == "entity"
    ]


async def test_fanout_pass_conflates_an_entity_updated_twice_like_the_queue_would() -> None:
    hub = make_hub()
    socks = [FakeSocket() for _ in range(2)]
    writers = await subscribed(hub, socks, direct=True)
    hub.entity(0, 100, entity_event("e1"))
    hub.entity(0, 101, entity_event("e2"))
    hub.entity(0, 102, entity_event("e1", 2))
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
    ((w, task),) = await subscribed(hub, [sock], direct=True)
    hub.offer(w.conn, Item(Kind.CONTROL, "pong", frames.PONG, 0.0))
    hub.entity(0, 100, entity_event("e1"))
    hub.offer(w.conn, Item(Kind.CONTROL, "pong", frames.PONG, 0.0))
    hub.entity(0, 101, entity_event("e2"))
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
    hub.entity(0, 100, entity_event("e1"))
    assert hub.finish_snapshot(new.conn, "tasks", {}, dict(hub.positions))
    await asyncio.sleep(0)
    assert _entities(old_sock) == [("e1", 1)]
    (snapshot,) = new_sock.sent  # no entity message older than the snapshot's cursor
    assert snapshot["type"] == "snapshot"
    assert [e["entity_id"] for e in snapshot["entities"]] == ["e1"]
    assert snapshot["cursor"] == hub.cursor == old.conn.last_cursor == new.conn.last_cursor
    t1.cancel()
    t2.cancel()


async def test_unsubscribing_between_dispatch_and_pass_drops_and_counts_the_event() -> None:
    hub = make_hub()
    sock = FakeSocket()
    ((w, task),) = await subscribed(hub, [sock], direct=True)
    hub.entity(0, 100, entity_event("e1"))
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
    hub.entity(0, 100, entity_event("t1"))
    hub.entity(0, 101, entity_event("n1", collection="notes"))
    after_notes = hub.cursor
    hub.entity(0, 102, entity_event("t2"))
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
    hub.entity(0, 100, entity_event("e1"))
    hub.entity(0, 101, entity_event("e2"))
    await asyncio.sleep(0)
    assert _entities(rich) == [("e1", 1), ("e2", 1)]
    assert _entities(poor) == [("e1", 1)]  # the rest waits for budget
    assert len(wp.conn.queue) == 1
    assert hub.metrics.throttle_events == 1
    tr.cancel()
    tp.cancel()


async def test_a_message_to_one_subscriber_mid_dispatch_leaves_the_others_the_shared_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub = make_hub()
    socks = [FakeSocket() for _ in range(3)]
    writers = await subscribed(hub, socks, direct=True)
    pinged = writers[0][0].conn
    queued: list[Item] = []  # what the others were offered one by one: nothing
    for w, _ in writers[1:]:
        monkeypatch.setattr(w.conn, "offer", queued.append)
    hub.entity(0, 100, entity_event("e1"))
    hub.offer(pinged, Item(Kind.CONTROL, "pong", frames.PONG, 0.0))
    hub.entity(0, 101, entity_event("e2"))
    hub.offer(pinged, Item(Kind.CONTROL, "pong", frames.PONG, 0.0))
    hub.entity(0, 102, entity_event("e3"))
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
    (_wa, ta), (_wo, to) = await subscribed(hub, [author, other], direct=True)
    hub.entity(0, 100, entity_event("e1"))
    hub.client_event(decode_receipt(b"acme/dev-1", receipt("op-1")))  # both are dev-1
    hub.entity(0, 101, entity_event("e2"))
    await asyncio.sleep(0)
    for sock in (author, other):
        (sent,) = sock.sent
        assert [m["type"] for m in _messages(sent)] == ["entity", "receipt", "entity"]
    ta.cancel()
    to.cancel()
