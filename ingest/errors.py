"""Ingest's errors: one root exception, subclasses carrying their HTTP mapping.

Every domain error becomes an RFC 9457 ``application/problem+json`` body in one place, the
app factory (:mod:`ingest.app`), with a stable ``type`` (``urn:syncpipe:problem:<code>``)
and ``code`` the PWA acts on, and ``retriable`` telling it whether sending the same
request later may succeed. Third-party exceptions (aiokafka, redis, jwt) are translated to
these where they enter our code.

Request-level problems (the whole request fails):

=======  ======================  =========  ==============================================
status   code                    retriable  meaning / what the client does
=======  ======================  =========  ==============================================
401      unauthorized            no         missing, malformed, expired or wrong-key token
404      not_found               no         no such route
405      method_not_allowed      no         wrong HTTP method for the route
413      body_too_large          no         body over 1 MiB: split the batch
413      too_many_ops            no         more than 500 ops: split the batch
422      invalid_batch           no         body is not JSON ``{"ops": [1-500 items]}``
422      invalid_request         no         a path/query parameter is invalid
429      rate_limited            yes        over the per tenant+client budget: Retry-After
503      broker_unavailable      yes        Kafka unreachable/timed out: Retry-After
503      producer_queue_full     yes        this replica is at its in-flight limit
503      redis_unavailable       yes        Redis unreachable: Retry-After
500      internal                yes        a bug; logged with a traceback
=======  ======================  =========  ==============================================

Per-op rejections are not exceptions but :class:`OpRejection` codes in an ``OpResult``
(see :data:`OP_REJECTIONS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Final

from pydantic import BaseModel, ConfigDict, Field

PROBLEM_TYPE_PREFIX: Final = "urn:syncpipe:problem:"
PROBLEM_MEDIA_TYPE: Final = "application/problem+json"


class IngestError(Exception):
    """Root of every ingest error; subclasses set the HTTP status, code and retriability."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"
    retriable: ClassVar[bool] = True

    def __init__(self, detail: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


class UnauthorizedError(IngestError):
    status, code, title, retriable = 401, "unauthorized", "Unauthorized", False

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="syncpipe"'}


class BodyTooLargeError(IngestError):
    status, code, title, retriable = 413, "body_too_large", "Request body too large", False


class TooManyOpsError(IngestError):
    status, code, title, retriable = 413, "too_many_ops", "Too many ops in one batch", False


class InvalidBatchError(IngestError):
    status, code, title, retriable = 422, "invalid_batch", "Invalid batch", False


class InvalidRequestError(IngestError):
    status, code, title, retriable = 422, "invalid_request", "Invalid request", False


class RateLimitedError(IngestError):
    status, code, title, retriable = 429, "rate_limited", "Rate limit exceeded", True


class UnavailableError(IngestError):
    """A dependency is down or saturated: 503 with Retry-After, never a 500."""

    status, code, title, retriable = 503, "unavailable", "Service unavailable", True


class BrokerUnavailableError(UnavailableError):
    code, title = "broker_unavailable", "Kafka unavailable"


class ProducerQueueFullError(UnavailableError):
    code, title = "producer_queue_full", "Producer queue full"


class RedisUnavailableError(UnavailableError):
    code, title = "redis_unavailable", "Redis unavailable"


HTTP_CODES: Final[dict[int, tuple[str, str]]] = {
    401: ("unauthorized", "Unauthorized"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("body_too_large", "Request body too large"),
    422: ("invalid_request", "Invalid request"),
}
"""Codes for errors raised by the framework itself (routing, parameter validation)."""


class OpRejection(StrEnum):
    """Stable codes of a per-op ``rejected`` result."""

    INVALID_OP = "invalid_op"
    OP_TOO_LARGE = "op_too_large"
    CLOCK_SKEW = "clock_skew"
    IN_FLIGHT = "in_flight"


@dataclass(frozen=True, slots=True)
class RejectionInfo:
    retriable: bool
    meaning: str


OP_REJECTIONS: Final[dict[OpRejection, RejectionInfo]] = {
    OpRejection.INVALID_OP: RejectionInfo(
        False, "the op does not match the Op schema or its rules; fix it, do not resend as is"
    ),
    OpRejection.OP_TOO_LARGE: RejectionInfo(
        False, "the serialized op is over 64 KiB; split the change into smaller ops"
    ),
    OpRejection.CLOCK_SKEW: RejectionInfo(
        True, "the op's HLC is too far ahead of the server; adopt server_hlc, re-stamp, retry"
    ),
    OpRejection.IN_FLIGHT: RejectionInfo(
        True, "another request is writing the same op_id right now; retry to get its outcome"
    ),
}


class Problem(BaseModel):
    """RFC 9457 problem details, as sent with ``application/problem+json``."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="Stable URI of the problem kind: urn:syncpipe:problem:<code>.")
    title: str = Field(description="Short summary of the problem kind.")
    status: int = Field(description="HTTP status code.")
    detail: str = Field(description="What happened and what to do.")
    instance: str | None = Field(default=None, description="The request path.")
    code: str = Field(description="Stable machine-readable code (the last part of type).")
    retriable: bool = Field(description="True when sending the same request later may succeed.")
    retry_after_s: int | None = Field(
        default=None, description="Seconds to wait before retrying (also the Retry-After header)."
    )


def problem_body(
    *,
    code: str,
    title: str,
    status: int,
    detail: str,
    retriable: bool,
    instance: str | None,
    retry_after_s: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "retriable": retriable,
    }
    if instance is not None:
        body["instance"] = instance
    if retry_after_s is not None:
        body["retry_after_s"] = retry_after_s
    return body
