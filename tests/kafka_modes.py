"""Which Kafka the integration tests run against, chosen by ``SYNCPIPE_TEST_KAFKA``.

==================  ==========================================================================
``embedded``        (default) our broker, ``python -m broker``, as a subprocess on a free port
``testcontainers``  a real Kafka (Confluent's ``cp-kafka`` image in KRaft mode) in Docker, via
                    ``testcontainers.community.kafka.KafkaContainer``; needs a Docker engine
``external``        a Kafka that is already running at ``SYNCPIPE_TEST_KAFKA_BOOTSTRAP``
                    (``host:port[,host:port...]``); the tests never stop it
==================  ==========================================================================

``SYNCPIPE_TEST_KAFKA_IMAGE`` overrides the container image (a ``confluentinc/cp-kafka`` tag of
7.0.0 or later, which is what ``KafkaContainer`` knows how to configure for KRaft).

Every mode gives the same :class:`KafkaUnderTest`. The session shares one (each test writes
under its own topic prefix, so shared and external clusters never mix tests' records); tests
that stop, kill or restart Kafka get a private one of their own, which ``external`` cannot
give: those tests are skipped there, with the mode in the reason.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from packaging.version import InvalidVersion, Version

from tests.processes import BrokerProcess, free_port, wait_until

__all__ = [
    "BOOTSTRAP_ENV",
    "CONFIG",
    "DEFAULT_IMAGE",
    "IMAGE_ENV",
    "MODES",
    "MODE_ENV",
    "ContainerKafka",
    "EmbeddedKafka",
    "ExternalKafka",
    "KafkaMode",
    "KafkaModeError",
    "KafkaUnderTest",
    "unique_topic_prefix",
]

MODE_ENV = "SYNCPIPE_TEST_KAFKA"
BOOTSTRAP_ENV = "SYNCPIPE_TEST_KAFKA_BOOTSTRAP"
IMAGE_ENV = "SYNCPIPE_TEST_KAFKA_IMAGE"
MODES = ("embedded", "testcontainers", "external")
DEFAULT_IMAGE = "confluentinc/cp-kafka:7.6.0"
# KafkaContainer's own readiness line in KRaft mode; a restart prints it again.
_STARTED = "Kafka Server started"
_CONTAINER_PORT = 9093
# Broker configs the tests rely on, beyond Kafka's defaults. The streams workers ask for 3 s
# sessions (Kafka's floor is 6 s); one node holds every internal topic.
CONFIG = {
    "group.min.session.timeout.ms": "1000",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "auto.create.topics.enable": "true",
}
_MIN_KRAFT_TAG = Version("7.0.0")  # KafkaContainer.with_kraft's floor for cp-kafka tags
# SIGTERM to every process whose executable is a JVM (Kafka), and to nothing else.
_TERM_JAVA = (
    'for p in /proc/[0-9]*; do exe=$(readlink "$p/exe" 2>/dev/null) || continue; '
    'case "$exe" in */java) kill -TERM "${p#/proc/}";; esac; done'
)


class KafkaModeError(Exception):
    """The Kafka the tests were asked for is misconfigured or unavailable; says which and why."""


def unique_topic_prefix(tag: str = "t") -> str:
    """A topic prefix no other test (or earlier run on a shared cluster) has used."""
    return f"{tag}{uuid.uuid4().hex[:10]}."


class KafkaUnderTest(ABC):
    """A Kafka the tests produce to and consume from.

    ``can_stop`` says whether ``stop``/``start``/``kill9`` work: true for Kafkas the tests
    started themselves, false for an external one.
    """

    kind: ClassVar[str]
    can_stop: ClassVar[bool]

    @property
    @abstractmethod
    def bootstrap(self) -> str:
        """``host:port`` for clients."""

    @abstractmethod
    def start(self) -> None:
        """Start (or start again, on the same address and data) and wait until it serves."""

    @abstractmethod
    def stop(self) -> None:
        """Stop gracefully; the address then refuses (or drops) Kafka requests."""

    @abstractmethod
    def kill9(self) -> None:
        """Stop as a crash would (SIGKILL): no shutdown, no flush beyond what was synced."""

    @abstractmethod
    def close(self) -> None:
        """Stop for good and release everything this Kafka holds."""

    @abstractmethod
    def log(self) -> str:
        """The tail of this Kafka's log, for failure messages (empty when unknown)."""

    def restart(self, hard: bool = False) -> None:
        if hard:
            self.kill9()
        else:
            self.stop()
        self.start()

    def describe(self) -> str:
        return f"{self.kind} Kafka at {self.bootstrap}"


class EmbeddedKafka(BrokerProcess, KafkaUnderTest):
    """Our broker as a subprocess (see :class:`tests.processes.BrokerProcess`)."""

    kind = "embedded"
    can_stop = True

    def close(self) -> None:
        self.stop()


class ExternalKafka(KafkaUnderTest):
    """A Kafka someone else runs: used as it is, never stopped."""

    kind = "external"
    can_stop = False

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap

    @property
    def bootstrap(self) -> str:
        return self._bootstrap

    def start(self) -> None:
        problem = unreachable(self._bootstrap)
        if problem:
            raise KafkaModeError(f"{MODE_ENV}=external: {problem}")

    def _refuse(self, what: str) -> None:
        raise KafkaModeError(
            f"{MODE_ENV}=external: the tests do not {what} a Kafka they did not start "
            f"({self._bootstrap}); this test needs {MODE_ENV}=embedded or testcontainers"
        )

    def stop(self) -> None:
        self._refuse("stop")

    def kill9(self) -> None:
        self._refuse("kill")

    def close(self) -> None:
        """Nothing to release: the Kafka stays as it was found."""

    def log(self) -> str:
        return ""


class ContainerKafka(KafkaUnderTest):
    """A real Kafka in Docker (KRaft, one node) via testcontainers.

    The container's Kafka port is bound to a fixed free host port, so the listener Kafka
    advertises stays right across ``stop``/``start``: Docker would otherwise map a new random
    port on every start while the advertised one kept the first.
    """

    kind = "testcontainers"
    can_stop = True

    def __init__(self, image: str = DEFAULT_IMAGE, start_timeout_s: float = 180.0) -> None:
        # Imported here: the docker client is only needed (and only importable with an engine
        # to talk to) in this mode.
        from testcontainers.community.kafka import KafkaContainer

        self.image = image
        self.start_timeout_s = start_timeout_s
        self.host_port = free_port()
        self.container = (
            KafkaContainer(image, port=_CONTAINER_PORT)
            .with_kraft()
            .with_bind_ports(_CONTAINER_PORT, self.host_port)
            .with_envs(**{f"KAFKA_{k.upper().replace('.', '_')}": v for k, v in CONFIG.items()})
        )
        self._bootstrap: str | None = None

    @property
    def bootstrap(self) -> str:
        if self._bootstrap is None:
            raise KafkaModeError(f"the {self.image} container has not been started")
        return self._bootstrap

    def _wrapped(self) -> Any:
        return self.container.get_wrapped_container()

    def _starts_logged(self) -> int:
        logs: bytes = self._wrapped().logs()
        return logs.decode(errors="replace").count(_STARTED)

    def start(self) -> None:
        if self._bootstrap is None:
            try:
                self.container.start(timeout=int(self.start_timeout_s))
            except Exception as exc:
                raise KafkaModeError(
                    f"{MODE_ENV}=testcontainers: the {self.image} container did not start "
                    f"({exc}); see `docker logs` of it, or set {IMAGE_ENV}"
                ) from exc
            self._bootstrap = self.container.get_bootstrap_server()
            return
        seen = self._starts_logged()
        self._wrapped().start()
        wait_until(
            lambda: self._starts_logged() > seen,
            timeout=self.start_timeout_s,
            interval=0.2,
            what=f"Kafka in {self.image} to start again",
        )

    def stop(self) -> None:
        wrapped = self._wrapped()
        # `docker stop` signals PID 1, the start script's shell, which ignores SIGTERM: Docker
        # would wait and then SIGKILL everything. Kafka's JVM is signalled instead, shuts down
        # cleanly, and the container exits with it; `docker stop` is only the fallback.
        wrapped.exec_run(["sh", "-c", _TERM_JAVA])
        try:
            wrapped.wait(timeout=60)
        except Exception:
            wrapped.stop(timeout=5)

    def kill9(self) -> None:
        wrapped = self._wrapped()
        wrapped.kill(signal="SIGKILL")
        wrapped.wait(timeout=30)

    def close(self) -> None:
        self.container.stop()  # removes the container and its volumes

    def log(self) -> str:
        try:
            text: str = self._wrapped().logs(tail=200).decode(errors="replace")
        except Exception as exc:
            return f"(no container log: {exc})"
        return text


@dataclass(frozen=True)
class KafkaMode:
    """The parsed ``SYNCPIPE_TEST_KAFKA*`` settings."""

    kind: str = "embedded"
    bootstrap: str | None = None
    image: str = DEFAULT_IMAGE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaMode:
        env = os.environ if env is None else env
        kind = env.get(MODE_ENV, "").strip().lower() or "embedded"
        if kind not in MODES:
            raise KafkaModeError(
                f"{MODE_ENV}={env[MODE_ENV]!r} is not a Kafka mode; use one of: "
                f"{', '.join(MODES)} (default: embedded)"
            )
        bootstrap = env.get(BOOTSTRAP_ENV, "").strip() or None
        if kind == "external":
            if bootstrap is None:
                raise KafkaModeError(
                    f"{MODE_ENV}=external needs {BOOTSTRAP_ENV}=host:port "
                    "(the bootstrap address of the Kafka to test against)"
                )
            for address in bootstrap.split(","):
                host, _, port = address.strip().rpartition(":")
                if not host or not port.isdigit() or not 0 < int(port) < 65536:
                    raise KafkaModeError(
                        f"{BOOTSTRAP_ENV}={bootstrap!r}: {address.strip()!r} is not host:port"
                    )
        elif bootstrap is not None:
            raise KafkaModeError(
                f"{BOOTSTRAP_ENV} is only used with {MODE_ENV}=external "
                f"(the mode is {kind}); unset it or set {MODE_ENV}=external"
            )
        image = env.get(IMAGE_ENV, "").strip() or DEFAULT_IMAGE
        if kind == "testcontainers":
            _check_image(image)
        return cls(kind=kind, bootstrap=bootstrap, image=image)

    def __str__(self) -> str:
        if self.kind == "external":
            return f"external ({self.bootstrap})"
        if self.kind == "testcontainers":
            return f"testcontainers ({self.image})"
        return "embedded (python -m broker)"

    def check_available(self) -> None:
        """Fail with one clear message when this mode cannot run here."""
        if self.kind == "testcontainers":
            problem = docker_problem()
            if problem:
                raise KafkaModeError(f"{MODE_ENV}=testcontainers needs a Docker engine: {problem}")
        elif self.kind == "external":
            assert self.bootstrap is not None
            problem = unreachable(self.bootstrap) or short_sessions_refused(self.bootstrap)
            if problem:
                raise KafkaModeError(f"{MODE_ENV}=external: {problem}")

    def shared(self, data_dir: Path) -> KafkaUnderTest:
        """The session's Kafka, started (``data_dir`` is for the embedded broker)."""
        if self.kind == "external":
            assert self.bootstrap is not None
            kafka = ExternalKafka(self.bootstrap)
            kafka.start()
            return kafka
        return self.private(data_dir)

    def private(self, data_dir: Path) -> KafkaUnderTest:
        """A Kafka of the caller's own, started; one it may stop, kill and restart."""
        if not self.can_stop:
            raise KafkaModeError(self.cannot_stop_reason())
        kafka: KafkaUnderTest
        if self.kind == "testcontainers":
            kafka = ContainerKafka(self.image)
        else:
            kafka = EmbeddedKafka(data_dir)
        try:
            kafka.start()
        except BaseException:
            kafka.close()
            raise
        return kafka

    @property
    def can_stop(self) -> bool:
        return self.kind != "external"

    def cannot_stop_reason(self) -> str:
        return (
            f"{MODE_ENV}={self.kind}: this test stops, kills or restarts Kafka, and the tests "
            f"never do that to a Kafka they did not start ({self.bootstrap}); it runs with "
            f"{MODE_ENV}=embedded or testcontainers"
        )


def _check_image(image: str) -> None:
    """KafkaContainer configures Confluent's cp-kafka images; KRaft needs tag 7.0.0 or later."""
    _, _, tag = image.rpartition(":")
    try:
        ok = "/" not in tag and Version(tag) >= _MIN_KRAFT_TAG
    except InvalidVersion:
        ok = False
    if not ok:
        raise KafkaModeError(
            f"{IMAGE_ENV}={image!r}: testcontainers' KafkaContainer runs Confluent's cp-kafka "
            f"images in KRaft mode from tag 7.0.0 on; use e.g. {DEFAULT_IMAGE}"
        )


def docker_problem() -> str | None:
    """Why no Docker engine answers (None when one does)."""
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        from testcontainers.core.docker_client import DockerClient

        DockerClient().client.ping()
    except Exception as exc:
        return (
            f"none answers at {where} ({exc}); start Docker or point DOCKER_HOST at one, "
            f"or run with {MODE_ENV}=embedded"
        )
    return None


def unreachable(bootstrap: str, timeout_s: float = 3.0) -> str | None:
    """Why none of the bootstrap addresses accepts a connection (None when one does)."""
    errors = []
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return None
        except OSError as exc:
            errors.append(f"{address.strip()}: {exc.strerror or exc}")
    return (
        f"nothing answers at {BOOTSTRAP_ENV}={bootstrap} ({'; '.join(errors)}); "
        "start that Kafka or correct the address"
    )


# The shortest consumer-group session a test asks for (tests/streams/conftest.py's workers).
SESSION_TIMEOUT_MS = 3000


def short_sessions_refused(bootstrap: str, timeout_s: float = 15.0) -> str | None:
    """Why a consumer group with the tests' short sessions cannot join (None when it can).

    Kafka refuses sessions under ``group.min.session.timeout.ms`` (6 s by default); the
    streams workers would then never consume and their tests would only time out. The probe
    subscribes to a pattern no topic matches, so it creates nothing.
    """
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaError

    async def join() -> str | None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=f"syncpipe-test-probe-{uuid.uuid4().hex[:10]}",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=SESSION_TIMEOUT_MS // 3,
            enable_auto_commit=False,
        )
        consumer.subscribe(pattern=r"^syncpipe-test-probe-matches-nothing$")
        try:
            await asyncio.wait_for(consumer.start(), timeout_s)
        except KafkaError as exc:
            return (
                f"the Kafka at {bootstrap} refuses consumer groups with "
                f"{SESSION_TIMEOUT_MS / 1000:g} s sessions, which the streams tests use "
                f"({type(exc).__name__}); set its group.min.session.timeout.ms to "
                f"{SESSION_TIMEOUT_MS} or less (our broker: "
                "SYNCPIPE_BROKER_GROUP_MIN_SESSION_TIMEOUT_MS=1000)"
            )
        except TimeoutError:
            return (
                f"the Kafka at {bootstrap} did not let a consumer join a group in {timeout_s:g} s"
            )
        finally:
            await consumer.stop()
        return None

    return asyncio.run(join())
