"""push/conflation.py: the queue conflates entities, bounds the rest, pops within budget."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from push.conflation import (
    BATCH_OVERHEAD,
    FrameCache,
    Item,
    Kind,
    Offer,
    OutboundQueue,
    build_frame,
    conflated,
    last_cursor,
)
from schemas.generated.push_schema import BatchMessage
from schemas.messages import SERVER_MESSAGE


def q(entities: int = 100, conflicts: int = 3, receipts: int = 3) -> OutboundQueue:
    return OutboundQueue(max_entities=entities, max_conflicts=conflicts, max_receipts=receipts)


def ent(key: str, v: int, t: float = 0.0) -> Item:
    return Item(Kind.ENTITY, "entity", f'{{"k":"{key}","v":{v}}}'.encode(), t, key=key)


def rec(n: int) -> Item:
    return Item(Kind.RECEIPT, "receipt", f'{{"r":{n}}}'.encode(), 0.0)


def test_queue_conflates_same_entity_latest_moves_to_tail() -> None:
    queue = q()
    assert queue.offer(ent("a", 1)) is Offer.QUEUED
    assert queue.offer(ent("b", 1)) is Offer.QUEUED
    assert queue.offer(ent("a", 2)) is Offer.CONFLATED
    popped = queue.pop_within(10_000)
    assert [orjson.loads(i.frame) for i in popped] == [{"k": "b", "v": 1}, {"k": "a", "v": 2}]
    assert len(queue) == 0
    assert queue.bytes == 0


def test_queue_receipts_never_conflated_but_bounded() -> None:
    queue = q(receipts=3)
    results = [queue.offer(rec(n)) for n in range(5)]
    assert results == [Offer.QUEUED] * 3 + [Offer.FULL] * 2
    assert queue.count(Kind.RECEIPT) == 3


def test_queue_entity_bound_counts_distinct_keys_only() -> None:
    queue = q(entities=2)
    assert queue.offer(ent("a", 1)) is Offer.QUEUED
    assert queue.offer(ent("b", 1)) is Offer.QUEUED
    assert queue.offer(ent("a", 2)) is Offer.CONFLATED  # still allowed at the bound
    assert queue.offer(ent("c", 1)) is Offer.FULL


def test_queue_pop_within_accounts_for_batch_overhead() -> None:
    queue = q()
    items = [ent(k, 1) for k in "abc"]
    for i in items:
        queue.offer(i)
    size = len(items[0].frame)
    two = 2 * size + BATCH_OVERHEAD + 1
    popped = queue.pop_within(two)
    assert len(popped) == 2
    assert len(build_frame(popped)) == two
    assert queue.pop_within(size - 1) == []
    assert len(queue.pop_within(size - 1, oversized_head=True)) == 1


def test_queue_remove_where_and_clear_keep_counts() -> None:
    queue = q()
    queue.offer(ent("acme/tasks/1", 1))
    queue.offer(ent("acme/notes/1", 1))
    queue.offer(rec(1))
    gone = queue.remove_where(lambda i: (i.key or "").startswith("acme/tasks/"))
    assert len(gone) == 1
    assert queue.count(Kind.ENTITY) == 1
    assert len(queue.clear()) == 2
    assert queue.count(Kind.RECEIPT) == 0
    assert queue.bytes == 0


def test_build_frame_batch_is_a_valid_batch_message() -> None:
    items = [Item(Kind.CONTROL, "pong", b'{"type":"pong"}', 0.0)] * 3
    parsed = SERVER_MESSAGE.validate_json(build_frame(items))
    assert isinstance(parsed, BatchMessage)
    assert len(parsed.messages) == 3
    assert build_frame(items[:1]) == b'{"type":"pong"}'


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(1, 99)), max_size=80))
def test_queue_keeps_only_latest_state_per_entity_in_order_of_last_update(
    offers: list[tuple[str, int]],
) -> None:
    queue = q()
    latest: dict[str, int] = {}
    for key, v in offers:
        queue.offer(ent(key, v))
        latest.pop(key, None)
        latest[key] = v  # dict order = order of last update
    popped = queue.pop_within(float("inf"))
    assert [(d["k"], d["v"]) for d in map(orjson.loads, (i.frame for i in popped))] == list(
        latest.items()
    )


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(1, 99)), min_size=1, max_size=80))
def test_conflated_is_what_an_empty_queue_holds_after_the_same_offers(
    offers: list[tuple[str, int]],
) -> None:
    items = [ent(key, v) for key, v in offers]
    queue = q()
    for item in items:
        queue.offer(item)
    held = queue.pop_within(float("inf"))
    batch, superseded = conflated(items)
    assert batch == held  # the same Item objects in the same order
    assert superseded == len(items) - len(held)
    if superseded == 0:
        assert batch is items  # nothing to conflate: no copy


def test_frame_cache_builds_the_frame_of_the_same_items_once() -> None:
    a, b = ent("a", 1), ent("b", 1)
    cache = FrameCache()
    frame, cursor = cache.build([a, b])
    assert frame == build_frame([a, b])
    assert cursor is None  # none of them carries a cursor
    again, _ = cache.build([a, b])  # another connection popping the same events
    assert again is frame
    copy = Item(a.kind, a.msg_type, a.frame, a.enqueued_at, key=a.key)  # equal bytes, not a
    assert cache.build([copy, b])[0] is not frame
    assert cache.build([b, a])[0] == build_frame([b, a])


def test_frame_cache_cursor_is_the_last_item_carrying_one() -> None:
    first = Item(Kind.ENTITY, "entity", b"{}", 0.0, key="a", cursor="v1:0=1")
    later = Item(Kind.ENTITY, "entity", b"{}", 0.0, key="b", cursor="v1:0=2")
    assert FrameCache().build([first, later, rec(1)])[1] == "v1:0=2"
    assert last_cursor([first, rec(1)]) == "v1:0=1"
