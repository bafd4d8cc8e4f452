"""Plain data types of the LWW core and their JSON shapes (see ``schemas/json/``).

Every type is a frozen, slotted dataclass with ``to_dict()`` (the JSON shape, ready for
``orjson.dumps``) and ``from_dict()`` (which checks the shape and raises
:class:`LwwInputError` naming the bad key). ``from_dict`` checks structure, not the LWW
invariants: an op with empty fields or a malformed hlc parses fine and
:func:`streams.lww.apply` answers it with an ``invalid`` receipt. Mappings held by these
objects are never mutated; treat them as read-only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from schemas.hlc import Hlc, HlcError

Kind = Literal["upsert", "delete"]
Status = Literal["applied", "partial", "stale", "duplicate", "invalid"]
KINDS: tuple[Kind, ...] = ("upsert", "delete")
STATUSES: tuple[Status, ...] = ("applied", "partial", "stale", "duplicate", "invalid")

_T = TypeVar("_T")


class LwwInputError(ValueError):
    """A dict handed to ``from_dict`` does not have the expected JSON shape."""


def _keys(cls: type[Any]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _shallow(obj: Any) -> dict[str, Any]:
    """A dataclass as a dict in field order (the JSON key order), values as they are."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


class _Reader:
    """Typed access to one JSON object, with errors that name the object and the key."""

    def __init__(
        self, what: str, data: object, keys: tuple[str, ...], optional: tuple[str, ...]
    ) -> None:
        if not isinstance(data, Mapping):
            raise LwwInputError(f"{what}: expected a JSON object, got {type(data).__name__}")
        unknown = sorted(str(k) for k in data if k not in keys and k not in optional)
        if unknown:
            raise LwwInputError(f"{what}: unknown keys {unknown}; allowed: {sorted(keys)}")
        missing = [k for k in keys if k not in data and k not in optional]
        if missing:
            raise LwwInputError(f"{what}: missing keys {missing}")
        self.what = what
        self.data: Mapping[str, Any] = data

    def _bad(self, key: str, expected: str) -> LwwInputError:
        return LwwInputError(f"{self.what}: {key!r} must be {expected}, got {self.data[key]!r}")

    def text(self, key: str) -> str:
        value = self.data[key]
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def opt_text(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.text(key)

    def integer(self, key: str, minimum: int = 0) -> int:
        value = self.data[key]
        # bool is an int subclass in Python but not a JSON integer
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._bad(key, f"an integer >= {minimum}")
        return value

    def opt_integer(self, key: str, minimum: int = 0) -> int | None:
        return None if self.data[key] is None else self.integer(key, minimum)

    def flag(self, key: str) -> bool:
        value = self.data[key]
        if not isinstance(value, bool):
            raise self._bad(key, "a boolean")
        return value

    def hlc(self, key: str) -> str:
        value = self.text(key)
        try:
            Hlc.parse(value)
        except HlcError as exc:
            raise LwwInputError(f"{self.what}: {key!r}: {exc}") from exc
        return value

    def opt_hlc(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.hlc(key)

    def obj(self, key: str) -> Mapping[str, Any]:
        value = self.data[key]
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self._bad(key, "a JSON object")
        return value

    def text_list(self, key: str) -> tuple[str, ...]:
        value = self.data[key]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self._bad(key, "a list of strings")
        return tuple(value)

    def choice(self, key: str, allowed: tuple[_T, ...]) -> _T:
        value = self.data[key]
        for option in allowed:
            if isinstance(value, str) and value == option:
                return option
        raise self._bad(key, f"one of {list(allowed)}")


@dataclass(frozen=True, slots=True)
class Register:
    """One LWW field: its value and the write that set it."""

    value: Any
    hlc: str
    client_id: str
    op_id: str

    def to_dict(self) -> dict[str, Any]:
        return _shallow(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], what: str = "register") -> Register:
        r = _Reader(what, data, _keys(cls), ())
        return cls(r.data["value"], r.hlc("hlc"), r.text("client_id"), r.text("op_id"))


_STATE_KEYS = (
    "tenant",
    "collection",
    "entity_id",
    "version",
    "fields",
    "deleted_hlc",
    "deleted_by",
    "deleted_op_id",
    "deleted",
    "last_op_id",
    "received_at_ms",
)


@dataclass(frozen=True, slots=True)
class EntityRecord:
    """An entity as stored in the streams table: the public state plus dedupe bookkeeping.

    ``applied_op_ids`` holds the op ids of the last ``DEDUPE_WINDOW`` applied, partial or
    stale ops, most recent last.
    """

    tenant: str
    collection: str
    entity_id: str
    version: int
    fields: Mapping[str, Register]
    deleted_hlc: str | None
    deleted_by: str | None
    deleted_op_id: str | None
    last_op_id: str
    received_at_ms: int
    applied_op_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        deletion = (self.deleted_hlc, self.deleted_by, self.deleted_op_id)
        if any(v is None for v in deletion) and any(v is not None for v in deletion):
            raise LwwInputError(
                f"entity {self.entity_id!r}: deleted_hlc, deleted_by and deleted_op_id "
                f"must be all set or all null, got {deletion}"
            )

    @property
    def deleted(self) -> bool:
        """True iff a delete won and no newer field re-created the entity."""
        return self.deleted_hlc is not None and not self.fields

    def to_dict(self) -> dict[str, Any]:
        """The EntityRecord JSON (EntityState plus ``applied_op_ids``)."""
        return {
            "tenant": self.tenant,
            "collection": self.collection,
            "entity_id": self.entity_id,
            "version": self.version,
            "fields": {name: reg.to_dict() for name, reg in sorted(self.fields.items())},
            "deleted_hlc": self.deleted_hlc,
            "deleted_by": self.deleted_by,
            "deleted_op_id": self.deleted_op_id,
            "deleted": self.deleted,
            "last_op_id": self.last_op_id,
            "received_at_ms": self.received_at_ms,
            "applied_op_ids": list(self.applied_op_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EntityRecord:
        """Parse EntityRecord JSON; EntityState JSON (no ``applied_op_ids``) is accepted too."""
        r = _Reader("entity record", data, _STATE_KEYS, ("applied_op_ids",))
        fields = {
            name: Register.from_dict(reg, f"entity record field {name!r}")
            for name, reg in r.obj("fields").items()
        }
        record = cls(
            tenant=r.text("tenant"),
            collection=r.text("collection"),
            entity_id=r.text("entity_id"),
            version=r.integer("version", minimum=1),
            fields=fields,
            deleted_hlc=r.opt_hlc("deleted_hlc"),
            deleted_by=r.opt_text("deleted_by"),
            deleted_op_id=r.opt_text("deleted_op_id"),
            last_op_id=r.text("last_op_id"),
            received_at_ms=r.integer("received_at_ms"),
            applied_op_ids=r.text_list("applied_op_ids") if "applied_op_ids" in data else (),
        )
        if r.flag("deleted") != record.deleted:
            raise LwwInputError(
                f"entity record: 'deleted' is {data['deleted']!r} but must be {record.deleted} "
                "(true iff deleted_hlc is set and no fields remain)"
            )
        return record


@dataclass(frozen=True, slots=True)
class Op:
    """An op record as on the ``ops`` topic. ``fields`` is None for a delete."""

    op_id: str
    client_id: str
    collection: str
    entity_id: str
    kind: Kind
    fields: Mapping[str, Any] | None
    hlc: str
    tenant: str
    user_id: str
    received_at_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {**_shallow(self), "fields": None if self.fields is None else dict(self.fields)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Op:
        """Parse an op record; ``fields`` may be absent (same as null)."""
        r = _Reader("op", data, _keys(cls), ("fields",))
        return cls(
            op_id=r.text("op_id"),
            client_id=r.text("client_id"),
            collection=r.text("collection"),
            entity_id=r.text("entity_id"),
            kind=r.choice("kind", KINDS),
            fields=None if data.get("fields") is None else r.obj("fields"),
            hlc=r.text("hlc"),
            tenant=r.text("tenant"),
            user_id=r.text("user_id"),
            received_at_ms=r.integer("received_at_ms"),
        )


@dataclass(frozen=True, slots=True)
class Receipt:
    """The outcome of one op."""

    op_id: str
    tenant: str
    client_id: str
    user_id: str
    collection: str
    entity_id: str
    kind: Kind
    hlc: str
    status: Status
    version: int | None
    lost_fields: tuple[str, ...]
    reason: str | None
    received_at_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {**_shallow(self), "lost_fields": list(self.lost_fields)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Receipt:
        r = _Reader("receipt", data, _keys(cls), ())
        return cls(
            op_id=r.text("op_id"),
            tenant=r.text("tenant"),
            client_id=r.text("client_id"),
            user_id=r.text("user_id"),
            collection=r.text("collection"),
            entity_id=r.text("entity_id"),
            kind=r.choice("kind", KINDS),
            hlc=r.text("hlc"),
            status=r.choice("status", STATUSES),
            version=r.opt_integer("version", minimum=1),
            lost_fields=r.text_list("lost_fields"),
            reason=r.opt_text("reason"),
            received_at_ms=r.integer("received_at_ms"),
        )


@dataclass(frozen=True, slots=True)
class ConflictYours:
    """What the losing op wrote for one field (``deleted`` when it was a delete)."""

    value: Any
    hlc: str
    deleted: bool

    def to_dict(self) -> dict[str, Any]:
        return _shallow(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], what: str = "conflict yours") -> ConflictYours:
        r = _Reader(what, data, _keys(cls), ())
        return cls(r.data["value"], r.hlc("hlc"), r.flag("deleted"))


@dataclass(frozen=True, slots=True)
class ConflictWinner:
    """The write that beat it (``deleted`` when it was a delete; value is then null)."""

    value: Any
    hlc: str
    client_id: str
    op_id: str
    deleted: bool

    def to_dict(self) -> dict[str, Any]:
        return _shallow(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], what: str = "conflict winner") -> ConflictWinner:
        r = _Reader(what, data, _keys(cls), ())
        return cls(
            r.data["value"], r.hlc("hlc"), r.text("client_id"), r.text("op_id"), r.flag("deleted")
        )


@dataclass(frozen=True, slots=True)
class ConflictField:
    """One field of a conflict: what the op wrote and what beat it."""

    yours: ConflictYours
    winner: ConflictWinner

    def to_dict(self) -> dict[str, Any]:
        return {"yours": self.yours.to_dict(), "winner": self.winner.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], what: str = "conflict field") -> ConflictField:
        r = _Reader(what, data, _keys(cls), ())
        return cls(
            ConflictYours.from_dict(r.obj("yours"), f"{what} yours"),
            ConflictWinner.from_dict(r.obj("winner"), f"{what} winner"),
        )


@dataclass(frozen=True, slots=True)
class Conflict:
    """An op that lost, wholly or for some fields, to a write from another client."""

    op_id: str
    tenant: str
    client_id: str
    user_id: str
    collection: str
    entity_id: str
    kind: Kind
    hlc: str
    version: int
    received_at_ms: int
    fields: Mapping[str, ConflictField]

    def to_dict(self) -> dict[str, Any]:
        fields = {name: f.to_dict() for name, f in sorted(self.fields.items())}
        return {**_shallow(self), "fields": fields}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Conflict:
        r = _Reader("conflict", data, _keys(cls), ())
        fields = {
            name: ConflictField.from_dict(f, f"conflict field {name!r}")
            for name, f in r.obj("fields").items()
        }
        if not fields:
            raise LwwInputError("conflict: 'fields' must name at least one field")
        return cls(
            op_id=r.text("op_id"),
            tenant=r.text("tenant"),
            client_id=r.text("client_id"),
            user_id=r.text("user_id"),
            collection=r.text("collection"),
            entity_id=r.text("entity_id"),
            kind=r.choice("kind", KINDS),
            hlc=r.hlc("hlc"),
            version=r.integer("version", minimum=1),
            received_at_ms=r.integer("received_at_ms"),
            fields=fields,
        )


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What :func:`streams.lww.apply` returns.

    ``record`` is the entity after the op (None only for an invalid op on a missing entity);
    ``changed`` is True iff the content (fields or deletion) changed.
    """

    record: EntityRecord | None
    receipt: Receipt
    conflict: Conflict | None
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "record": None if self.record is None else self.record.to_dict(),
            "receipt": self.receipt.to_dict(),
            "conflict": None if self.conflict is None else self.conflict.to_dict(),
            "changed": self.changed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApplyResult:
        r = _Reader("apply result", data, _keys(cls), ())
        return cls(
            record=None if data["record"] is None else EntityRecord.from_dict(r.obj("record")),
            receipt=Receipt.from_dict(r.obj("receipt")),
            conflict=None if data["conflict"] is None else Conflict.from_dict(r.obj("conflict")),
            changed=r.flag("changed"),
        )
