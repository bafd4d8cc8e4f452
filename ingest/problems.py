"""Errors as RFC 9457 ``application/problem+json`` responses: the one mapping.

The app factory's exception handlers and the ASGI route of ``POST /v1/ops`` both answer
errors through :class:`Problems`, so a problem looks (and is counted) the same whichever
way the request came in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingest.errors import IngestError, problem_body
from ingest.metrics import IngestMetrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProblemResponse:
    """A rendered problem: status, problem+json body and extra headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Problems:
    """Renders problems and counts them in ``syncpipe_ingest_requests_failed_total``."""

    def __init__(self, metrics: IngestMetrics) -> None:
        self._failed = metrics.requests_failed
        self._children: dict[str, Any] = {}  # by code: codes are a fixed set

    def render(
        self,
        *,
        status: int,
        code: str,
        title: str,
        detail: str,
        retriable: bool,
        instance: str | None,
        headers: dict[str, str] | None = None,
        retry_after_s: int | None = None,
    ) -> ProblemResponse:
        child = self._children.get(code)
        if child is None:
            child = self._children[code] = self._failed.labels(code)
        child.inc()
        body = problem_body(
            code=code,
            title=title,
            status=status,
            detail=detail,
            retriable=retriable,
            instance=instance,
            retry_after_s=retry_after_s,
        )
        return ProblemResponse(status, orjson.dumps(body), headers or {})

    def of_error(self, exc: IngestError, instance: str | None) -> ProblemResponse:
        """The problem of a domain error (5xx ones are logged)."""
        if exc.status >= 500:
            logger.warning("request failed", extra={"code": exc.code, "detail": exc.detail})
        return self.render(
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            retriable=exc.retriable,
            instance=instance,
            headers=exc.headers(),
            retry_after_s=exc.retry_after_s,
        )

    def unexpected(self, exc: BaseException, instance: str | None) -> ProblemResponse:
        """The 500 of a bug, logged with its traceback."""
        logger.error("unhandled error", exc_info=exc)
        return self.render(
            status=500,
            code="internal",
            title="Internal error",
            detail="internal error: the request failed unexpectedly; retry later",
            retriable=True,
            instance=instance,
        )
