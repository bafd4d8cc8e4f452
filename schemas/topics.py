"""Topic names and record keys: part of the data contract.

Every topic name is ``{prefix}{name}`` with a configurable prefix (default ``syncpipe.``),
so a shadow replay can write a whole second set of topics beside the live one.
Ops, entities and conflicts are keyed ``{tenant}/{collection}/{entity_id}`` so one entity
always lands on one partition and is processed in order; receipts are keyed
``{tenant}/{client_id}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

DEFAULT_PREFIX: Final = "syncpipe."

_PREFIX_RE: Final = re.compile(r"^[A-Za-z0-9._-]{0,200}$")
_KEY_SEP: Final = "/"


class TopicError(ValueError):
    """A topic prefix or record key is malformed."""


@dataclass(frozen=True, slots=True)
class Topics:
    """The names of syncpipe's topics under one prefix."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not _PREFIX_RE.match(self.prefix):
            raise TopicError(
                f"invalid topic prefix {self.prefix!r}: use up to 200 of A-Z a-z 0-9 . _ -"
            )

    @property
    def ops(self) -> str:
        return f"{self.prefix}ops"

    @property
    def entities(self) -> str:
        """Accepted entity state; ``cleanup.policy=compact``."""
        return f"{self.prefix}entities"

    @property
    def conflicts(self) -> str:
        return f"{self.prefix}conflicts"

    @property
    def receipts(self) -> str:
        return f"{self.prefix}receipts"

    @property
    def ops_dlq(self) -> str:
        return f"{self.prefix}ops.dlq"

    def all(self) -> tuple[str, ...]:
        return (self.ops, self.entities, self.conflicts, self.receipts, self.ops_dlq)

    def is_compacted(self, topic: str) -> bool:
        return topic == self.entities


@dataclass(frozen=True, slots=True)
class EntityKey:
    """The parts of an entity key ``{tenant}/{collection}/{entity_id}``."""

    tenant: str
    collection: str
    entity_id: str

    def __str__(self) -> str:
        return entity_key(self.tenant, self.collection, self.entity_id)


def entity_key(tenant: str, collection: str, entity_id: str) -> str:
    """Key for ops, entities and conflicts records.

    Tenant and collection never contain ``/`` (their patterns forbid it); the entity id
    may, so it is always the last part and parsing splits at most twice.
    """
    if not tenant or _KEY_SEP in tenant:
        raise TopicError(f"invalid tenant {tenant!r} for a record key: must be non-empty, no '/'")
    if not collection or _KEY_SEP in collection:
        raise TopicError(
            f"invalid collection {collection!r} for a record key: must be non-empty, no '/'"
        )
    if not entity_id:
        raise TopicError("invalid entity id for a record key: must be non-empty")
    return f"{tenant}{_KEY_SEP}{collection}{_KEY_SEP}{entity_id}"


def parse_entity_key(key: str) -> EntityKey:
    """Inverse of :func:`entity_key`."""
    parts = key.split(_KEY_SEP, 2)
    if len(parts) != 3 or not all(parts):
        raise TopicError(
            f"invalid entity key {key!r}: expected '{{tenant}}/{{collection}}/{{entity_id}}'"
        )
    return EntityKey(parts[0], parts[1], parts[2])


def receipt_key(tenant: str, client_id: str) -> str:
    """Key for receipts records: ``{tenant}/{client_id}``."""
    if not tenant or _KEY_SEP in tenant:
        raise TopicError(f"invalid tenant {tenant!r} for a record key: must be non-empty, no '/'")
    if not client_id or _KEY_SEP in client_id:
        raise TopicError(
            f"invalid client id {client_id!r} for a record key: must be non-empty, no '/'"
        )
    return f"{tenant}{_KEY_SEP}{client_id}"
