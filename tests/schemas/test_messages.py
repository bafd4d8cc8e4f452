import orjson
import pytest
from pydantic import ValidationError

from schemas.generated.push_schema import (
    BatchMessage,
    ErrorMessage,
    PingMessage,
    PongMessage,
    SubscribeMessage,
)
from schemas.messages import SERVER_MESSAGE, dump_frame, parse_client_frame


def test_subscribe_frame_parses_with_and_without_cursor() -> None:
    msg = parse_client_frame(b'{"type": "subscribe", "collection": "tasks"}')
    assert isinstance(msg, SubscribeMessage)
    assert msg.cursor is None
    msg = parse_client_frame('{"type": "subscribe", "collection": "tasks", "cursor": "c-9"}')
    assert isinstance(msg, SubscribeMessage)
    assert msg.cursor == "c-9"


@pytest.mark.parametrize(
    "frame",
    [
        b"not json",
        b'{"type": "shout"}',
        b'{"collection": "tasks"}',
        b'{"type": "subscribe", "collection": "Bad Name"}',
        b'{"type": "pong"}',
        b'{"type": "ping", "extra": 1}',
    ],
    ids=["not-json", "unknown-type", "no-type", "bad-collection", "server-type", "extra-field"],
)
def test_bad_client_frames_are_rejected(frame: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_client_frame(frame)


def test_batch_round_trips_and_keeps_order() -> None:
    batch = BatchMessage(messages=[PongMessage(), ErrorMessage(code="x", message="y")])
    frame = dump_frame(batch)
    assert orjson.loads(frame)["messages"][0] == {"type": "pong"}
    parsed = SERVER_MESSAGE.validate_json(frame)
    assert isinstance(parsed, BatchMessage)
    assert [m.type for m in parsed.messages] == ["pong", "error"]


def test_batches_do_not_nest() -> None:
    inner = {"type": "batch", "messages": [{"type": "pong"}]}
    with pytest.raises(ValidationError):
        SERVER_MESSAGE.validate_python({"type": "batch", "messages": [inner]})


def test_literal_type_is_defaulted_when_constructing() -> None:
    assert orjson.loads(dump_frame(PingMessage())) == {"type": "ping"}
