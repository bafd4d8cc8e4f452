"""Bearer-token authentication: who is calling comes from the token, never the body."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from ingest.deps import AppContext, ContextDep
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
    return _principal(ctx, token)


def _principal(ctx: AppContext, token: str) -> Principal:
    if not token:
        return verify_principal(ctx.shared, token)  # says what is missing
    return ctx.tokens.verify(token)


def header_principal(ctx: AppContext, authorization: str | None) -> Principal:
    """:func:`authenticate` without FastAPI's dependency machinery, for the hot route.

    Reads the ``Authorization`` header value exactly as ``HTTPBearer(auto_error=False)``
    does; the route declares :data:`BEARER_SECURITY` so its OpenAPI entry is unchanged.
    """
    scheme, credentials = get_authorization_scheme_param(authorization)
    if not (authorization and scheme and credentials) or scheme.lower() != "bearer":
        credentials = ""
    return _principal(ctx, credentials)


def request_principal(ctx: AppContext, request: Request) -> Principal:
    """:func:`header_principal` of a Starlette request."""
    return header_principal(ctx, request.headers.get("authorization"))


BEARER_SECURITY: Final[list[dict[str, list[str]]]] = [{"HTTPBearer": []}]
"""The OpenAPI ``security`` of a route authenticated with :func:`request_principal`."""


PrincipalDep = Annotated[Principal, Depends(authenticate)]
