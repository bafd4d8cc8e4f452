"""Classic consumer group coordinator (JoinGroup/SyncGroup/Heartbeat/LeaveGroup).

States and transitions::

    Empty ──join──► PreparingRebalance ──all joined / rebalance timeout──► CompletingRebalance
      ▲                 ▲        │                                              │
      │                 │        └──no members left──► Empty                    │ leader syncs
      │     join/leave/expiry                                                   ▼
      └──last member leaves──────┴────────────────────────────────────────── Stable

Each completed join bumps the generation. Member metadata and assignments are opaque
bytes passed through untouched (so client-side assignors, faust's included, work). The
first member becomes leader and stays leader while it remains a member. A JoinGroup v4+
without a member id gets MEMBER_ID_REQUIRED and a fresh id to come back with.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from broker import errors
from broker.settings import BrokerSettings

log = logging.getLogger(__name__)

EMPTY = "Empty"
PREPARING = "PreparingRebalance"
COMPLETING = "CompletingRebalance"
STABLE = "Stable"


@dataclass(frozen=True, slots=True)
class JoinResult:
    error: int
    generation: int = -1
    protocol: str = ""
    leader: str = ""
    member_id: str = ""
    members: tuple[tuple[str, str | None, bytes], ...] = ()


@dataclass(slots=True)
class Member:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: list[tuple[str, bytes]]
    last_seen: float = field(default_factory=time.monotonic)
    assignment: bytes = b""
    join_fut: asyncio.Future[JoinResult] | None = None
    sync_fut: asyncio.Future[tuple[int, bytes]] | None = None

    def joining(self) -> bool:
        """Has a JoinGroup parked for the current rebalance. One whose client vanished
        (future cancelled) still counts, as in Kafka: the member is carried into the
        next generation and then expires by session timeout, rather than holding the
        whole group until the rebalance timeout."""
        fut = self.join_fut
        return fut is not None and (not fut.done() or fut.cancelled())

    def metadata(self, protocol: str) -> bytes:
        return next((m for name, m in self.protocols if name == protocol), b"")


@dataclass(slots=True)
class Group:
    group_id: str
    state: str = EMPTY
    generation: int = 0
    protocol_type: str = ""
    protocol: str = ""
    leader: str = ""
    members: dict[str, Member] = field(default_factory=dict)
    pending: dict[str, float] = field(default_factory=dict)  # member id -> expiry
    deadline: float = 0.0
    not_before: float = 0.0


def _now() -> float:
    return time.monotonic()


class GroupCoordinator:
    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings
        self.groups: dict[str, Group] = {}

    # --- join ---------------------------------------------------------------------

    async def join(
        self,
        *,
        group_id: str,
        member_id: str,
        instance_id: str | None,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        client_id: str,
        client_host: str,
        require_known_member_id: bool,
    ) -> JoinResult:
        s = self.settings
        if not group_id:
            return JoinResult(errors.INVALID_GROUP_ID, member_id=member_id)
        if (
            not s.group_min_session_timeout_ms
            <= session_timeout_ms
            <= (s.group_max_session_timeout_ms)
        ):
            return JoinResult(errors.INVALID_SESSION_TIMEOUT, member_id=member_id)
        g = self.groups.setdefault(group_id, Group(group_id))
        if not protocols or (
            g.members
            and (protocol_type != g.protocol_type or not self._common(g, protocols, member_id))
        ):
            return JoinResult(errors.INCONSISTENT_GROUP_PROTOCOL, member_id=member_id)
        if not member_id:
            existing = next(
                (m for m in g.members.values() if instance_id and m.instance_id == instance_id),
                None,
            )
            if existing is not None:
                member_id = existing.member_id
            else:
                member_id = f"{client_id or 'member'}-{uuid.uuid4()}"
                if require_known_member_id:
                    g.pending[member_id] = _now() + session_timeout_ms / 1000
                    return JoinResult(errors.MEMBER_ID_REQUIRED, member_id=member_id)
        elif member_id not in g.members and member_id not in g.pending:
            return JoinResult(errors.UNKNOWN_MEMBER_ID, member_id=member_id)
        g.pending.pop(member_id, None)
        m = g.members.get(member_id)
        if m is None:
            m = Member(
                member_id,
                instance_id,
                client_id,
                client_host,
                session_timeout_ms,
                rebalance_timeout_ms,
                protocols,
            )
            g.members[member_id] = m
            log.info("member joined", extra={"group": group_id, "member": member_id})
        else:
            m.protocols = protocols
            m.session_timeout_ms = session_timeout_ms
            m.rebalance_timeout_ms = rebalance_timeout_ms
        g.protocol_type = protocol_type
        m.last_seen = _now()
        if m.join_fut is not None and not m.join_fut.done():
            m.join_fut.set_result(JoinResult(errors.REBALANCE_IN_PROGRESS, member_id=member_id))
        fut: asyncio.Future[JoinResult] = asyncio.get_running_loop().create_future()
        m.join_fut = fut
        if g.state != PREPARING:
            self._prepare(g)
        self._maybe_complete_join(g)
        return await fut

    def _common(self, g: Group, protocols: list[tuple[str, bytes]], member_id: str) -> set[str]:
        names = {n for n, _ in protocols}
        for m in g.members.values():
            if m.member_id != member_id:
                names &= {n for n, _ in m.protocols}
        return names

    def _prepare(self, g: Group) -> None:
        if g.state == COMPLETING:
            for m in g.members.values():
                if m.sync_fut is not None and not m.sync_fut.done():
                    m.sync_fut.set_result((errors.REBALANCE_IN_PROGRESS, b""))
        was_empty = g.state == EMPTY
        g.state = PREPARING
        timeout_ms = max((m.rebalance_timeout_ms for m in g.members.values()), default=0)
        g.deadline = _now() + timeout_ms / 1000
        delay = self.settings.group_initial_rebalance_delay_ms / 1000
        g.not_before = _now() + delay if was_empty else 0.0
        log.info("rebalance started", extra={"group": g.group_id, "generation": g.generation})

    def _maybe_complete_join(self, g: Group) -> None:
        if g.state != PREPARING or _now() < g.not_before:
            return
        if all(m.joining() for m in g.members.values()):
            self._complete_join(g)

    def _complete_join(self, g: Group) -> None:
        for mid in [mid for mid, m in g.members.items() if not m.joining()]:
            self._remove(g, mid, "rebalance timeout")
        g.generation += 1
        if not g.members:
            g.state, g.protocol, g.leader = EMPTY, "", ""
            return
        members = list(g.members.values())
        candidates = set.intersection(*({n for n, _ in m.protocols} for m in members))
        votes = Counter(next(n for n, _ in m.protocols if n in candidates) for m in members)
        g.protocol = max(votes, key=lambda n: votes[n])
        if g.leader not in g.members:
            g.leader = members[0].member_id
        g.state = COMPLETING
        g.deadline = _now() + max(m.rebalance_timeout_ms for m in members) / 1000
        everyone = tuple((m.member_id, m.instance_id, m.metadata(g.protocol)) for m in members)
        for m in members:
            m.last_seen = _now()
            fut, m.join_fut = m.join_fut, None
            if fut is not None and not fut.done():
                fut.set_result(
                    JoinResult(
                        errors.NONE,
                        g.generation,
                        g.protocol,
                        g.leader,
                        m.member_id,
                        everyone if m.member_id == g.leader else (),
                    )
                )
        log.info(
            "rebalance completed",
            extra={"group": g.group_id, "generation": g.generation, "members": len(members)},
        )

    # --- sync, heartbeat, leave ---------------------------------------------------

    async def sync(
        self, group_id: str, generation: int, member_id: str, assignments: dict[str, bytes]
    ) -> tuple[int, bytes]:
        g = self.groups.get(group_id)
        m = g.members.get(member_id) if g else None
        if g is None or m is None:
            return errors.UNKNOWN_MEMBER_ID, b""
        if generation != g.generation:
            return errors.ILLEGAL_GENERATION, b""
        m.last_seen = _now()
        if g.state == PREPARING:
            return errors.REBALANCE_IN_PROGRESS, b""
        if g.state == STABLE:
            return errors.NONE, m.assignment
        fut: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        m.sync_fut = fut
        if member_id == g.leader:
            for other in g.members.values():
                other.assignment = assignments.get(other.member_id, b"")
            g.state = STABLE
            for other in g.members.values():
                if other.sync_fut is not None and not other.sync_fut.done():
                    other.sync_fut.set_result((errors.NONE, other.assignment))
        return await fut

    def heartbeat(self, group_id: str, generation: int, member_id: str) -> int:
        g = self.groups.get(group_id)
        m = g.members.get(member_id) if g else None
        if g is None or m is None:
            return errors.UNKNOWN_MEMBER_ID
        m.last_seen = _now()
        if generation != g.generation:
            return errors.ILLEGAL_GENERATION
        if g.state == PREPARING:
            return errors.REBALANCE_IN_PROGRESS
        return errors.NONE

    def leave(self, group_id: str, member_ids: list[str]) -> list[int]:
        g = self.groups.get(group_id)
        out: list[int] = []
        for mid in member_ids:
            if g is None or mid not in g.members:
                out.append(errors.UNKNOWN_MEMBER_ID)
                continue
            self._remove(g, mid, "left")
            out.append(errors.NONE)
        if g is not None and errors.NONE in out:
            self._after_departure(g)
        return out

    def _remove(self, g: Group, member_id: str, reason: str) -> None:
        m = g.members.pop(member_id)
        if m.join_fut is not None and not m.join_fut.done():
            m.join_fut.set_result(JoinResult(errors.UNKNOWN_MEMBER_ID, member_id=member_id))
        if m.sync_fut is not None and not m.sync_fut.done():
            m.sync_fut.set_result((errors.UNKNOWN_MEMBER_ID, b""))
        log.info(
            "member removed", extra={"group": g.group_id, "member": member_id, "reason": reason}
        )

    def _after_departure(self, g: Group) -> None:
        if g.state == PREPARING:
            self._maybe_complete_join(g)
            if not g.members:
                self._complete_join(g)
        elif not g.members:
            g.generation += 1
            g.state, g.protocol, g.leader = EMPTY, "", ""
        else:
            self._prepare(g)

    def commit_allowed(self, group_id: str, generation: int, member_id: str) -> int:
        g = self.groups.get(group_id)
        if g is None or (generation < 0 and g.state == EMPTY):
            return errors.NONE
        if g.state == COMPLETING:
            return errors.REBALANCE_IN_PROGRESS
        m = g.members.get(member_id)
        if m is None:
            return errors.UNKNOWN_MEMBER_ID
        if generation != g.generation:
            return errors.ILLEGAL_GENERATION
        m.last_seen = _now()
        return errors.NONE

    # --- timers -------------------------------------------------------------------

    def tick(self) -> None:
        """Expire sessions and finish overdue rebalances; the server calls this often."""
        now = _now()
        for g in list(self.groups.values()):
            g.pending = {mid: exp for mid, exp in g.pending.items() if exp > now}
            departed = False
            for mid, m in list(g.members.items()):
                if m.joining():
                    continue
                if now - m.last_seen > m.session_timeout_ms / 1000:
                    self._remove(g, mid, "session timeout")
                    departed = True
            if departed:
                self._after_departure(g)
            if g.state == PREPARING:
                if now >= g.deadline:
                    self._complete_join(g)
                else:
                    self._maybe_complete_join(g)
            elif g.state == COMPLETING and now >= g.deadline:
                self._prepare(g)

    def live_groups(self) -> set[str]:
        return {gid for gid, g in self.groups.items() if g.members}
