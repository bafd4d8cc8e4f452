"""The group state machine and the offset store, in-process (no sockets)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from broker import errors
from broker.groups import COMPLETING, EMPTY, PREPARING, STABLE, GroupCoordinator
from broker.log.flush import Flusher
from broker.offsets import OffsetStore
from broker.settings import BrokerSettings

pytestmark = pytest.mark.timeout(20)


@contextlib.asynccontextmanager
async def _ticking(g: GroupCoordinator):
    """Drive the coordinator's timers as the server does."""

    async def tick() -> None:
        while True:
            g.tick()
            await asyncio.sleep(0.01)

    task = asyncio.create_task(tick())
    try:
        yield g
    finally:
        task.cancel()


def _coordinator(tmp_path: Path) -> GroupCoordinator:
    # a short initial delay lets members that start together join the first generation
    return GroupCoordinator(
        BrokerSettings(
            data_dir=tmp_path,
            group_min_session_timeout_ms=10,
            group_initial_rebalance_delay_ms=50,
        )
    )


async def _join(g: GroupCoordinator, member_id: str, protocols=(("range", b"m"),), rebalance=300):
    return await g.join(
        group_id="g",
        member_id=member_id,
        instance_id=None,
        session_timeout_ms=200,
        rebalance_timeout_ms=rebalance,
        protocol_type="consumer",
        protocols=list(protocols),
        client_id="c",
        client_host="h",
        require_known_member_id=True,
    )


async def _member(g: GroupCoordinator, protocols=(("range", b"m"),)) -> str:
    first = await _join(g, "", protocols)
    assert first.error == errors.MEMBER_ID_REQUIRED
    return first.member_id


async def test_two_members_join_vote_protocol_and_sync(tmp_path: Path) -> None:
    async with _ticking(_coordinator(tmp_path)) as g:
        await _two_members_join_vote_protocol_and_sync(g)


async def _two_members_join_vote_protocol_and_sync(g: GroupCoordinator) -> None:
    a = await _member(g, (("roundrobin", b"a1"), ("range", b"a2")))
    b = await _member(g, (("range", b"b2"), ("roundrobin", b"b1")))
    ra, rb = await asyncio.gather(
        _join(g, a, (("roundrobin", b"a1"), ("range", b"a2"))),
        _join(g, b, (("range", b"b2"), ("roundrobin", b"b1"))),
    )
    assert ra.generation == rb.generation == 1
    assert ra.leader == a
    assert ra.protocol == "roundrobin"  # a tie: the leader's preference wins
    assert {m: meta for m, _, meta in ra.members} == {a: b"a1", b: b"b1"}
    assert rb.members == ()
    assert g.groups["g"].state == COMPLETING
    follower = asyncio.create_task(g.sync("g", 1, b, {}))
    await asyncio.sleep(0)
    assert not follower.done(), "followers wait for the leader's assignment"
    assert await g.sync("g", 1, a, {a: b"A", b: b"B"}) == (errors.NONE, b"A")
    assert await follower == (errors.NONE, b"B")
    assert g.groups["g"].state == STABLE


async def test_member_missing_the_rebalance_is_dropped_at_rebalance_timeout(tmp_path) -> None:
    g = _coordinator(tmp_path)
    async with _ticking(g):
        await _member_missing_the_rebalance(g)


async def _member_missing_the_rebalance(g: GroupCoordinator) -> None:
    a, b = await _member(g), await _member(g)
    await asyncio.gather(_join(g, a), _join(g, b))
    await asyncio.gather(g.sync("g", 1, a, {}), g.sync("g", 1, b, {}))
    rejoin = asyncio.create_task(_join(g, a))  # a rejoins; b never does
    await asyncio.sleep(0)
    assert g.groups["g"].state == PREPARING
    assert g.heartbeat("g", 1, b) == errors.REBALANCE_IN_PROGRESS
    res = await asyncio.wait_for(rejoin, 3)
    assert (res.error, res.generation, [m for m, _, _ in res.members]) == (errors.NONE, 2, [a])
    assert g.heartbeat("g", 2, b) == errors.UNKNOWN_MEMBER_ID


async def test_silent_member_expires_after_session_timeout_and_group_empties(tmp_path) -> None:
    async with _ticking(_coordinator(tmp_path)) as g:
        a = await _member(g)
        await _join(g, a)
        await g.sync("g", 1, a, {a: b"x"})
        async with asyncio.timeout(3):
            while g.groups["g"].members:  # noqa: ASYNC110 - polling the coordinator's state
                await asyncio.sleep(0.02)
    assert g.groups["g"].state == EMPTY
    assert g.commit_allowed("g", -1, "") == errors.NONE, "simple commits allowed when empty"


async def test_leave_triggers_rebalance_and_stale_generation_is_rejected(tmp_path) -> None:
    async with _ticking(_coordinator(tmp_path)) as g:
        await _leave_and_stale_generation(g)


async def _leave_and_stale_generation(g: GroupCoordinator) -> None:
    a, b = await _member(g), await _member(g)
    await asyncio.gather(_join(g, a), _join(g, b))
    assert g.commit_allowed("g", 1, a) == errors.REBALANCE_IN_PROGRESS
    await asyncio.gather(g.sync("g", 1, a, {}), g.sync("g", 1, b, {}))
    assert g.commit_allowed("g", 0, a) == errors.ILLEGAL_GENERATION
    assert g.leave("g", [b, "ghost"]) == [errors.NONE, errors.UNKNOWN_MEMBER_ID]
    assert g.groups["g"].state == PREPARING
    assert (await _join(g, a)).generation == 2


async def test_offset_store_survives_reload_ignores_torn_line_and_expires(tmp_path) -> None:
    flusher = Flusher("group", 1000)
    store = OffsetStore(tmp_path, flusher)
    store.load()
    store.commit("g", [("t", 0, 42, 3, "meta"), ("t", 1, 7, -1, None)])
    await flusher.durable()
    store.close()
    store.path.write_bytes(store.path.read_bytes() + b'[["g","t",0,99')  # cut short by a crash
    again = OffsetStore(tmp_path, flusher)
    again.load()
    c = again.fetch("g", "t", 0)
    assert c is not None
    assert (c.offset, c.leader_epoch, c.metadata) == (42, 3, "meta")
    assert again.groups() == {"g"}
    assert again.expire(0, live_groups={"g"}) == 0
    assert again.expire(-1, live_groups=set()) == 0
    await asyncio.sleep(0.002)
    assert again.expire(0, live_groups=set()) == 2
    assert again.for_group("g") == {}
    again.close()


async def test_member_whose_client_vanished_mid_join_does_not_stall_the_group(tmp_path) -> None:
    async with _ticking(_coordinator(tmp_path)) as g:
        a, b = await _member(g), await _member(g)
        parked = asyncio.create_task(_join(g, b, rebalance=30_000))
        await asyncio.sleep(0)
        parked.cancel()  # b's connection closed while its JoinGroup waited
        res = await asyncio.wait_for(_join(g, a, rebalance=30_000), 2)
        assert res.error == errors.NONE
        assert set(g.groups["g"].members) == {a, b}, "carried over, as Kafka does"
        assert res.leader == b  # the first to join leads; it will never sync

        async with asyncio.timeout(3):  # then b expires by session timeout
            while b in g.groups["g"].members:  # noqa: ASYNC110 - polling coordinator state
                await asyncio.sleep(0.02)
