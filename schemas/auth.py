"""Bearer tokens: the claims every service trusts, and how they are minted and checked.

Tokens are JWTs carrying ``sub`` (user id) and ``tenant``; ingest and push verify them
with :func:`verify_token`. ``syncpipe token`` mints dev tokens with :func:`mint_token`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from schemas.settings import SettingsError, SharedSettings


class AuthError(Exception):
    """A token is missing, malformed, expired or signed with the wrong key."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: from a verified token, never from a request body."""

    user_id: str
    tenant: str


def mint_token(
    settings: SharedSettings,
    *,
    tenant: str,
    user_id: str,
    ttl_s: int = 3600,
    now_s: int | None = None,
) -> str:
    """Sign an HS256 token for ``user_id`` in ``tenant``, valid for ``ttl_s`` seconds."""
    if settings.jwt_algorithm != "HS256":
        raise SettingsError(
            "only HS256 tokens can be minted here; RS256 tokens come from your identity provider"
        )
    if ttl_s <= 0:
        raise ValueError(f"ttl must be positive, got {ttl_s} s")
    issued = int(time.time()) if now_s is None else now_s
    claims = {
        "sub": user_id,
        "tenant": tenant,
        "iss": settings.jwt_issuer,
        "iat": issued,
        "exp": issued + ttl_s,
    }
    return jwt.encode(claims, settings.hs256_secret(), algorithm="HS256")


def verify_token(settings: SharedSettings, token: str) -> Principal:
    """Check signature, expiry and issuer; return the principal or raise :class:`AuthError`."""
    if not token:
        raise AuthError("missing bearer token: send 'Authorization: Bearer <token>'")
    key = (
        settings.hs256_secret()
        if settings.jwt_algorithm == "HS256"
        else (settings.jwt_public_key or "")
    )
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_s,
            options={"require": ["sub", "tenant", "exp", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("token expired: get a new token and retry") from exc
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"invalid token: {exc}") from exc
    sub, tenant = claims.get("sub"), claims.get("tenant")
    if not isinstance(sub, str) or not sub or not isinstance(tenant, str) or not tenant:
        raise AuthError("invalid token: 'sub' and 'tenant' must be non-empty strings")
    return Principal(user_id=sub, tenant=tenant)
