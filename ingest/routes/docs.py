"""OpenAPI documentation of the problem responses routes may return."""

from __future__ import annotations

from typing import Any, Final

from ingest.errors import PROBLEM_MEDIA_TYPE

_DESCRIPTIONS: Final[dict[int, str]] = {
    401: "Missing, malformed, expired or wrong-key bearer token (code unauthorized).",
    413: "Body over 1 MiB (body_too_large) or more than 500 ops (too_many_ops).",
    422: 'Body is not {"ops": [1-500 items]} (invalid_batch) or a parameter is invalid '
    "(invalid_request).",
    429: "Over the per tenant+client_id budget (rate_limited); see Retry-After.",
    503: "Kafka or Redis unavailable, or the producer queue is full (broker_unavailable, "
    "redis_unavailable, producer_queue_full); nothing was accepted, see Retry-After.",
}

_RETRY_AFTER: Final = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries: RFC 9457 problem+json bodies for the given statuses."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if status in (429, 503):
            entry["headers"] = _RETRY_AFTER
        out[status] = entry
    return out
