"""Parsing and serializing push protocol frames with the generated models.

The unions of client and server messages come from the generated ``PushProtocol``
model (its ``client`` and ``server`` fields), so they follow the schema without being
listed again here.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import BaseModel, Field, TypeAdapter

from schemas.generated.push_schema import PushProtocol

PROTOCOL_VERSION = 1


def _union_adapter(field: str) -> TypeAdapter[Any]:
    info = PushProtocol.model_fields[field]
    union: Any = Annotated[info.annotation, Field(discriminator=info.discriminator)]
    return TypeAdapter(union)


CLIENT_MESSAGE = _union_adapter("client")
"""Validates one client frame (subscribe, unsubscribe, ping), discriminated by ``type``."""

SERVER_MESSAGE = _union_adapter("server")
"""Validates one server frame (hello … batch), discriminated by ``type``."""


def parse_client_frame(data: str | bytes) -> BaseModel:
    """Validate one client frame; raises ``pydantic.ValidationError`` when it is not one.

    The result is a ``SubscribeMessage``, ``UnsubscribeMessage`` or ``PingMessage``.
    """
    message: BaseModel = CLIENT_MESSAGE.validate_json(data)
    return message


def dump_frame(message: BaseModel) -> bytes:
    """Serialize a message model to a compact JSON frame."""
    return orjson.dumps(message.model_dump(mode="json"))
