"""Per-op checks: each op of a batch is judged on its own (pure functions, no I/O).

A batch body is parsed as ``{"ops": [any JSON]}`` first, so one malformed op cannot fail
the batch; every element then goes through :func:`check_op`: size, the ``Op`` schema,
the rules the schema cannot say, and the clock-skew guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson
from pydantic import ValidationError

from ingest.errors import OpRejection
from schemas.generated.common_schema import OpKind
from schemas.generated.op_schema import Op
from schemas.limits import MAX_FIELDS_PER_OP, MAX_OP_BYTES

_MAX_ERRORS_SHOWN: Final = 3
_RESULT_OP_ID_MAX: Final = 128
_WALL_DIGITS: Final = 15
_NODE_AT: Final = 21  # after 'wall-counter-'


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why one op was not accepted."""

    code: OpRejection
    message: str


def result_op_id(raw: object) -> str:
    """The op id to echo in a result: the client's, if it sent a string, else empty."""
    if isinstance(raw, dict):
        op_id = raw.get("op_id")
        if isinstance(op_id, str):
            return op_id[:_RESULT_OP_ID_MAX]
    return ""


def op_label(raw: object, index: int) -> str:
    """How messages name an op: a shortened op id, or its position when it has none."""
    op_id = result_op_id(raw)
    if not op_id:
        return f"#{index}"
    return op_id if len(op_id) <= 12 else f"{op_id[:8]}…"


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.0f} s" if abs(ms) >= 10_000 else f"{ms / 1000:g} s"


def _schema_message(label: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:_MAX_ERRORS_SHOWN]:
        loc = ".".join(str(p) for p in err["loc"]) or "op"
        parts.append(f"field '{loc}': {err['msg']}")
    more = exc.error_count() - _MAX_ERRORS_SHOWN
    suffix = f" (and {more} more)" if more > 0 else ""
    return (
        f"op {label} rejected: {'; '.join(parts)}{suffix}; fix the op, resending it "
        "unchanged fails again"
    )


def check_op(raw: Any, index: int, *, now_ms: int, max_clock_skew_ms: int) -> Op | Rejected:
    """Validate one op of a batch against the contract and the server clock."""
    label = op_label(raw, index)
    if not isinstance(raw, dict):
        return Rejected(
            OpRejection.INVALID_OP,
            f"op {label} rejected: expected a JSON object, got {type(raw).__name__}",
        )
    try:
        size = len(orjson.dumps(raw))
    except orjson.JSONEncodeError as exc:  # only reachable when called with non-JSON data
        return Rejected(OpRejection.INVALID_OP, f"op {label} rejected: not JSON data ({exc})")
    if size > MAX_OP_BYTES:
        return Rejected(
            OpRejection.OP_TOO_LARGE,
            f"op {label} rejected: {size} bytes serialized, over the limit of {MAX_OP_BYTES} "
            "bytes (64 KiB); split the change into several ops",
        )
    try:
        op = Op.model_validate(raw)
    except ValidationError as exc:
        return Rejected(OpRejection.INVALID_OP, _schema_message(label, exc))
    # The Op schema's pattern already holds the hlc to the fixed-width contract format
    # '{wall_ms:015d}-{counter:04x}-{node}' (schemas.hlc), so its parts are at known offsets.
    wall_ms, node = int(op.hlc[:_WALL_DIGITS]), op.hlc[_NODE_AT:]
    problem = _rule_violation(op, node)
    if problem is not None:
        return Rejected(OpRejection.INVALID_OP, f"op {label} rejected: {problem}")
    ahead = wall_ms - now_ms
    if ahead > max_clock_skew_ms:
        return Rejected(
            OpRejection.CLOCK_SKEW,
            f"op {label} rejected: hlc is {_seconds(ahead)} ahead of server time (limit "
            f"{_seconds(max_clock_skew_ms)}); adopt server_hlc and retry",
        )
    return op


def _rule_violation(op: Op, node: str) -> str | None:
    """Rules of the contract the JSON Schema does not express."""
    if op.kind is OpKind.UPSERT and not op.fields:
        return f"field 'fields': an upsert needs 1-{MAX_FIELDS_PER_OP} fields"
    if op.kind is OpKind.DELETE and op.fields is not None:
        return "field 'fields': a delete carries no fields; send fields with an upsert"
    if node != op.client_id:
        return (
            f"field 'hlc': node {node!r} must equal client_id {op.client_id!r} (clients "
            "stamp their own ops)"
        )
    return None
