"""The recent-event buffer: the last entity events of each (tenant, collection), for resume.

Each stream keeps at most ``size`` events and a ``floor`` per partition: the offset from
which it holds *every* event of its collection in that partition. A stream starts with
the floor the hub had when it started consuming (events before that were never seen) and
raises it as old events are evicted. A cursor ``c`` (see :mod:`push.cursor`) is covered
when ``c[p] >= floor[p]`` for every partition: then the events at or after ``c`` are all
here and can be replayed. Streams are kept least-recently-updated first and at most
``max_streams`` of them; when one is evicted, streams created later start from the
position at that moment (no event of theirs can be older, but the evicted one's were).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass

StreamKey = tuple[str, str]  # (tenant, collection)


@dataclass(frozen=True, slots=True)
class Event:
    """One entity event as the buffer keeps it."""

    partition: int
    offset: int
    entity_id: str
    version: int
    state: bytes  # EntityState JSON


class RecentStream:
    """The recent events of one (tenant, collection)."""

    __slots__ = ("events", "floor", "size")

    def __init__(self, size: int, floor: Mapping[int, int]) -> None:
        self.size = size
        self.events: deque[Event] = deque()
        self.floor = dict(floor)

    def append(self, event: Event) -> None:
        if len(self.events) >= self.size:
            old = self.events.popleft()
            if old.offset + 1 > self.floor.get(old.partition, 0):
                self.floor[old.partition] = old.offset + 1
        self.events.append(event)

    def covers(self, cursor: Mapping[int, int]) -> bool:
        return all(cursor.get(p, 0) >= f for p, f in self.floor.items())

    def latest_since(self, cursor: Mapping[int, int]) -> dict[str, tuple[int, bytes]]:
        """Latest (version, state) per entity among events at or after ``cursor``."""
        out: dict[str, tuple[int, bytes]] = {}
        for e in self.events:
            if e.offset >= cursor.get(e.partition, 0):
                held = out.get(e.entity_id)
                if held is None or e.version > held[0]:
                    out[e.entity_id] = (e.version, e.state)
        return out


class RecentBuffers:
    """Every stream's buffer, bounded in events per stream and in streams."""

    def __init__(self, size: int, max_streams: int) -> None:
        self.size = size
        self.max_streams = max_streams
        self.streams: OrderedDict[StreamKey, RecentStream] = OrderedDict()
        self.new_stream_floor: dict[int, int] = {}

    def start(self, positions: Mapping[int, int]) -> None:
        """The consumer starts at ``positions``: nothing before them was seen."""
        self.streams.clear()
        self.new_stream_floor = dict(positions)

    def append(self, key: StreamKey, event: Event, position: Mapping[int, int]) -> None:
        """Buffer ``event``; ``position`` is the hub's position after it."""
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = RecentStream(self.size, self.new_stream_floor)
        else:
            self.streams.move_to_end(key)
        stream.append(event)
        if len(self.streams) > self.max_streams:
            self.streams.popitem(last=False)
            self.new_stream_floor = dict(position)

    def covers(self, key: StreamKey, cursor: Mapping[int, int]) -> bool:
        """Whether every event of ``key`` at or after ``cursor`` is buffered."""
        stream = self.streams.get(key)
        if stream is not None:
            return stream.covers(cursor)
        return all(cursor.get(p, 0) >= f for p, f in self.new_stream_floor.items())

    def latest_since(
        self, key: StreamKey, cursor: Mapping[int, int]
    ) -> dict[str, tuple[int, bytes]]:
        stream = self.streams.get(key)
        return {} if stream is None else stream.latest_since(cursor)
