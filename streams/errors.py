"""Streams errors: one root exception; subclasses say whether retrying may help.

Third-party exceptions (aiokafka, redis) are translated where they enter our code.
"""

from __future__ import annotations


class StreamsError(Exception):
    """Root of every error streams raises on purpose."""

    retriable: bool = False


class BrokerUnavailableError(StreamsError):
    """Kafka did not answer in time; start again when the broker is reachable."""

    retriable = True


class TopicSetupError(StreamsError):
    """A topic is missing or misconfigured and could not be fixed automatically."""


class ReplayError(StreamsError):
    """A replay cannot run as asked; the message says what to change."""


class WorkersRunningError(ReplayError):
    """The streams consumer group has live members; stop the workers first."""

    retriable = True
