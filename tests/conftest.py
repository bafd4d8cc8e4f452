"""Fixtures shared by every test package: Redis, and the Kafka chosen by SYNCPIPE_TEST_KAFKA.

``SYNCPIPE_TEST_KAFKA`` is read once, when pytest starts (a bad value stops the run with a
usage error naming the valid ones); whether that Kafka is available (a Docker engine for
``testcontainers``, a listening address for ``external``) is checked once after collection,
and only when a collected test uses Kafka. See tests/README.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.kafka_modes import MODE_ENV, KafkaMode, KafkaModeError, KafkaUnderTest
from tests.kafka_modes import unique_topic_prefix as _unique_topic_prefix
from tests.redis_server import redis_url

# Fixtures that make a Kafka: a test using any of them (directly or through another
# fixture) needs the selected mode to be available.
KAFKA_FIXTURES = frozenset({"kafka", "stoppable_kafka_factory"})

_MODE = pytest.StashKey[KafkaMode]()


def pytest_configure(config: pytest.Config) -> None:
    try:
        config.stash[_MODE] = KafkaMode.from_env()
    except KafkaModeError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config: pytest.Config) -> str:
    return f"kafka: {config.stash[_MODE]} ({MODE_ENV})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(KAFKA_FIXTURES & set(getattr(item, "fixturenames", ())) for item in items):
        return
    try:
        config.stash[_MODE].check_available()
    except KafkaModeError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def kafka_mode(pytestconfig: pytest.Config) -> KafkaMode:
    return pytestconfig.stash[_MODE]


@pytest.fixture(scope="session")
def kafka(
    kafka_mode: KafkaMode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KafkaUnderTest]:
    """The session's Kafka, shared by every test that does not stop it.

    Shared means shared: write under your own topic prefix (``topic_prefix``) and, for
    consumer groups, derive the group id from it.
    """
    try:
        made = kafka_mode.shared(tmp_path_factory.mktemp("kafka") / "data")
    except KafkaModeError as exc:  # the mode cannot run here: one message, not one per test
        pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
    yield made
    made.close()


@pytest.fixture
def stoppable_kafka_factory(
    kafka_mode: KafkaMode, tmp_path: Path
) -> Iterator[Callable[[], KafkaUnderTest]]:
    """Private Kafkas for tests that stop, kill or restart them (skipped where impossible)."""
    if not kafka_mode.can_stop:
        pytest.skip(kafka_mode.cannot_stop_reason())
    made: list[KafkaUnderTest] = []

    def make() -> KafkaUnderTest:
        kafka = kafka_mode.private(tmp_path / f"kafka-{len(made)}")
        made.append(kafka)
        return kafka

    yield make
    for kafka in reversed(made):
        kafka.close()


@pytest.fixture
def stoppable_kafka(stoppable_kafka_factory: Callable[[], KafkaUnderTest]) -> KafkaUnderTest:
    """A private Kafka the test may stop, kill (-9) and start again on the same address."""
    return stoppable_kafka_factory()


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix unique to one test, so tests sharing a Kafka never see each other."""
    return _unique_topic_prefix()


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Redis server shared by the session."""
    with redis_url(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to one test, so tests sharing the server never collide."""
    return f"test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
