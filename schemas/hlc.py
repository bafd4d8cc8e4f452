"""Hybrid logical clock (HLC): part of the data contract.

An HLC timestamp is the string ``{wall_ms:015d}-{counter:04x}-{node}``, for example
``001700000000123-0002-phone-7``. Because ``wall_ms`` and ``counter`` have a fixed width
and lowercase hex digits sort after decimal digits, plain string comparison orders
timestamps exactly like the tuple ``(wall_ms, counter, node)``: causal order, with the node
(the author's client id, or a server node such as ``ingest-1``) breaking ties, so two
different nodes never produce equal timestamps.

:class:`HlcClock` implements the standard algorithm (Kulkarni et al., 2014)::

    now():      l' = max(l, pt)             c' = c + 1 if l' == l else 0
    receive(m): l' = max(l, m.l, pt)        c' = max(c, m.c) + 1  if l' == l == m.l
                                                 c + 1            if l' == l
                                                 m.c + 1          if l' == m.l
                                                 0                otherwise

where ``pt`` is the physical (wall) clock in ms. Timestamps it issues strictly increase,
even when the wall clock goes backwards. When the counter would pass ``0xffff`` (more than
65,535 events in one millisecond) the clock moves ``l`` forward by 1 ms and resets the
counter instead of raising; ``l`` then runs slightly ahead of the wall clock until the wall
clock catches up.

The clock is not thread-safe: services use it from one asyncio event loop.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

WALL_MS_MAX: Final = 10**15 - 1
"""Largest ``wall_ms`` that fits the 15-digit field."""

COUNTER_MAX: Final = 0xFFFF
"""Largest counter that fits the 4-hex-digit field."""

NODE_PATTERN: Final = r"[A-Za-z0-9_.:-]{1,64}"
"""A node (client id or server node name)."""

HLC_PATTERN: Final = rf"[0-9]{{15}}-[0-9a-f]{{4}}-{NODE_PATTERN}"
"""A whole HLC string (same as ``common.schema.json#/$defs/Hlc``)."""

_FORMAT: Final = "'{wall_ms:015d}-{counter:04x}-{node}'"
_NODE_RE: Final = re.compile(NODE_PATTERN)
_WALL_RE: Final = re.compile(r"[0-9]{15}")
_COUNTER_RE: Final = re.compile(r"[0-9a-f]{4}")


class HlcError(ValueError):
    """An HLC string or component is malformed."""


def _check_node(node: object) -> str:
    if not isinstance(node, str) or not _NODE_RE.fullmatch(node):
        raise HlcError(
            f"invalid hlc node {node!r}: use 1-64 of A-Z a-z 0-9 _ . : - (the client id)"
        )
    return node


@dataclass(frozen=True, slots=True, order=True)
class Hlc:
    """One HLC timestamp; ordering of ``Hlc`` objects equals ordering of their strings."""

    wall_ms: int
    counter: int
    node: str

    def __post_init__(self) -> None:
        if isinstance(self.wall_ms, bool) or not isinstance(self.wall_ms, int):
            raise HlcError(f"invalid hlc wall_ms {self.wall_ms!r}: expected an int")
        if not 0 <= self.wall_ms <= WALL_MS_MAX:
            raise HlcError(f"invalid hlc wall_ms {self.wall_ms}: must be 0..{WALL_MS_MAX}")
        if isinstance(self.counter, bool) or not isinstance(self.counter, int):
            raise HlcError(f"invalid hlc counter {self.counter!r}: expected an int")
        if self.counter < 0:
            raise HlcError(f"invalid hlc counter {self.counter}: must not be negative")
        if self.counter > COUNTER_MAX:
            raise HlcError(
                f"hlc counter overflow: {self.counter} > {COUNTER_MAX:#x}; "
                "advance wall_ms and reset the counter instead"
            )
        _check_node(self.node)

    @classmethod
    def parse(cls, s: str) -> Hlc:
        """Parse ``{wall_ms:015d}-{counter:04x}-{node}``; raises :class:`HlcError`."""
        if not isinstance(s, str):
            raise HlcError(f"invalid hlc {s!r}: expected a string {_FORMAT}")
        parts = s.split("-", 2)
        if len(parts) != 3:
            raise HlcError(f"invalid hlc {s!r}: expected {_FORMAT}")
        wall, counter, node = parts
        if not _WALL_RE.fullmatch(wall):
            raise HlcError(
                f"invalid hlc {s!r}: wall_ms must be exactly 15 decimal digits, got {wall!r}; "
                f"expected {_FORMAT}"
            )
        if not _COUNTER_RE.fullmatch(counter):
            raise HlcError(
                f"invalid hlc {s!r}: counter must be exactly 4 lowercase hex digits, "
                f"got {counter!r}; expected {_FORMAT}"
            )
        if not _NODE_RE.fullmatch(node):
            raise HlcError(
                f"invalid hlc {s!r}: node must be 1-64 of A-Z a-z 0-9 _ . : -, got {node!r}; "
                f"expected {_FORMAT}"
            )
        return cls(int(wall), int(counter, 16), node)

    def format(self) -> str:
        """The canonical string form."""
        return f"{self.wall_ms:015d}-{self.counter:04x}-{self.node}"

    def __str__(self) -> str:
        return self.format()


def _as_hlc(value: Hlc | str) -> Hlc:
    return value if isinstance(value, Hlc) else Hlc.parse(value)


def _system_ms() -> int:
    return time.time_ns() // 1_000_000


class HlcClock:
    """An HLC for one node. ``wall_clock`` returns ms since the epoch (injectable for tests).

    Not thread-safe; use it from one event loop.
    """

    __slots__ = ("_counter", "_last", "_node", "_wall", "_wall_clock")

    def __init__(self, node: str, wall_clock: Callable[[], int] = _system_ms) -> None:
        self._node = _check_node(node)
        self._wall_clock = wall_clock
        self._wall = 0
        self._counter = 0
        self._last: Hlc | None = None

    @property
    def node(self) -> str:
        return self._node

    @property
    def last(self) -> Hlc | None:
        """The latest timestamp issued by :meth:`now` or :meth:`receive` (None before any)."""
        return self._last

    def _read_wall(self) -> int:
        return max(0, int(self._wall_clock()))

    def _issue(self, wall: int, counter: int) -> Hlc:
        if counter > COUNTER_MAX:  # >65,535 events in one ms: borrow the next millisecond
            wall, counter = wall + 1, 0
        hlc = Hlc(wall, counter, self._node)
        self._wall, self._counter, self._last = wall, counter, hlc
        return hlc

    def _next_local(self) -> tuple[int, int]:
        pt = self._read_wall()
        if pt > self._wall:
            return pt, 0
        return self._wall, self._counter + 1

    def peek(self) -> Hlc:
        """The timestamp :meth:`now` would return at this instant, without advancing."""
        wall, counter = self._next_local()
        if counter > COUNTER_MAX:
            wall, counter = wall + 1, 0
        return Hlc(wall, counter, self._node)

    def now(self) -> Hlc:
        """A new timestamp for a local or send event, greater than every earlier one."""
        return self._issue(*self._next_local())

    def receive(self, remote: Hlc | str) -> Hlc:
        """Merge a remote timestamp; the result is greater than it and than every earlier one.

        No skew limit is enforced here: a caller that must refuse timestamps too far in the
        future checks :func:`skew_ms` first.
        """
        m = _as_hlc(remote)
        pt = self._read_wall()
        wall = max(self._wall, m.wall_ms, pt)
        if wall == self._wall == m.wall_ms:
            counter = max(self._counter, m.counter) + 1
        elif wall == self._wall:
            counter = self._counter + 1
        elif wall == m.wall_ms:
            counter = m.counter + 1
        else:
            counter = 0
        return self._issue(wall, counter)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is before, equal to or after ``b`` (both validated)."""
    ha, hb = Hlc.parse(a), Hlc.parse(b)
    return (ha > hb) - (ha < hb)


def max_hlc(first: str, *rest: str) -> str:
    """The greatest of the given HLC strings (all validated)."""
    return max((first, *rest), key=Hlc.parse)


def wall_ms_of(s: str) -> int:
    """The wall-clock milliseconds of an HLC string."""
    return Hlc.parse(s).wall_ms


def skew_ms(remote: Hlc | str, now_ms: int) -> int:
    """How far (ms) ``remote`` is ahead of the local wall clock ``now_ms``; negative if behind."""
    return _as_hlc(remote).wall_ms - now_ms
