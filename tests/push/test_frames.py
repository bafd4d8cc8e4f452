"""push/frames.py: every hot-path frame validates against the push schema models."""

from __future__ import annotations

import orjson
import pytest

from push import frames
from push.app import hello_limits
from push.settings import PushSettings
from schemas.generated.push_schema import (
    ConflictMessage,
    DisconnectNoticeMessage,
    EntityMessage,
    ErrorMessage,
    HelloMessage,
    PongMessage,
    ReceiptMessage,
    SnapshotMessage,
)
from schemas.hlc import HlcClock
from schemas.messages import PROTOCOL_VERSION, SERVER_MESSAGE
from tests.push.records import conflict, receipt, state

CASES = {
    "entity": (frames.entity(state("e1"), "v1:0=1"), EntityMessage),
    "conflict": (frames.conflict(conflict("op-1")), ConflictMessage),
    "receipt": (frames.receipt(receipt("op-1")), ReceiptMessage),
    "snapshot": (
        frames.snapshot("tasks", [state("e1"), state("e2", 3)], "v1:0=9", resumed=False),
        SnapshotMessage,
    ),
    "snapshot-empty": (frames.snapshot("tasks", [], "v1:", resumed=True), SnapshotMessage),
    "hello": (
        frames.hello("1.2.3", HlcClock("push").now().format(), hello_limits(PushSettings())),
        HelloMessage,
    ),
    "error": (frames.error("bad_json", "frame is not JSON"), ErrorMessage),
    "pong": (frames.PONG, PongMessage),
    "notice": (frames.disconnect_notice("overload", 2000, "v1:0=3"), DisconnectNoticeMessage),
    "notice-no-cursor": (frames.disconnect_notice("overload", 0, None), DisconnectNoticeMessage),
}


@pytest.mark.parametrize(("frame", "model"), CASES.values(), ids=CASES.keys())
def test_frame_validates_against_schema(frame: bytes, model: type) -> None:
    assert isinstance(SERVER_MESSAGE.validate_json(frame), model)


def test_entity_frame_embeds_the_record_json_unchanged() -> None:
    raw = state("e1", 4)
    assert orjson.loads(frames.entity(raw, "v1:0=1"))["state"] == orjson.loads(raw)


def test_hello_carries_protocol_and_limits() -> None:
    settings = PushSettings(max_bps=1234)
    msg = SERVER_MESSAGE.validate_json(
        frames.hello("9", HlcClock("push").now().format(), hello_limits(settings))
    )
    assert isinstance(msg, HelloMessage)
    assert msg.protocol == PROTOCOL_VERSION
    assert msg.limits.max_bps == 1234
