"""Bearer-token authentication: who is calling comes from the token, never the body."""

from __future__ import annotations

import re
from typing import Annotated, Final

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ingest.deps import ContextDep
from ingest.errors import UnauthorizedError
from schemas.auth import AuthError, Principal, verify_token

_TENANT_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_USER_ID_MAX: Final = 128

bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="JWT carrying 'sub' (user id) and 'tenant'; `syncpipe token` mints dev tokens.",
)


async def authenticate(
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The verified principal, or :class:`UnauthorizedError` (401)."""
    token = credentials.credentials if credentials is not None else ""
    try:
        principal = verify_token(ctx.shared, token)
    except AuthError as exc:
        raise UnauthorizedError(str(exc)) from exc
    if not _TENANT_RE.fullmatch(principal.tenant):
        raise UnauthorizedError(
            "invalid token: 'tenant' must be 1-64 of A-Z a-z 0-9 _ . - ; get a new token"
        )
    if len(principal.user_id) > _USER_ID_MAX:
        raise UnauthorizedError("invalid token: 'sub' is longer than 128 characters")
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]
