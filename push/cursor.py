"""Resume cursors: positions in the ``entities`` topic, meaningful on every push replica.

Format (opaque to clients, stable across replicas and restarts)::

    v1:<partition>=<next_offset>,<partition>=<next_offset>,...

partitions ascending, e.g. ``v1:0=1520,1=988,2=1203``. ``next_offset`` is the offset
after the last record of that partition the server had dispatched when it sent the
message carrying the cursor. Every replica consumes every partition of the same topic, so
offsets mean the same thing everywhere. A cursor covers the whole topic, not one
collection: ``c`` says "every entity event of the collections I subscribe to, in every
partition ``p`` below ``c[p]``, was delivered to me or superseded by a newer state of the
same entity at or after ``c``" (see :mod:`push.conflation`). A partition missing from a
cursor counts as offset 0.

The cursor fits the schema's 1024 characters for up to about 60 partitions with
offsets below 10^12; the entities topic needs no more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from push.errors import CursorError

PREFIX: Final = "v1:"
MAX_LEN: Final = 1024


def encode(positions: Mapping[int, int]) -> str:
    """The cursor string of a partition -> next-offset map."""
    return PREFIX + ",".join(f"{p}={positions[p]}" for p in sorted(positions))


def decode(cursor: str) -> dict[int, int]:
    """Inverse of :func:`encode`; raises :class:`CursorError` on anything else."""
    if len(cursor) > MAX_LEN or not cursor.startswith(PREFIX):
        raise CursorError(f"unknown cursor format {cursor[:40]!r}: expected 'v1:...'")
    body = cursor[len(PREFIX) :]
    out: dict[int, int] = {}
    if not body:
        return out
    for part in body.split(","):
        p, sep, o = part.partition("=")
        if not sep or not p.isdigit() or not o.isdigit() or not p.isascii() or not o.isascii():
            raise CursorError(f"malformed cursor part {part[:40]!r}: expected '<partition>=<n>'")
        partition = int(p)
        if partition in out:
            raise CursorError(f"cursor names partition {partition} twice")
        out[partition] = int(o)
    return out
