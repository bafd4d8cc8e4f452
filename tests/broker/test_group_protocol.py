"""Group protocol over the raw wire: the JoinGroup v4 member-id dance, opaque assignor
metadata passed through untouched, generations, and the errors of stale members."""

from __future__ import annotations

import pytest

from broker.codec.primitives import Writer

pytestmark = pytest.mark.timeout(30)

META = b"\x00\x01faust-opaque-\xff\x00metadata"
ASSIGN = b"opaque-assignment-\x00\x01\x02"


def _join(w, member_id: str, version: int = 4):
    body = Writer().string("wg").int32(10_000).int32(10_000).string(member_id)
    if version >= 5:
        body.nullable_string(None)
    body.string("consumer").int32(1).string("faust").nullable_bytes(META)
    r = w.call(11, version, body.getvalue())
    r.int32()
    err, gen, proto, leader, mid = r.int16(), r.int32(), r.string(), r.string(), r.string()
    members = r.array(
        lambda r: (
            (r.string(), r.bytes_())
            if version < 5
            else (r.string(), r.nullable_string(), r.bytes_())
        )
    )
    return err, gen, proto, leader, mid, members


def test_join_v4_member_id_dance_then_sync_heartbeat_describe_leave(wire) -> None:
    w = wire()
    err, *_, mid, _ = _join(w, "")
    assert err == 79, "MEMBER_ID_REQUIRED"
    assert mid, "with an id to come back with"
    err, gen, proto, leader, mid2, members = _join(w, mid)
    assert (err, gen, proto, leader, mid2) == (0, 1, "faust", mid, mid)
    assert members == [(mid, META)], "metadata passed through untouched"

    sync = Writer().string("wg").int32(gen).string(mid).nullable_string(None)
    r = w.call(14, 3, sync.int32(1).string(mid).nullable_bytes(ASSIGN).getvalue())
    r.int32()
    assert (r.int16(), r.bytes_()) == (0, ASSIGN)

    hb = Writer().string("wg").int32(gen).string(mid).nullable_string(None).getvalue()
    r = w.call(12, 3, hb)
    r.int32()
    assert r.int16() == 0
    stale = Writer().string("wg").int32(gen + 5).string(mid).nullable_string(None).getvalue()
    r = w.call(12, 3, stale)
    r.int32()
    assert r.int16() == 22, "ILLEGAL_GENERATION"
    unknown = Writer().string("wg").int32(gen).string("nobody").nullable_string(None).getvalue()
    r = w.call(12, 3, unknown)
    r.int32()
    assert r.int16() == 25, "UNKNOWN_MEMBER_ID"

    r = w.call(15, 4, Writer().int32(1).string("wg").boolean(False).getvalue())
    r.int32()
    r.int32()
    assert (r.int16(), r.string(), r.string(), r.string(), r.string()) == (
        0,
        "wg",
        "Stable",
        "consumer",
        "faust",
    )
    assert r.int32() == 1
    assert (r.string(), r.nullable_string(), r.string(), r.string()) == (
        mid,
        None,
        "wire-test",
        "127.0.0.1",
    )
    assert (r.bytes_(), r.bytes_()) == (META, ASSIGN)

    leave = Writer().string("wg").int32(1).string(mid).nullable_string(None).getvalue()
    r = w.call(13, 3, leave)
    r.int32()
    assert r.int16() == 0
    assert r.array(lambda r: (r.string(), r.nullable_string(), r.int16())) == [(mid, None, 0)]

    r = w.call(16, 2, b"")
    r.int32()
    assert r.int16() == 0
    assert ("wg", "consumer") in r.array(lambda r: (r.string(), r.string()))


def test_join_v3_gets_a_member_id_without_the_dance(wire) -> None:
    w = wire()
    body = Writer().string("old").int32(10_000).int32(10_000).string("").string("consumer")
    r = w.call(11, 3, body.int32(1).string("range").nullable_bytes(b"m").getvalue())
    r.int32()
    err, gen = r.int16(), r.int32()
    assert (err, gen) == (0, 1)


def test_join_with_incompatible_protocol_is_rejected(wire) -> None:
    w1, w2 = wire(), wire()
    _, _, _, _, mid, _ = _join(w1, "")
    _join(w1, mid)
    body = Writer().string("wg").int32(10_000).int32(10_000).string("").string("consumer")
    r = w2.call(11, 3, body.int32(1).string("other").nullable_bytes(b"x").getvalue())
    r.int32()
    assert r.int16() == 23, "INCONSISTENT_GROUP_PROTOCOL"
