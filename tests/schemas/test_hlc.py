from __future__ import annotations

import time
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.hlc import (
    COUNTER_MAX,
    WALL_MS_MAX,
    Hlc,
    HlcClock,
    HlcError,
    compare,
    max_hlc,
    skew_ms,
    wall_ms_of,
)

nodes = st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True)
hlcs = st.builds(Hlc, st.integers(0, WALL_MS_MAX), st.integers(0, COUNTER_MAX), nodes)


class FakeWall:
    """A wall clock the test moves by hand (also backwards)."""

    def __init__(self, ms: int = 1_700_000_000_000) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_hlc_format_pads_wall_and_uses_lowercase_hex_counter() -> None:
    hlc = Hlc(1_700_000_000_123, 0xAB, "ingest-1")
    assert hlc.format() == "001700000000123-00ab-ingest-1"
    assert str(hlc) == hlc.format()


@given(hlcs)
@settings(max_examples=300)
def test_hlc_parse_format_round_trip(hlc: Hlc) -> None:
    assert Hlc.parse(hlc.format()) == hlc


@given(hlcs, hlcs)
@settings(max_examples=300)
def test_hlc_object_order_equals_string_order(a: Hlc, b: Hlc) -> None:
    assert (a < b) == (a.format() < b.format())
    assert (a == b) == (a.format() == b.format())
    assert compare(a.format(), b.format()) == (a > b) - (a < b)


def test_hlc_node_with_dashes_and_colons_parses() -> None:
    assert Hlc.parse("000000000000001-0000-eu:ingest-1.a_b").node == "eu:ingest-1.a_b"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("12-zz", "expected '{wall_ms:015d}-{counter:04x}-{node}'"),
        ("", "expected '{wall_ms:015d}-{counter:04x}-{node}'"),
        ("001700000000000", "expected '{wall_ms:015d}-{counter:04x}-{node}'"),
        ("1700000000000-0000-phone", "wall_ms must be exactly 15 decimal digits"),
        ("0017000000000000-0000-phone", "wall_ms must be exactly 15 decimal digits"),
        ("00170000000000a-0000-phone", "wall_ms must be exactly 15 decimal digits"),
        ("00170000000000\u0663-0000-phone", "wall_ms must be exactly 15 decimal digits"),
        ("001700000000000-00AB-phone", "counter must be exactly 4 lowercase hex digits"),
        ("001700000000000-10000-phone", "counter must be exactly 4 lowercase hex digits"),
        ("001700000000000-000-phone", "counter must be exactly 4 lowercase hex digits"),
        ("001700000000000-0000-", "node must be 1-64"),
        ("001700000000000-0000-ph one", "node must be 1-64"),
        ("001700000000000-0000-phone/1", "node must be 1-64"),
        ("001700000000000-0000-" + "n" * 65, "node must be 1-64"),
        ("001700000000000-0000-phone\n", "node must be 1-64"),
    ],
    ids=[
        "wrong_shape",
        "empty",
        "wall_only",
        "wall_too_short",
        "wall_too_long",
        "wall_not_decimal",
        "wall_unicode_digit",
        "counter_uppercase",
        "counter_overflow_five_digits",
        "counter_too_short",
        "node_empty",
        "node_space",
        "node_slash",
        "node_too_long",
        "node_trailing_newline",
    ],
)
def test_hlc_parse_rejects_malformed_with_clear_message(text: str, message: str) -> None:
    with pytest.raises(HlcError, match="invalid hlc") as excinfo:
        Hlc.parse(text)
    assert message in str(excinfo.value)
    assert repr(text) in str(excinfo.value)


def test_hlc_parse_rejects_non_string() -> None:
    with pytest.raises(HlcError, match="expected a string"):
        Hlc.parse(12)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("wall", "counter", "node", "message"),
    [
        (-1, 0, "n", "must be 0.."),
        (WALL_MS_MAX + 1, 0, "n", "must be 0.."),
        (0, COUNTER_MAX + 1, "n", "counter overflow"),
        (0, -1, "n", "must not be negative"),
        (0, 0, "", "invalid hlc node"),
        (True, 0, "n", "expected an int"),
    ],
    ids=[
        "wall_negative",
        "wall_too_big",
        "counter_overflow",
        "counter_negative",
        "no_node",
        "bool",
    ],
)
def test_hlc_constructor_validates(wall: int, counter: int, node: str, message: str) -> None:
    with pytest.raises(HlcError, match=message):
        Hlc(wall, counter, node)


def test_helpers_compare_max_wall_and_skew() -> None:
    a, b, c = "001000000000000-0000-a", "001000000000000-0001-a", "000999999999999-ffff-z"
    assert compare(a, b) == -1
    assert compare(b, a) == 1
    assert compare(a, a) == 0
    assert max_hlc(a, b, c) == b
    assert max_hlc(c) == c
    assert wall_ms_of(c) == 999_999_999_999
    assert skew_ms(b, now_ms=999_999_990_000) == 10_000
    assert skew_ms(Hlc.parse(c), now_ms=1_000_000_000_000) == -1
    with pytest.raises(HlcError):
        compare(a, "nope")
    with pytest.raises(HlcError):
        max_hlc(a, "nope")


def test_clock_now_follows_wall_clock_and_counts_within_a_millisecond() -> None:
    wall = FakeWall(1000)
    clock = HlcClock("phone", wall)
    assert clock.last is None
    assert clock.now() == Hlc(1000, 0, "phone")
    assert clock.now() == Hlc(1000, 1, "phone")
    wall.ms = 1005
    assert clock.now() == Hlc(1005, 0, "phone")
    assert clock.last == Hlc(1005, 0, "phone")


def test_clock_now_monotonic_when_wall_clock_goes_backwards() -> None:
    wall = FakeWall(5000)
    clock = HlcClock("phone", wall)
    first = clock.now()
    wall.ms = 1000  # NTP step back
    second, third = clock.now(), clock.now()
    assert first < second < third
    assert second == Hlc(5000, 1, "phone")
    assert third == Hlc(5000, 2, "phone")


def test_clock_counter_overflow_borrows_next_millisecond() -> None:
    wall = FakeWall(7000)
    clock = HlcClock("phone", wall)
    stamps = [clock.now() for _ in range(COUNTER_MAX + 2)]
    assert stamps[COUNTER_MAX] == Hlc(7000, COUNTER_MAX, "phone")
    assert stamps[COUNTER_MAX + 1] == Hlc(7001, 0, "phone")
    assert clock.now() == Hlc(7001, 1, "phone")  # ahead of the wall clock until it catches up
    wall.ms = 7002
    assert clock.now() == Hlc(7002, 0, "phone")


def test_clock_receive_overflow_from_remote_counter() -> None:
    clock = HlcClock("server", FakeWall(10))
    merged = clock.receive(Hlc(5000, COUNTER_MAX, "phone"))
    assert merged == Hlc(5001, 0, "server")
    assert merged > Hlc(5000, COUNTER_MAX, "phone")


def test_clock_receive_from_future_remote_advances_and_now_stays_ahead() -> None:
    wall = FakeWall(1000)
    clock = HlcClock("ingest-1", wall)
    clock.now()
    remote = "000000000090000-0007-phone"
    merged = clock.receive(remote)
    assert merged == Hlc(90_000, 8, "ingest-1")
    assert merged.format() > remote
    wall.ms = 2000  # our wall clock is still far behind the remote
    later = clock.now()
    assert later == Hlc(90_000, 9, "ingest-1")
    assert later > merged
    wall.ms = 95_000
    assert clock.now() == Hlc(95_000, 0, "ingest-1")


def test_clock_receive_from_past_remote_keeps_local_time() -> None:
    wall = FakeWall(50_000)
    clock = HlcClock("ingest-1", wall)
    local = clock.now()
    assert clock.receive(Hlc(10, 3, "phone")) == Hlc(50_000, 1, "ingest-1")
    assert clock.last is not None
    assert clock.last > local


def test_clock_receive_same_wall_takes_max_counter_plus_one() -> None:
    wall = FakeWall(3000)
    clock = HlcClock("a", wall)
    clock.now()  # (3000, 0)
    assert clock.receive(Hlc(3000, 9, "b")) == Hlc(3000, 10, "a")
    assert clock.receive(Hlc(3000, 2, "b")) == Hlc(3000, 11, "a")


def test_clock_receive_does_not_enforce_skew() -> None:
    clock = HlcClock("ingest-1", FakeWall(0))
    far = Hlc(WALL_MS_MAX - 10, 0, "phone")
    assert skew_ms(far, 0) == WALL_MS_MAX - 10
    assert clock.receive(far).wall_ms == WALL_MS_MAX - 10


def test_clock_rejects_invalid_node_and_malformed_remote() -> None:
    with pytest.raises(HlcError, match="invalid hlc node"):
        HlcClock("no spaces")
    clock = HlcClock("a", FakeWall(1))
    with pytest.raises(HlcError, match="invalid hlc"):
        clock.receive("garbage")
    assert clock.last is None


def test_clock_peek_does_not_advance() -> None:
    wall = FakeWall(1000)
    clock = HlcClock("a", wall)
    clock.now()
    assert clock.peek() == Hlc(1000, 1, "a")
    assert clock.peek() == Hlc(1000, 1, "a")
    assert clock.now() == Hlc(1000, 1, "a")


def test_clock_default_wall_clock_is_epoch_ms() -> None:
    before = time.time_ns() // 1_000_000
    stamp = HlcClock("a").now()
    after = time.time_ns() // 1_000_000
    assert before <= stamp.wall_ms <= after


walls = st.one_of(
    st.integers(0, 3),  # collisions and backwards steps around zero
    st.integers(1_700_000_000_000, 1_700_000_000_005),
)
actions = st.lists(
    st.tuples(
        walls,
        st.one_of(
            st.none(),  # now()
            st.builds(  # receive(remote)
                Hlc,
                walls,
                st.one_of(st.integers(0, 3), st.integers(COUNTER_MAX - 2, COUNTER_MAX)),
                st.sampled_from(["phone", "laptop", "zz"]),
            ),
        ),
    ),
    min_size=1,
    max_size=60,
)


@given(actions, st.booleans())
@settings(max_examples=500)
def test_clock_any_sequence_is_strictly_increasing(
    steps: list[tuple[int, Hlc | None]], remote_as_string: bool
) -> None:
    wall = FakeWall(0)
    clock = HlcClock("node-1", wall)
    issued: list[Hlc] = []
    for reading, remote in steps:
        wall.ms = reading
        if remote is None:
            expected = clock.peek()
            stamp = clock.now()
            assert stamp == expected
            assert stamp.wall_ms >= reading
        else:
            stamp = clock.receive(remote.format() if remote_as_string else remote)
            assert (stamp.wall_ms, stamp.counter) > (remote.wall_ms, remote.counter)
            assert stamp.wall_ms >= max(reading, remote.wall_ms)
        assert stamp.node == "node-1"
        assert clock.last == stamp
        issued.append(stamp)
    assert all(a < b for a, b in pairwise(issued))
    assert all(a.format() < b.format() for a, b in pairwise(issued))
