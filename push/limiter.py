"""Token bucket: the per-connection outbound byte budget (and the client frame rate).

Pure: every method takes ``now`` (seconds, any monotonic origin), so tests drive it with a
fake clock. The bucket holds at most ``burst`` tokens and refills at ``rate`` per second.

Guarantee: over any interval of length ``t`` starting with the bucket at most full,
:meth:`TokenBucket.try_take` admits at most ``burst + rate * t`` tokens, as long as
every request is at most ``burst``. A single request larger than ``burst`` (a big
snapshot frame) can never fit, so it is admitted only when the bucket is full and drives
it negative; nothing else is admitted until the debt is repaid, so the long-run rate
still holds and the bound is exceeded by at most that one request's excess.
"""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` banked; starts full at ``now``."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError(f"token bucket needs rate > 0 and burst > 0, got {rate}, {burst}")
        self._rate = float(rate)
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = now

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> float:
        return self._burst

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now

    def available(self, now: float) -> float:
        """Tokens that may be taken at ``now`` (negative while a debt is being repaid)."""
        self._refill(now)
        return self._tokens

    def is_full(self, now: float) -> bool:
        self._refill(now)
        return self._tokens >= self._burst

    def try_take(self, n: float, now: float) -> bool:
        """Take ``n`` tokens if they fit (or ``n > burst`` and the bucket is full)."""
        self._refill(now)
        if n <= self._tokens or (n > self._burst and self._tokens >= self._burst):
            self._tokens -= n
            return True
        return False

    def take_within(self, n: float, now: float) -> bool:
        """Take ``n`` tokens if that leaves the bucket non-negative (never a debt)."""
        tokens = self._tokens
        if now > self._stamp:  # _refill, inline: this runs for every socket of a pass
            tokens = min(self._burst, tokens + (now - self._stamp) * self._rate)
            self._stamp = now
        if n <= tokens:
            self._tokens = tokens - n
            return True
        self._tokens = tokens
        return False

    def take(self, n: float, now: float) -> None:
        """Take ``n`` tokens unconditionally (the caller already checked they fit)."""
        self._refill(now)
        self._tokens -= n

    def wait_time(self, n: float, now: float) -> float:
        """Seconds from ``now`` until ``try_take(n)`` would succeed (0 if it would now)."""
        self._refill(now)
        need = min(n, self._burst) - self._tokens
        return max(0.0, need / self._rate)
