"""SYNCPIPE_TEST_KAFKA: parsing, the Kafka it gives, and how a mode that cannot run says so.

The session-level failures are checked for real: pytest runs in a subprocess with the
variables set, against a Docker socket that does not exist, an address nothing listens
on, or an embedded broker this test starts by hand as the ``external`` Kafka.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from tests.kafka_modes import (
    DEFAULT_IMAGE,
    EmbeddedKafka,
    KafkaMode,
    KafkaModeError,
    KafkaUnderTest,
)
from tests.processes import REPO, free_port, port_open

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, KafkaMode("embedded")),
        ({"SYNCPIPE_TEST_KAFKA": ""}, KafkaMode("embedded")),
        ({"SYNCPIPE_TEST_KAFKA": "embedded"}, KafkaMode("embedded")),
        ({"SYNCPIPE_TEST_KAFKA": " TestContainers "}, KafkaMode("testcontainers")),
        (
            {"SYNCPIPE_TEST_KAFKA": "testcontainers", "SYNCPIPE_TEST_KAFKA_IMAGE": "cp:7.7.1"},
            KafkaMode("testcontainers", image="cp:7.7.1"),
        ),
        (
            {"SYNCPIPE_TEST_KAFKA": "external", "SYNCPIPE_TEST_KAFKA_BOOTSTRAP": "k1:9092,k2:9093"},
            KafkaMode("external", bootstrap="k1:9092,k2:9093"),
        ),
    ],
    ids=["unset", "empty", "embedded", "testcontainers", "image", "external"],
)
def test_mode_is_read_from_the_environment(env: dict[str, str], expected: KafkaMode) -> None:
    assert KafkaMode.from_env(env) == expected
    assert expected.image == env.get("SYNCPIPE_TEST_KAFKA_IMAGE", DEFAULT_IMAGE)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SYNCPIPE_TEST_KAFKA": "kraft"},
            "SYNCPIPE_TEST_KAFKA='kraft' is not a Kafka mode; use one of: embedded, "
            "testcontainers, external (default: embedded)",
        ),
        (
            {"SYNCPIPE_TEST_KAFKA": "external"},
            "SYNCPIPE_TEST_KAFKA=external needs SYNCPIPE_TEST_KAFKA_BOOTSTRAP=host:port",
        ),
        (
            {"SYNCPIPE_TEST_KAFKA": "external", "SYNCPIPE_TEST_KAFKA_BOOTSTRAP": "k1:9092,k2"},
            "SYNCPIPE_TEST_KAFKA_BOOTSTRAP='k1:9092,k2': 'k2' is not host:port",
        ),
        (
            {"SYNCPIPE_TEST_KAFKA_BOOTSTRAP": "k1:9092"},
            "SYNCPIPE_TEST_KAFKA_BOOTSTRAP is only used with SYNCPIPE_TEST_KAFKA=external "
            "(the mode is embedded)",
        ),
        (
            {
                "SYNCPIPE_TEST_KAFKA": "testcontainers",
                "SYNCPIPE_TEST_KAFKA_IMAGE": "x/cp-kafka:6.2.1",
            },
            "SYNCPIPE_TEST_KAFKA_IMAGE='x/cp-kafka:6.2.1': testcontainers' KafkaContainer runs "
            "Confluent's cp-kafka images in KRaft mode from tag 7.0.0 on",
        ),
        (
            {
                "SYNCPIPE_TEST_KAFKA": "testcontainers",
                "SYNCPIPE_TEST_KAFKA_IMAGE": "localhost:5000/k",
            },
            "use e.g. confluentinc/cp-kafka:7.6.0",
        ),
    ],
    ids=[
        "unknown-mode",
        "external-without-bootstrap",
        "bad-address",
        "bootstrap-unused",
        "image-without-kraft",
        "image-without-version",
    ],
)
def test_bad_settings_are_errors_saying_what_to_set(env: dict[str, str], message: str) -> None:
    with pytest.raises(KafkaModeError) as raised:
        KafkaMode.from_env(env)
    assert message in str(raised.value)


def test_external_kafka_cannot_be_given_to_a_test_that_stops_it() -> None:
    mode = KafkaMode("external", bootstrap="127.0.0.1:9")
    assert not mode.can_stop
    with pytest.raises(KafkaModeError, match="SYNCPIPE_TEST_KAFKA=external: this test stops"):
        mode.private(Path("/nonexistent"))


async def round_trip(kafka: KafkaUnderTest, topic: str, value: bytes) -> list[bytes]:
    """Produce ``value`` (acks=all) and read ``topic`` from the start."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()
    return await read(kafka, topic, 1)


async def read(kafka: KafkaUnderTest, topic: str, n: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    values: list[bytes] = []
    try:
        await consumer.start()
        async with asyncio.timeout(30):
            while len(values) < n:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    values.extend(r.value for r in records)
    finally:
        await consumer.stop()
    return values


async def test_session_kafka_serves_produce_and_fetch(
    kafka: KafkaUnderTest, topic_prefix: str
) -> None:
    assert kafka.kind in ("embedded", "testcontainers", "external")
    assert await round_trip(kafka, f"{topic_prefix}probe", b"hello") == [b"hello"]


async def test_stoppable_kafka_comes_back_after_kill9_on_the_same_address_with_its_data(
    stoppable_kafka: KafkaUnderTest, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}crash"
    bootstrap = stoppable_kafka.bootstrap
    assert await round_trip(stoppable_kafka, topic, b"before") == [b"before"]
    await asyncio.to_thread(stoppable_kafka.kill9)
    with pytest.raises(Exception):  # noqa: B017, PT011 - any client error: nothing serves
        await read(stoppable_kafka, topic, 1)
    await asyncio.to_thread(stoppable_kafka.start)
    assert stoppable_kafka.bootstrap == bootstrap
    assert await read(stoppable_kafka, topic, 1) == [b"before"]


def run_pytest(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    """pytest in a subprocess with ``env`` on top of ours (minus any SYNCPIPE_TEST_*)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SYNCPIPE_TEST_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *args],
        cwd=REPO,
        env={**base, "PYTEST_ADDOPTS": f"--basetemp={tmp_path / 'inner'}", **env},
        capture_output=True,
        text=True,
        timeout=150,
    )
    return result.returncode, result.stdout + result.stderr


def the_error(output: str) -> str:
    """The one ``ERROR:`` line of a run stopped by a usage error."""
    errors = [line for line in output.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, output
    return errors[0]


# A test that needs Kafka (through ingest's fixtures) and one that needs none.
NEEDS_KAFKA = "tests/ingest/test_ops.py::test_accepted_ops_land_on_the_ops_topic_as_op_records"
NEEDS_NO_KAFKA = "tests/schemas/test_hlc.py"


def test_testcontainers_without_docker_stops_the_session_with_one_message(
    tmp_path: Path,
) -> None:
    socket_path = tmp_path / "no-docker.sock"
    env = {"SYNCPIPE_TEST_KAFKA": "testcontainers", "DOCKER_HOST": f"unix://{socket_path}"}
    code, output = run_pytest(tmp_path, env, NEEDS_KAFKA)
    assert code == pytest.ExitCode.USAGE_ERROR, output
    error = the_error(output)
    assert error.startswith(
        "ERROR: SYNCPIPE_TEST_KAFKA=testcontainers needs a Docker engine: "
        f"none answers at unix://{socket_path} ("
    ), output
    assert error.endswith("or run with SYNCPIPE_TEST_KAFKA=embedded"), output
    assert "Traceback" not in output
    assert "passed" not in output


def test_testcontainers_without_docker_still_runs_tests_that_need_no_kafka(
    tmp_path: Path,
) -> None:
    env = {"SYNCPIPE_TEST_KAFKA": "testcontainers", "DOCKER_HOST": f"unix://{tmp_path}/x.sock"}
    code, output = run_pytest(tmp_path, env, NEEDS_NO_KAFKA)
    assert code == pytest.ExitCode.OK, output
    assert " passed" in output


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SYNCPIPE_TEST_KAFKA": "kraft"},
            "ERROR: SYNCPIPE_TEST_KAFKA='kraft' is not a Kafka mode; use one of: embedded, "
            "testcontainers, external (default: embedded)",
        ),
        (
            {"SYNCPIPE_TEST_KAFKA": "external"},
            "ERROR: SYNCPIPE_TEST_KAFKA=external needs SYNCPIPE_TEST_KAFKA_BOOTSTRAP=host:port",
        ),
        (
            {"SYNCPIPE_TEST_KAFKA": "external", "SYNCPIPE_TEST_KAFKA_BOOTSTRAP": "127.0.0.1:{}"},
            "ERROR: SYNCPIPE_TEST_KAFKA=external: nothing answers at "
            "SYNCPIPE_TEST_KAFKA_BOOTSTRAP=127.0.0.1:{} (127.0.0.1:{}: Connection refused); "
            "start that Kafka or correct the address",
        ),
    ],
    ids=["unknown-mode", "external-without-bootstrap", "external-not-listening"],
)
def test_unusable_mode_stops_the_session_with_a_usage_error(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    port = free_port()
    env = {k: v.format(port) for k, v in env.items()}
    code, output = run_pytest(tmp_path, env, NEEDS_KAFKA)
    assert code == pytest.ExitCode.USAGE_ERROR, output
    assert the_error(output).startswith(message.format(port, port)), output
    assert "Traceback" not in output


def test_external_mode_runs_the_tests_on_that_kafka_and_skips_those_that_stop_it(
    tmp_path: Path,
) -> None:
    broker = EmbeddedKafka(tmp_path / "external")
    broker.start()
    try:
        env = {"SYNCPIPE_TEST_KAFKA": "external", "SYNCPIPE_TEST_KAFKA_BOOTSTRAP": broker.bootstrap}
        stops_kafka = (
            "tests/ingest/test_unavailable.py::"
            "test_broker_down_is_503_then_recovers_without_double_writes"
        )
        code, output = run_pytest(tmp_path, env, NEEDS_KAFKA, stops_kafka)
        assert code == pytest.ExitCode.OK, output
        assert "1 passed, 1 skipped" in output, output
        assert "SYNCPIPE_TEST_KAFKA=external: this test stops, kills or restarts Kafka" in output
        assert broker.alive()
        ops_topics = asyncio.run(list_topics(broker.bootstrap))
        assert [t for t in ops_topics if t.endswith(".ops")], ops_topics  # it wrote here
    finally:
        broker.stop()
    assert not port_open(broker.port)


def test_external_kafka_refusing_the_tests_short_sessions_stops_the_session(
    tmp_path: Path,
) -> None:
    broker = EmbeddedKafka(
        tmp_path / "strict", env={"SYNCPIPE_BROKER_GROUP_MIN_SESSION_TIMEOUT_MS": "6000"}
    )
    broker.start()
    try:
        env = {"SYNCPIPE_TEST_KAFKA": "external", "SYNCPIPE_TEST_KAFKA_BOOTSTRAP": broker.bootstrap}
        code, output = run_pytest(tmp_path, env, NEEDS_KAFKA)
    finally:
        broker.stop()
    assert code == pytest.ExitCode.USAGE_ERROR, output
    assert the_error(output) == (
        f"ERROR: SYNCPIPE_TEST_KAFKA=external: the Kafka at {broker.bootstrap} refuses consumer "
        "groups with 3 s sessions, which the streams tests use (InvalidSessionTimeoutError); "
        "set its group.min.session.timeout.ms to 3000 or less (our broker: "
        "SYNCPIPE_BROKER_GROUP_MIN_SESSION_TIMEOUT_MS=1000)"
    ), output


async def list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()
