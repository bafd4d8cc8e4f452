"""push/hub.py: routing, tenant isolation, resume from the buffer, snapshot merging."""

from __future__ import annotations

import orjson

from push import cursor
from push.close_codes import CloseCode
from push.connection import Connection
from push.hub import Hub
from push.metrics import PushMetrics
from push.records import decode_conflict, decode_entity, decode_receipt
from schemas.generated.push_schema import SnapshotMessage
from schemas.messages import SERVER_MESSAGE
from tests.push.records import conflict, entity_key, receipt, state
from tests.push.test_connection import LIMITS


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_hub(size: int = 100, streams: int = 100) -> Hub:
    hub = Hub(
        metrics=PushMetrics(),
        clock=Clock(),
        recent_buffer_size=size,
        recent_buffer_collections=streams,
    )
    hub.start({0: 100, 1: 50})
    return hub


def conn(
    hub: Hub, tenant: str = "acme", user: str = "alice", client: str | None = "dev-1"
) -> Connection:
    c = Connection(
        tenant=tenant, user_id=user, client_id=client, limits=LIMITS, metrics=hub.metrics, now=0.0
    )
    hub.add(c, lambda: None)
    return c


def take(c: Connection) -> list[dict[str, object]]:
    return [orjson.loads(i.frame) for i in c.queue.pop_within(float("inf"))]


def put(hub: Hub, partition: int, offset: int, eid: str, version: int = 1, **kw: object) -> None:
    tenant = str(kw.get("tenant", "acme"))
    collection = str(kw.get("collection", "tasks"))
    raw = state(eid, version, tenant=tenant, collection=collection)
    hub.entity(partition, offset, decode_entity(entity_key(eid, tenant, collection), raw))


def subscribe_fresh(hub: Hub, c: Connection, collection: str = "tasks") -> dict[str, object]:
    assert hub.finish_snapshot(c, collection, {}, dict(hub.positions))
    (snap,) = take(c)
    return snap


def test_hub_routes_entities_to_subscribers_of_that_tenant_only() -> None:
    hub = make_hub()
    mine, other_collection, other_tenant = conn(hub), conn(hub), conn(hub, tenant="evil")
    subscribe_fresh(hub, mine)
    subscribe_fresh(hub, other_collection, "notes")
    subscribe_fresh(hub, other_tenant)
    put(hub, 0, 100, "e1")
    (msg,) = take(mine)
    assert msg["type"] == "entity"
    assert msg["cursor"] == "v1:0=101,1=50"
    assert take(other_collection) == []
    assert take(other_tenant) == []


def test_hub_sends_receipts_and_conflicts_only_to_the_authoring_client_and_user() -> None:
    hub = make_hub()
    author, sibling_device, other_user = conn(hub), conn(hub, client="dev-2"), conn(hub, user="bob")
    no_client = conn(hub, client=None)
    hub.client_event(decode_receipt(b"acme/dev-1", receipt("op-1")))
    hub.client_event(decode_conflict(b"acme/tasks/e1", conflict("op-2")))
    assert [m["type"] for m in take(author)] == ["receipt", "conflict"]
    assert take(sibling_device) == []
    assert take(other_user) == []
    assert take(no_client) == []


def test_hub_resume_inside_buffer_replays_latest_state_per_entity_since_cursor() -> None:
    hub = make_hub()
    c = conn(hub)
    put(hub, 0, 100, "e1", 1)
    mid = hub.cursor
    put(hub, 1, 50, "e2", 1)
    put(hub, 0, 101, "e2", 2)
    put(hub, 0, 102, "e3", 1, collection="notes")
    assert hub.try_resume(c, "tasks", mid)
    (snap,) = take(c)
    parsed = SERVER_MESSAGE.validate_python(snap)
    assert isinstance(parsed, SnapshotMessage)
    assert parsed.resumed
    assert [(e.entity_id, e.version) for e in parsed.entities] == [("e2", 2)]
    assert parsed.cursor == hub.cursor
    put(hub, 0, 103, "e1", 2)
    assert [m["type"] for m in take(c)] == ["entity"]  # subscribed by the resume
    assert hub.metrics.subscribes["resumed"] == 1


def test_hub_resume_outside_buffer_is_refused() -> None:
    hub = make_hub(size=2)
    c = conn(hub)
    old = hub.cursor
    for i in range(3):  # the first event is evicted
        put(hub, 0, 100 + i, f"e{i}")
    assert not hub.try_resume(c, "tasks", old)
    assert not hub.try_resume(c, "tasks", "v1:0=1,1=50")  # before this replica started
    assert not hub.try_resume(c, "tasks", "garbage")
    assert hub.try_resume(c, "tasks", cursor.encode({0: 101, 1: 50}))
    assert c.subscriptions == {"tasks"}


def test_hub_resume_of_a_quiet_collection_is_covered() -> None:
    hub = make_hub()
    c = conn(hub)
    start = hub.cursor
    put(hub, 0, 100, "e1", collection="notes")
    assert hub.try_resume(c, "tasks", start)
    assert take(c)[0]["entities"] == []


def test_hub_snapshot_merges_newer_buffered_states_over_redis() -> None:
    hub = make_hub()
    c = conn(hub)
    read_from = dict(hub.positions)
    put(hub, 0, 100, "e1", 5)  # dispatched while Redis was being read
    redis_states = {"e1": (4, state("e1", 4)), "e2": (9, state("e2", 9))}
    assert hub.finish_snapshot(c, "tasks", redis_states, read_from)
    (snap,) = take(c)
    versions = {e["entity_id"]: e["version"] for e in snap["entities"]}  # type: ignore[union-attr]
    assert versions == {"e1": 5, "e2": 9}
    assert snap["resumed"] is False


def test_hub_snapshot_retry_when_buffer_no_longer_covers_the_read() -> None:
    hub = make_hub(size=1)
    c = conn(hub)
    read_from = dict(hub.positions)
    put(hub, 0, 100, "e1")
    put(hub, 0, 101, "e2")  # e1 evicted: the read's start is not covered
    assert not hub.finish_snapshot(c, "tasks", {}, read_from)
    assert c.subscriptions == set()


def test_hub_evicting_a_stream_raises_the_floor_of_new_streams() -> None:
    hub = make_hub(streams=1)
    c = conn(hub)
    before = hub.cursor
    put(hub, 0, 100, "e1", collection="a")
    put(hub, 0, 101, "e1", collection="b")  # 'a' evicted
    assert not hub.try_resume(c, "a", before)
    assert not hub.try_resume(c, "c", before)  # could have been evicted too


def test_hub_unsubscribe_and_remove_drop_queued_updates() -> None:
    hub = make_hub()
    c = conn(hub)
    subscribe_fresh(hub, c)
    put(hub, 0, 100, "e1")
    hub.unsubscribe(c, "tasks")
    assert take(c) == []
    assert hub.metrics.messages_dropped["unsubscribed"] == 1
    put(hub, 0, 101, "e1", 2)
    assert take(c) == []
    subscribe_fresh(hub, c)
    assert hub.metrics.subscriptions == 1
    hub.remove(c)
    assert hub.metrics.subscriptions == 0
    assert hub.metrics.connections == 0
    assert hub.subscribers("acme", "tasks") == 0


def test_hub_shutdown_sends_notice_and_reconnect_code() -> None:
    hub = make_hub()
    c = conn(hub)
    c.last_cursor = "v1:0=7"
    hub.shutdown(1.0, 500)
    assert c.closing is not None
    assert c.closing.code is CloseCode.SERVER_SHUTTING_DOWN
    assert c.closing.final is not None
    assert orjson.loads(c.closing.final)["cursor"] == "v1:0=7"
    assert hub.metrics.disconnect_notices["server_shutting_down"] == 1


def test_hub_sweep_aborts_connections_that_cannot_close() -> None:
    hub = make_hub()
    aborted = []
    c = Connection(
        tenant="acme", user_id="u", client_id=None, limits=LIMITS, metrics=hub.metrics, now=0.0
    )
    hub.add(c, lambda: aborted.append(c))
    hub.sweep(60.0, idle_timeout_s=60, close_timeout_s=2)
    assert c.closing is not None
    assert aborted == []
    hub.sweep(62.0, idle_timeout_s=60, close_timeout_s=2)
    assert aborted == [c]
