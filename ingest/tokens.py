"""Verified bearer tokens, remembered for a short while.

Verifying a JWT costs more CPU than the rest of a one-op request's handling, and a client
sends the same token with every request, so verified tokens are remembered
(:class:`TokenCache`): never past their ``exp``, at most ``max_age_s``, at most
``max_entries`` of them. Only successes are remembered; a bad token is checked every time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Final

import jwt

from ingest.errors import UnauthorizedError
from schemas.auth import AuthError, Principal, verify_token
from schemas.settings import SharedSettings

_TENANT_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_USER_ID_MAX: Final = 128


def verify_principal(shared: SharedSettings, token: str) -> Principal:
    """Verify a token and the shape of its claims; raise :class:`UnauthorizedError` (401)."""
    try:
        principal = verify_token(shared, token)
    except AuthError as exc:
        raise UnauthorizedError(str(exc)) from exc
    if not _TENANT_RE.fullmatch(principal.tenant):
        raise UnauthorizedError(
            "invalid token: 'tenant' must be 1-64 of A-Z a-z 0-9 _ . - ; get a new token"
        )
    if len(principal.user_id) > _USER_ID_MAX:
        raise UnauthorizedError("invalid token: 'sub' is longer than 128 characters")
    return principal


class TokenCache:
    """Recently verified tokens, keyed by the token string, bounded, expiring at ``exp``."""

    def __init__(
        self,
        shared: SharedSettings,
        *,
        max_entries: int = 10_000,
        max_age_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._shared = shared
        self._max_entries = max_entries
        self._max_age_s = max_age_s
        self._clock = clock
        self._entries: dict[str, tuple[Principal, float]] = {}  # token -> (principal, until)

    def __len__(self) -> int:
        return len(self._entries)

    def verify(self, token: str) -> Principal:
        """The token's principal, from the cache while fresh, else verified now."""
        now = self._clock()
        hit = self._entries.get(token)
        if hit is not None:
            if now < hit[1]:
                return hit[0]
            del self._entries[token]
        principal = verify_principal(self._shared, token)
        # Verified, so the payload is well-formed and carries a numeric 'exp'.
        exp = jwt.decode(token, options={"verify_signature": False})["exp"]
        until = min(float(exp), now + self._max_age_s)
        if until > now:
            if len(self._entries) >= self._max_entries:
                del self._entries[next(iter(self._entries))]  # the oldest entry
            self._entries[token] = (principal, until)
        return principal
