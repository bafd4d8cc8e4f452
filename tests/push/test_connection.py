"""push/connection.py: the writer's policy, driven with an injected clock (no sleeps)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import orjson
import pytest

from push import frames
from push.close_codes import CloseCode
from push.conflation import Item, Kind
from push.connection import Close, Connection, Flush, Limits, Wait
from push.metrics import PushMetrics
from push.writer import Writer, run_writer
from schemas.generated.push_schema import BatchMessage, DisconnectNoticeMessage
from schemas.messages import SERVER_MESSAGE
from tests.push.records import state

LIMITS = Limits(
    max_bps=1_000,
    burst_bytes=1_000,
    overload_grace_s=5.0,
    retry_after_ms=1500,
    max_queued_entities=100,
    max_queued_conflicts=2,
    max_queued_receipts=2,
    max_client_messages_per_s=10,
    max_bad_frames=3,
)


def make(limits: Limits = LIMITS, now: float = 0.0) -> tuple[Connection, PushMetrics]:
    m = PushMetrics()
    conn = Connection(
        tenant="acme", user_id="alice", client_id="dev-1", limits=limits, metrics=m, now=now
    )
    return conn, m


def entity(eid: str, v: int, t: float, cursor: str | None = None, pad: int = 0) -> Item:
    cur = cursor or f"v1:0={v}"
    return Item(
        Kind.ENTITY,
        "entity",
        frames.entity(state(eid, v, pad=pad), cur),
        t,
        key=f"acme/tasks/{eid}",
        received_at_ms=1_700_000_000_000,
        cursor=cur,
    )


def receipt(n: int, t: float) -> Item:
    return Item(Kind.RECEIPT, "receipt", b'{"type":"receipt","receipt":{"n":%d}}' % n, t)


def drain(conn: Connection, now: float) -> list[Flush]:
    """Every Flush the writer would do at ``now`` without waiting."""
    out = []
    while isinstance(action := conn.next_action(now), Flush):
        conn.written(action, now, now, now * 1000)
        out.append(action)
    return out


def test_writer_flushes_all_pending_as_one_batch_frame() -> None:
    conn, m = make(replace(LIMITS, burst_bytes=100_000, max_bps=100_000))
    for i in range(5):
        conn.offer(entity(f"e{i}", 1, 0.0))
    flushes = drain(conn, 0.0)
    assert len(flushes) == 1
    parsed = SERVER_MESSAGE.validate_json(flushes[0].frame)
    assert isinstance(parsed, BatchMessage)
    assert len(parsed.messages) == 5
    assert m.frames_sent == 1
    assert m.messages_sent["entity"] == 5
    assert m.sent_bytes == len(flushes[0].frame)
    assert isinstance(conn.next_action(0.0), Wait)


def test_writer_sends_a_single_message_unwrapped() -> None:
    conn, _ = make()
    conn.offer(entity("e1", 1, 0.0))
    (flush,) = drain(conn, 0.0)
    assert orjson.loads(flush.frame)["type"] == "entity"


def test_writer_over_budget_throttles_and_conflates_same_entity() -> None:
    conn, m = make()
    size = len(entity("e1", 1, 0.0, pad=300).frame)
    conn.offer(entity("e1", 1, 0.0, pad=300))
    conn.offer(entity("e2", 1, 0.0, pad=300))
    conn.offer(entity("e3", 1, 0.0, pad=300))  # 3 x ~520 bytes > 1000 burst
    first = drain(conn, 0.0)
    assert len(first) == 1
    assert len(first[0].items) == 1
    wait = conn.next_action(0.0)
    assert isinstance(wait, Wait)
    assert wait.seconds == pytest.approx((size - (1000 - size)) / 1000)
    assert m.throttle_events == 1
    for v in range(2, 6):  # e2 updated while throttled: only v5 survives
        conn.offer(entity("e2", v, 0.1, pad=300))
    assert m.messages_conflated["entity_superseded"] == 4
    sent = [f for t in (0.6, 1.2, 1.8) for f in drain(conn, t)]
    states = [orjson.loads(i.frame)["state"] for f in sent for i in f.items]
    assert [(s["entity_id"], s["version"]) for s in states] == [("e3", 1), ("e2", 5)]
    assert m.throttle_events == 1  # one episode


def test_writer_sends_at_most_burst_plus_rate_times_t() -> None:
    limits = replace(LIMITS, max_bps=2_000, burst_bytes=1_000, max_queued_entities=10_000)
    conn, m = make(limits)
    now, n = 0.0, 0
    while now < 3.0:  # 200 distinct entities per second, ~220 bytes each: far over budget
        conn.offer(entity(f"e{n}", 1, now))
        n += 1
        drain(conn, now)
        now += 0.005
    assert m.sent_bytes <= 1_000 + 2_000 * 3.0
    assert m.sent_bytes >= 2_000 * 3.0 * 0.8  # and it does use the budget


def test_notice_after_grace_not_before() -> None:
    conn, m = make(replace(LIMITS, max_bps=100, burst_bytes=300))
    conn.offer(entity("e0", 1, 0.0))
    conn.written(drain(conn, 0.0)[0], 0.0, 0.0, 0.0)  # delivered: last cursor v1:0=1
    t = 0.0
    while t < 4.99:  # distinct entities faster than 100 B/s: the backlog never clears
        t += 0.25
        conn.offer(entity(f"e{int(t * 100)}", 2, t))
        drain(conn, t)
        assert conn.closing is None, f"closed early at {t}"
    backlog_since = conn.backlog_since
    assert backlog_since is not None
    action = conn.next_action(backlog_since + 5.0)
    assert isinstance(action, Close)
    assert action.code is CloseCode.OVERLOADED
    assert action.final is not None
    notice = SERVER_MESSAGE.validate_json(action.final)
    assert isinstance(notice, DisconnectNoticeMessage)
    assert notice.reason == "overload"
    assert notice.retry_after_ms == 1500
    assert notice.cursor is not None
    assert notice.cursor.startswith("v1:")
    assert m.disconnect_notices["overload"] == 1
    assert m.messages_dropped["closing"] >= 1


def test_conflated_hot_entity_never_builds_a_sustained_backlog() -> None:
    conn, m = make(replace(LIMITS, max_bps=500, burst_bytes=500))
    t = 0.0
    while t < 30.0:  # one entity updated 100x/s, budget for ~2/s: conflation absorbs it
        conn.offer(entity("hot", int(t * 100) + 1, t))
        drain(conn, t)
        t += 0.01
    assert conn.closing is None
    assert m.messages_conflated["entity_superseded"] > 2000


def test_receipt_queue_full_drops_and_counts_by_reason() -> None:
    conn, m = make()
    for n in range(4):
        conn.offer(receipt(n, 0.0))
    assert m.messages_dropped["receipt_queue_full"] == 2
    assert conn.closing is None


def test_entity_queue_overflow_closes_with_notice_and_last_cursor() -> None:
    conn, m = make(replace(LIMITS, max_queued_entities=2))
    conn.offer(entity("e0", 7, 0.0, cursor="v1:0=7"))
    drain(conn, 0.0)
    conn.offer(entity("e1", 8, 0.1))
    conn.offer(entity("e2", 9, 0.1))
    conn.offer(entity("e3", 10, 0.1))  # third distinct entity: overflow
    assert m.messages_dropped["entity_queue_full"] == 1
    action = conn.next_action(0.1)
    assert isinstance(action, Close)
    assert action.code is CloseCode.OVERLOADED
    assert action.final is not None
    assert orjson.loads(action.final) == {
        "type": "disconnect_notice",
        "reason": "queue_overflow",
        "retry_after_ms": 1500,
        "cursor": "v1:0=7",
    }


def test_written_records_latency_histograms() -> None:
    conn, m = make()
    conn.offer(entity("e1", 1, 10.0))
    action = conn.next_action(10.5)
    assert isinstance(action, Flush)
    conn.written(action, 10.5, 10.502, 1_700_000_000_000 + 40)
    assert m.queue_wait.count == 1
    assert m.queue_wait.sum == pytest.approx(0.5)
    assert m.socket_write.sum == pytest.approx(0.002)
    assert m.end_to_end.sum == pytest.approx(0.040)
    assert conn.last_cursor == "v1:0=1"


def test_sweep_closes_idle_connections() -> None:
    conn, _m = make()
    assert not conn.sweep(59.0, idle_timeout_s=60, close_timeout_s=2)
    assert conn.closing is None
    conn.sweep(60.0, idle_timeout_s=60, close_timeout_s=2)
    assert conn.closing is not None
    assert conn.closing.code is CloseCode.IDLE_TIMEOUT


def test_sweep_gives_up_on_a_stuck_write_after_grace_then_close_timeout() -> None:
    conn, m = make()
    conn.offer(entity("e1", 1, 0.0))
    action = conn.next_action(0.0)
    assert isinstance(action, Flush)
    conn.writing_since = 0.0  # the socket never accepts the frame
    conn.last_client_frame_at = 100.0
    assert not conn.sweep(4.9, idle_timeout_s=600, close_timeout_s=2)
    assert conn.closing is None
    assert not conn.sweep(5.0, idle_timeout_s=600, close_timeout_s=2)
    assert conn.closing is not None
    assert m.disconnect_notices["overload"] == 1
    assert conn.sweep(7.0, idle_timeout_s=600, close_timeout_s=2)  # abandon it


async def test_run_writer_sends_frames_then_the_close() -> None:
    conn, m = make()
    sent: list[str] = []
    closed: list[tuple[int, str]] = []

    async def send_text(text: str) -> None:
        sent.append(text)
        if len(sent) == 1:
            conn.request_close(CloseCode.IDLE_TIMEOUT, "idle_timeout", 0.0)

    async def close(code: int, reason: str) -> None:
        closed.append((code, reason))

    conn.offer(entity("e1", 1, 0.0))
    writer = Writer(conn, send_text, close, lambda: 0.0, lambda: 0.0)
    await asyncio.wait_for(run_writer(writer), 5)
    assert [orjson.loads(s)["type"] for s in sent] == ["entity"]
    assert closed == [(4001, "idle_timeout")]
    assert m.closes["idle_timeout"] == 1


async def test_connection_is_idle_only_while_its_task_waits_for_messages() -> None:
    conn, _ = make()
    assert not conn.idle
    waiting = asyncio.ensure_future(conn.wait(None))
    await asyncio.sleep(0)
    assert conn.idle
    conn.request_close(CloseCode.IDLE_TIMEOUT, "idle_timeout", 0.0)  # wakes the task
    assert not conn.idle  # closing: the pass leaves it to its task
    await asyncio.wait_for(waiting, 5)
    assert not conn.idle
    throttled = asyncio.ensure_future(conn.wait(0.01))
    await asyncio.sleep(0)
    assert not conn.idle  # a timed wait (throttled) is not idle
    await asyncio.wait_for(throttled, 5)
