"""Bearer-token authentication: who is calling comes from the token, never the body."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ingest.deps import ContextDep
from ingest.tokens import verify_principal
from schemas.auth import Principal

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
    if not token:
        return verify_principal(ctx.shared, token)  # says what is missing
    return ctx.tokens.verify(token)


PrincipalDep = Annotated[Principal, Depends(authenticate)]
