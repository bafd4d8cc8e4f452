"""Per-op checks of ingest/validate.py: each op judged alone, messages name the field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.errors import OpRejection
from ingest.validate import Rejected, check_op, op_label, result_op_id
from schemas.generated.op_schema import Op
from schemas.hlc import NODE_PATTERN, Hlc
from schemas.limits import MAX_OP_BYTES
from tests.ingest.helpers import make_op

NOW = 1_700_000_000_000
SKEW = 60_000


def check(raw: Any) -> Op | Rejected:
    return check_op(raw, 3, now_ms=NOW, max_clock_skew_ms=SKEW)


def op(**changes: Any) -> dict[str, Any]:
    base = make_op("7f3a9c21-0000-4000-8000-000000000001", client_id="phone-1", wall_ms=NOW)
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        ([1, 2], OpRejection.INVALID_OP, "expected a JSON object, got list"),
        (op(op_id=None), OpRejection.INVALID_OP, "field 'op_id': Field required"),
        (op(collection="Tasks"), OpRejection.INVALID_OP, "field 'collection'"),
        (op(kind="merge"), OpRejection.INVALID_OP, "field 'kind'"),
        (op(tenant="other"), OpRejection.INVALID_OP, "field 'tenant': Extra inputs"),
        (op(fields={"bad name": 1}), OpRejection.INVALID_OP, "field 'fields.bad name"),
        (op(fields={}), OpRejection.INVALID_OP, "field 'fields'"),
        (op(fields=None), OpRejection.INVALID_OP, "field 'fields': an upsert needs 1-64"),
        (op(kind="delete"), OpRejection.INVALID_OP, "a delete carries no fields"),
        (op(hlc=f"{NOW:015d}-0000-laptop"), OpRejection.INVALID_OP, "must equal client_id"),
        (op(hlc="yesterday"), OpRejection.INVALID_OP, "field 'hlc'"),
        (
            op(fields={"blob": "x" * MAX_OP_BYTES}),
            OpRejection.OP_TOO_LARGE,
            f"over the limit of {MAX_OP_BYTES} bytes",
        ),
        (
            op(hlc=f"{NOW + 93_000:015d}-0000-phone-1"),
            OpRejection.CLOCK_SKEW,
            "hlc is 93 s ahead of server time (limit 60 s); adopt server_hlc and retry",
        ),
    ],
    ids=[
        "not-an-object",
        "missing-op-id",
        "bad-collection",
        "unknown-kind",
        "tenant-in-body",
        "bad-field-name",
        "empty-fields",
        "upsert-without-fields",
        "delete-with-fields",
        "hlc-node-not-client",
        "malformed-hlc",
        "op-over-64KiB",
        "hlc-ahead",
    ],
)
def test_check_op_rejects_with_code_and_message_naming_the_problem(
    raw: Any, code: OpRejection, fragment: str
) -> None:
    result = check(raw)
    assert isinstance(result, Rejected)
    assert result.code is code
    assert fragment in result.message
    assert result.message.startswith(f"op {op_label(raw, 3)} rejected: ")


@pytest.mark.parametrize(
    "raw",
    [
        op(),
        op(kind="delete", fields=None),
        op(hlc=f"{NOW + SKEW:015d}-0000-phone-1"),  # exactly at the limit
        op(hlc=f"{NOW - 3 * 86_400_000:015d}-0000-phone-1"),  # authored offline days ago
        op(fields={f"f{i}": {"nested": [i, None, "x"]} for i in range(64)}),
    ],
    ids=["upsert", "delete", "skew-at-limit", "old-offline-op", "64-fields"],
)
def test_check_op_accepts_valid_ops(raw: Any) -> None:
    assert isinstance(check(raw), Op)


def test_skew_message_shortens_long_op_ids() -> None:
    result = check(op(hlc=f"{NOW + 93_400:015d}-0000-phone-1"))
    assert isinstance(result, Rejected)
    assert result.message.startswith("op 7f3a9c21… rejected: hlc is 93 s ahead")


def test_result_op_id_echoes_only_strings() -> None:
    assert result_op_id({"op_id": "a1"}) == "a1"
    assert result_op_id({"op_id": 5}) == ""
    assert result_op_id("x" * 10) == ""
    assert result_op_id({"op_id": "y" * 500}) == "y" * 128


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
OP_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "op_id": st.text(max_size=5) | JSON,
        "client_id": st.sampled_from(["phone-1", "", "a b"]) | JSON,
        "collection": st.sampled_from(["tasks", "X"]) | JSON,
        "entity_id": st.text(max_size=3) | JSON,
        "kind": st.sampled_from(["upsert", "delete", "nope"]),
        "fields": st.dictionaries(st.text(max_size=4), JSON, max_size=3) | JSON,
        "hlc": st.sampled_from([f"{NOW:015d}-0000-phone-1", "x"]) | JSON,
    },
)


@given(JSON | OP_LIKE)
def test_check_op_never_raises_on_any_json(raw: Any) -> None:
    assert isinstance(check(raw), Op | Rejected)


@given(
    wall=st.integers(0, 10**15 - 1),
    counter=st.integers(0, 0xFFFF),
    node=st.from_regex(NODE_PATTERN, fullmatch=True),
    other=st.from_regex(NODE_PATTERN, fullmatch=True),
)
def test_hlc_wall_time_and_node_are_read_as_hlc_parse_reads_them(
    wall: int, counter: int, node: str, other: str
) -> None:
    stamp = Hlc(wall, counter, node).format()
    raw = op(client_id=node, hlc=stamp)
    assert isinstance(check_op(raw, 0, now_ms=wall, max_clock_skew_ms=0), Op)
    ahead = check_op(raw, 0, now_ms=wall - 1, max_clock_skew_ms=0)
    assert isinstance(ahead, Rejected)
    assert ahead.code is OpRejection.CLOCK_SKEW
    if other != node:
        foreign = check_op(op(client_id=other, hlc=stamp), 0, now_ms=wall, max_clock_skew_ms=0)
        assert isinstance(foreign, Rejected)
        assert f"node {Hlc.parse(stamp).node!r} must equal client_id" in foreign.message
