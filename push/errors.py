"""Exceptions of the push service: one root, each subclass says whether retrying helps.

Third-party exceptions (redis, aiokafka) are translated where they enter push code.
Protocol-level rejections are not exceptions: they are ``error`` frames and close codes
from :mod:`push.close_codes`.
"""

from __future__ import annotations


class PushError(Exception):
    """Root of every push service error."""

    retriable: bool = False


class SnapshotUnavailableError(PushError):
    """The Redis read model could not be read; the client may retry subscribe."""

    retriable = True


class SourceUnavailableError(PushError):
    """The log (Kafka) is unreachable or its topics are missing; the source keeps retrying."""

    retriable = True


class CursorError(PushError, ValueError):
    """A resume cursor is malformed; the subscription falls back to a full snapshot."""
