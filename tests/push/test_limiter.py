"""push/limiter.py: the token bucket admits at most burst + rate * t."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from push.limiter import TokenBucket


def test_limiter_starts_full_and_refills_at_rate() -> None:
    b = TokenBucket(rate=100, burst=50, now=0.0)
    assert b.try_take(50, 0.0)
    assert not b.try_take(1, 0.0)
    assert b.available(0.25) == pytest.approx(25)
    assert b.available(10.0) == 50  # never more than burst


def test_limiter_wait_time_is_time_until_tokens() -> None:
    b = TokenBucket(rate=100, burst=50, now=0.0)
    b.take(50, 0.0)
    assert b.wait_time(20, 0.0) == pytest.approx(0.2)
    assert b.wait_time(20, 0.2) == pytest.approx(0.0)
    assert b.try_take(20, 0.2)


def test_limiter_take_within_never_goes_into_debt() -> None:
    b = TokenBucket(rate=100, burst=50, now=0.0)
    assert not b.take_within(51, 0.0)  # larger than the bucket: refused even when full
    assert b.take_within(30, 0.0)
    assert not b.take_within(21, 0.0)
    assert b.available(0.0) == 20
    assert b.take_within(21, 0.01)  # refilled by one token
    assert b.available(0.01) == pytest.approx(0)


def test_limiter_refused_take_within_still_banks_the_refill() -> None:
    b = TokenBucket(rate=100, burst=50, now=0.0)
    assert b.take_within(50, 0.0)
    assert not b.take_within(20, 0.1)  # 10 tokens refilled: not enough
    assert b.available(0.1) == pytest.approx(10)  # kept, not lost nor counted twice
    assert b.take_within(10, 0.1)
    assert not b.take_within(1, 0.1)


def test_limiter_oversized_request_waits_for_full_bucket_then_goes_into_debt() -> None:
    b = TokenBucket(rate=100, burst=50, now=0.0)
    b.take(30, 0.0)
    assert not b.try_take(80, 0.0)
    assert b.wait_time(80, 0.0) == pytest.approx(0.3)  # until full, not until 80
    assert b.try_take(80, 0.3)
    assert b.available(0.3) == pytest.approx(-30)
    assert not b.try_take(1, 0.5)  # debt repaid first
    assert b.try_take(1, 0.3 + 0.32)


def test_limiter_rejects_nonpositive_parameters() -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        TokenBucket(rate=0, burst=1, now=0.0)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.integers(1, 10_000),
    burst=st.integers(1, 5_000),
    steps=st.lists(
        st.tuples(st.floats(0, 0.5, allow_nan=False), st.floats(0, 1, allow_nan=False)),
        min_size=1,
        max_size=60,
    ),
)
def test_limiter_admits_at_most_burst_plus_rate_times_t_in_every_window(
    rate: int, burst: int, steps: list[tuple[float, float]]
) -> None:
    b = TokenBucket(rate=rate, burst=burst, now=0.0)
    now, admitted = 0.0, []  # (time, bytes) of each admitted request
    for dt, frac in steps:
        now += dt
        n = max(1.0, frac * burst)
        if b.try_take(n, now):
            admitted.append((now, n))
    for i, (start, _) in enumerate(admitted):
        total = 0.0
        for t, n in admitted[i:]:
            total += n
            assert total <= burst + rate * (t - start) + 1e-6
