"""A Lua script called over a Redis connection of its own, one call at a time.

redis-py's command path (pool checkout, retry wrapper, observability hooks, argument
encoding) costs about as much CPU as the round trip itself. The admit-and-claim script
(:mod:`ingest.admission`) is called once per coalesced batch of requests and never twice
at once (its :class:`~ingest.coalesce.Coalescer` sends one call at a time), so it keeps
one connection from the client's pool settings (address, auth, TLS, db, timeouts) and
writes its commands on it directly.

A call that fails or is cancelled drops the connection (a reply may be left unread);
the next call connects again. Nothing is retried: a call that failed may have run, and
running the script twice would claim op ids twice. The caller answers 503 instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError

Arg = str | int | bytes


def pack_command(*parts: Arg) -> bytes:
    """One RESP command (an array of bulk strings)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


class ScriptConnection:
    """Calls one Lua script (EVALSHA; EVAL when Redis does not have it cached)."""

    def __init__(self, redis: Redis, script: str) -> None:
        self._pool = redis.connection_pool
        self._script = script.encode()
        self._sha = hashlib.sha1(self._script).hexdigest().encode()
        self._conn: AbstractConnection | None = None

    async def __call__(self, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        """The script's reply; raises ``RedisError``. Callers never overlap calls."""
        conn = self._conn
        if conn is None:
            conn = self._conn = cast(AbstractConnection, self._pool.make_connection())  # type: ignore[no-untyped-call]
        try:
            try:
                return await self._round_trip(conn, b"EVALSHA", self._sha, keys, args)
            except NoScriptError:  # the error reply was read whole: the connection is fine
                return await self._round_trip(conn, b"EVAL", self._script, keys, args)
        except BaseException:
            await conn.disconnect(nowait=True)
            raise

    @staticmethod
    async def _round_trip(
        conn: AbstractConnection,
        verb: bytes,
        script: bytes,
        keys: Sequence[Arg],
        args: Sequence[Arg],
    ) -> Any:
        await conn.send_packed_command(
            pack_command(verb, script, len(keys), *keys, *args), check_health=False
        )
        return await conn.read_response()

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.disconnect()
