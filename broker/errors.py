"""Kafka error codes as data: one table of (name, code, retriable).

Handlers put ``ErrorCode`` values in responses; they never raise for a Kafka-level error.
Python exceptions (:class:`BrokerError` and subclasses) are for our own failures.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KafkaError:
    name: str
    code: int
    retriable: bool


_TABLE: tuple[KafkaError, ...] = (
    KafkaError("UNKNOWN_SERVER_ERROR", -1, False),
    KafkaError("NONE", 0, False),
    KafkaError("OFFSET_OUT_OF_RANGE", 1, False),
    KafkaError("CORRUPT_MESSAGE", 2, True),
    KafkaError("UNKNOWN_TOPIC_OR_PARTITION", 3, True),
    KafkaError("INVALID_FETCH_SIZE", 4, False),
    KafkaError("LEADER_NOT_AVAILABLE", 5, True),
    KafkaError("NOT_LEADER_OR_FOLLOWER", 6, True),
    KafkaError("REQUEST_TIMED_OUT", 7, True),
    KafkaError("MESSAGE_TOO_LARGE", 10, False),
    KafkaError("COORDINATOR_LOAD_IN_PROGRESS", 14, True),
    KafkaError("COORDINATOR_NOT_AVAILABLE", 15, True),
    KafkaError("NOT_COORDINATOR", 16, True),
    KafkaError("INVALID_TOPIC_EXCEPTION", 17, False),
    KafkaError("RECORD_LIST_TOO_LARGE", 18, False),
    KafkaError("INVALID_REQUIRED_ACKS", 21, False),
    KafkaError("ILLEGAL_GENERATION", 22, False),
    KafkaError("INCONSISTENT_GROUP_PROTOCOL", 23, False),
    KafkaError("INVALID_GROUP_ID", 24, False),
    KafkaError("UNKNOWN_MEMBER_ID", 25, False),
    KafkaError("INVALID_SESSION_TIMEOUT", 26, False),
    KafkaError("REBALANCE_IN_PROGRESS", 27, False),
    KafkaError("INVALID_COMMIT_OFFSET_SIZE", 28, False),
    KafkaError("TOPIC_AUTHORIZATION_FAILED", 29, False),
    KafkaError("GROUP_AUTHORIZATION_FAILED", 30, False),
    KafkaError("UNSUPPORTED_VERSION", 35, False),
    KafkaError("TOPIC_ALREADY_EXISTS", 36, False),
    KafkaError("INVALID_PARTITIONS", 37, False),
    KafkaError("INVALID_REPLICATION_FACTOR", 38, False),
    KafkaError("INVALID_REQUEST", 42, False),
    KafkaError("UNSUPPORTED_FOR_MESSAGE_FORMAT", 43, False),
    KafkaError("OUT_OF_ORDER_SEQUENCE_NUMBER", 45, False),
    KafkaError("DUPLICATE_SEQUENCE_NUMBER", 46, False),
    KafkaError("INVALID_PRODUCER_EPOCH", 47, False),
    KafkaError("INVALID_TXN_STATE", 48, False),
    KafkaError("TRANSACTIONAL_ID_AUTHORIZATION_FAILED", 53, False),
    KafkaError("INVALID_CONFIG", 40, False),
    KafkaError("UNKNOWN_PRODUCER_ID", 59, False),
    KafkaError("NON_EMPTY_GROUP", 68, False),
    KafkaError("GROUP_ID_NOT_FOUND", 69, False),
    KafkaError("FENCED_LEADER_EPOCH", 74, True),
    KafkaError("UNKNOWN_LEADER_EPOCH", 75, True),
    KafkaError("MEMBER_ID_REQUIRED", 79, False),
    KafkaError("GROUP_MAX_SIZE_REACHED", 81, False),
    KafkaError("INVALID_RECORD", 87, False),
)

BY_NAME: dict[str, KafkaError] = {e.name: e for e in _TABLE}
BY_CODE: dict[int, KafkaError] = {e.code: e for e in _TABLE}


def code(name: str) -> int:
    """The numeric code of a Kafka error, by name (KeyError on a typo, at first use)."""
    return BY_NAME[name].code


NONE = code("NONE")
UNKNOWN_SERVER_ERROR = code("UNKNOWN_SERVER_ERROR")
OFFSET_OUT_OF_RANGE = code("OFFSET_OUT_OF_RANGE")
CORRUPT_MESSAGE = code("CORRUPT_MESSAGE")
UNKNOWN_TOPIC_OR_PARTITION = code("UNKNOWN_TOPIC_OR_PARTITION")
MESSAGE_TOO_LARGE = code("MESSAGE_TOO_LARGE")
COORDINATOR_NOT_AVAILABLE = code("COORDINATOR_NOT_AVAILABLE")
INVALID_TOPIC_EXCEPTION = code("INVALID_TOPIC_EXCEPTION")
INVALID_REQUIRED_ACKS = code("INVALID_REQUIRED_ACKS")
ILLEGAL_GENERATION = code("ILLEGAL_GENERATION")
INCONSISTENT_GROUP_PROTOCOL = code("INCONSISTENT_GROUP_PROTOCOL")
INVALID_GROUP_ID = code("INVALID_GROUP_ID")
UNKNOWN_MEMBER_ID = code("UNKNOWN_MEMBER_ID")
INVALID_SESSION_TIMEOUT = code("INVALID_SESSION_TIMEOUT")
REBALANCE_IN_PROGRESS = code("REBALANCE_IN_PROGRESS")
UNSUPPORTED_VERSION = code("UNSUPPORTED_VERSION")
TOPIC_ALREADY_EXISTS = code("TOPIC_ALREADY_EXISTS")
INVALID_PARTITIONS = code("INVALID_PARTITIONS")
INVALID_REPLICATION_FACTOR = code("INVALID_REPLICATION_FACTOR")
INVALID_REQUEST = code("INVALID_REQUEST")
INVALID_CONFIG = code("INVALID_CONFIG")
UNSUPPORTED_FOR_MESSAGE_FORMAT = code("UNSUPPORTED_FOR_MESSAGE_FORMAT")
OUT_OF_ORDER_SEQUENCE_NUMBER = code("OUT_OF_ORDER_SEQUENCE_NUMBER")
INVALID_PRODUCER_EPOCH = code("INVALID_PRODUCER_EPOCH")
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = code("TRANSACTIONAL_ID_AUTHORIZATION_FAILED")
NON_EMPTY_GROUP = code("NON_EMPTY_GROUP")
GROUP_ID_NOT_FOUND = code("GROUP_ID_NOT_FOUND")
MEMBER_ID_REQUIRED = code("MEMBER_ID_REQUIRED")
INVALID_RECORD = code("INVALID_RECORD")


class BrokerError(Exception):
    """Root of the broker's own failures (not Kafka protocol errors, which are data)."""

    retriable = False


class DecodeError(BrokerError):
    """A request frame does not parse; the connection that sent it is closed."""


class StartupError(BrokerError):
    """The broker cannot start (port in use, data dir not writable); the message says why."""


class StorageError(BrokerError):
    """The log on disk is unusable in a way recovery cannot repair."""
