"""Parsing and serializing push protocol frames with the generated models."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import Field, TypeAdapter

from schemas.generated.push_schema import (
    BatchMessage,
    ConflictMessage,
    DisconnectNoticeMessage,
    EntityMessage,
    ErrorMessage,
    HelloMessage,
    PingMessage,
    PongMessage,
    ReceiptMessage,
    SnapshotMessage,
    SubscribeMessage,
    UnsubscribeMessage,
)

PROTOCOL_VERSION = 1

ClientMessage = Annotated[
    SubscribeMessage | UnsubscribeMessage | PingMessage, Field(discriminator="type")
]
ServerMessage = Annotated[
    HelloMessage
    | SnapshotMessage
    | EntityMessage
    | ConflictMessage
    | ReceiptMessage
    | DisconnectNoticeMessage
    | ErrorMessage
    | PongMessage
    | BatchMessage,
    Field(discriminator="type"),
]

CLIENT_MESSAGE: TypeAdapter[SubscribeMessage | UnsubscribeMessage | PingMessage] = TypeAdapter(
    ClientMessage
)
SERVER_MESSAGE: TypeAdapter[
    HelloMessage
    | SnapshotMessage
    | EntityMessage
    | ConflictMessage
    | ReceiptMessage
    | DisconnectNoticeMessage
    | ErrorMessage
    | PongMessage
    | BatchMessage
] = TypeAdapter(ServerMessage)


def parse_client_frame(data: str | bytes) -> SubscribeMessage | UnsubscribeMessage | PingMessage:
    """Validate one client frame; raises ``pydantic.ValidationError`` or ``ValueError``."""
    return CLIENT_MESSAGE.validate_json(data)


def dump_frame(message: Any) -> bytes:
    """Serialize a server or client message model to a compact JSON frame."""
    return orjson.dumps(message.model_dump(mode="json", exclude_none=False))
