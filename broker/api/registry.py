"""The API handler registry: one module per API key registers itself here.

Registering a key twice raises at import, so two modules can never both claim a key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from broker.codec.headers import RequestHeader
from broker.codec.primitives import Reader

if TYPE_CHECKING:
    from broker.state import BrokerState


@dataclass(frozen=True, slots=True)
class RequestContext:
    state: BrokerState
    header: RequestHeader
    client_host: str

    @property
    def version(self) -> int:
        return self.header.api_version

    @property
    def client_id(self) -> str:
        return self.header.client_id or ""


HandlerFn = Callable[[RequestContext, Reader], Awaitable[bytes | None]]


@dataclass(frozen=True, slots=True)
class Api:
    key: int
    name: str
    min_version: int
    max_version: int
    fn: HandlerFn
    any_version: bool  # called even for versions outside the range (ApiVersions, KIP-511)

    def serves(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version


HANDLERS: dict[int, Api] = {}


class DuplicateHandlerError(RuntimeError):
    pass


def handler(
    *, api_key: int, versions: tuple[int, int], any_version: bool = False
) -> Callable[[HandlerFn], HandlerFn]:
    """Register ``fn`` as the handler of ``api_key`` for ``versions`` (inclusive)."""

    def register(fn: HandlerFn) -> HandlerFn:
        if api_key in HANDLERS:
            raise DuplicateHandlerError(
                f"api key {api_key} registered twice: {HANDLERS[api_key].fn.__module__} "
                f"and {fn.__module__}"
            )
        name = fn.__module__.rsplit(".", 1)[-1].split("_", 1)[-1]
        HANDLERS[api_key] = Api(api_key, name, versions[0], versions[1], fn, any_version)
        return fn

    return register
