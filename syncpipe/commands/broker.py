"""``syncpipe broker`` and the operator commands that talk to any Kafka-compatible broker.

``broker`` runs the embedded broker in this process. ``topics``, ``groups`` and ``tail``
are ordinary Kafka clients (aiokafka), so they work the same against the embedded broker
and against a real Kafka or Redpanda cluster (``--bootstrap`` or
``SYNCPIPE_KAFKA_BOOTSTRAP``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic import ValidationError

T = TypeVar("T")

topics_app = typer.Typer(help="List, describe, create and delete topics.", no_args_is_help=True)
groups_app = typer.Typer(
    help="List and describe consumer groups; reset their committed offsets.",
    no_args_is_help=True,
)

BootstrapOpt = Annotated[
    str | None,
    typer.Option(
        "--bootstrap",
        help="Kafka bootstrap servers (default: SYNCPIPE_KAFKA_BOOTSTRAP, else 127.0.0.1:9092).",
    ),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _bootstrap(value: str | None) -> str:
    if value:
        return value
    from schemas.settings import SettingsError, SharedSettings

    try:
        return SharedSettings().kafka_bootstrap
    except (ValidationError, SettingsError) as exc:
        raise _fail(f"bad configuration: {exc}") from exc


def _run(bootstrap: str, work: Callable[[str], Coroutine[Any, Any, T]]) -> T:
    """Run one client coroutine; Kafka errors become a one-line message and exit 1."""
    from aiokafka.errors import KafkaError

    try:
        return asyncio.run(work(bootstrap))
    except KafkaError as exc:
        typer.echo(f"error: {type(exc).__name__}: {exc} (bootstrap {bootstrap})", err=True)
        raise typer.Exit(1) from exc
    except (OSError, TimeoutError) as exc:
        typer.echo(f"error: cannot reach {bootstrap}: {exc}", err=True)
        raise typer.Exit(1) from exc


# --- broker ---------------------------------------------------------------------------


def broker(
    host: Annotated[str | None, typer.Option(help="Listen address (loopback only).")] = None,
    port: Annotated[int | None, typer.Option(help="Kafka protocol port.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where topics and offsets live.")] = None,
    partitions: Annotated[
        int | None, typer.Option(help="Partitions of auto-created topics.")
    ] = None,
    fsync: Annotated[
        str | None, typer.Option(help="Durability policy: group, always, interval or never.")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Port of the /metrics endpoint (0 disables it).")
    ] = None,
) -> None:
    """Run the embedded Kafka-compatible broker until Ctrl-C.

    Every option defaults to its SYNCPIPE_BROKER_* environment variable
    (`syncpipe config` lists them).
    """
    from broker.errors import StartupError
    from broker.server import run
    from broker.settings import BrokerSettings

    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "default_partitions": partitions,
        "fsync": fsync,
        "metrics_port": metrics_port,
    }
    try:
        settings = BrokerSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise _fail(f"bad broker configuration: {exc}") from exc
    try:
        asyncio.run(run(settings))
    except StartupError as exc:
        raise _fail(str(exc)) from exc
    except KeyboardInterrupt:
        pass


# --- topics ---------------------------------------------------------------------------


def _admin(bootstrap: str) -> Any:
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)


async def _end_offsets(bootstrap: str, topic: str, partitions: list[int]) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        end = await consumer.end_offsets(tps)
        return {tp.partition: int(off) for tp, off in end.items()}
    finally:
        await consumer.stop()


async def _partitions(consumer: Any, topic: str) -> list[int]:
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic)
    if not parts:
        raise _fail(f"topic {topic!r} not found")
    return sorted(parts)


@topics_app.command("list")
def topics_list(bootstrap: BootstrapOpt = None) -> None:
    """Print every topic name, one a line."""

    async def work(b: str) -> list[str]:
        admin = _admin(b)
        await admin.start()
        try:
            return sorted(await admin.list_topics())
        finally:
            await admin.close()

    for name in _run(_bootstrap(bootstrap), work):
        typer.echo(name)


@topics_app.command("describe")
def topics_describe(name: str, bootstrap: BootstrapOpt = None) -> None:
    """Print a topic's partitions with their end offsets, and its configs."""
    from aiokafka.admin.config_resource import (
        ConfigResource,
        ConfigResourceType,
    )

    async def work(b: str) -> tuple[list[int], dict[int, int], list[tuple[str, str]]]:
        admin = _admin(b)
        await admin.start()
        try:
            desc = (await admin.describe_topics([name]))[0]
            if desc["error_code"]:
                raise _fail(f"topic {name!r} not found (error {desc['error_code']})")
            parts = sorted(p["partition"] for p in desc["partitions"])
            res = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
            configs = [(c[0], c[1]) for c in res[0].resources[0][4]]
        finally:
            await admin.close()
        return parts, await _end_offsets(b, name, parts), configs

    parts, ends, configs = _run(_bootstrap(bootstrap), work)
    typer.echo(f"topic {name}  partitions {len(parts)}")
    for p in parts:
        typer.echo(f"  partition {p}  end_offset {ends.get(p, -1)}")
    typer.echo("configs")
    for key, value in configs:
        typer.echo(f"  {key}={value}")


@topics_app.command("create")
def topics_create(
    name: str,
    partitions: Annotated[int, typer.Option(min=1, help="Number of partitions.")] = 1,
    config: Annotated[
        list[str] | None, typer.Option(help="Topic config KEY=VALUE (repeatable).")
    ] = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Create a topic (replication factor 1)."""
    from aiokafka.admin import NewTopic

    configs: dict[str, str] = {}
    for item in config or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise _fail(f"--config {item!r}: expected KEY=VALUE")
        configs[key] = value

    async def work(b: str) -> None:
        admin = _admin(b)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
        finally:
            await admin.close()

    _run(_bootstrap(bootstrap), work)
    typer.echo(f"created {name}")


@topics_app.command("delete")
def topics_delete(name: str, bootstrap: BootstrapOpt = None) -> None:
    """Delete a topic and all its data."""

    async def work(b: str) -> None:
        admin = _admin(b)
        await admin.start()
        try:
            await admin.delete_topics([name])
        finally:
            await admin.close()

    _run(_bootstrap(bootstrap), work)
    typer.echo(f"deleted {name}")


# --- groups ---------------------------------------------------------------------------


@groups_app.command("list")
def groups_list(bootstrap: BootstrapOpt = None) -> None:
    """Print every consumer group, one a line."""

    async def work(b: str) -> list[str]:
        admin = _admin(b)
        await admin.start()
        try:
            return sorted(str(g[0]) for g in await admin.list_consumer_groups())
        finally:
            await admin.close()

    for group in _run(_bootstrap(bootstrap), work):
        typer.echo(group)


@groups_app.command("describe")
def groups_describe(group: str, bootstrap: BootstrapOpt = None) -> None:
    """Print a group's state and members, and per partition its committed offset and lag."""

    async def work(b: str) -> tuple[str, int, list[tuple[str, int, int, int]]]:
        admin = _admin(b)
        await admin.start()
        try:
            desc = (await admin.describe_consumer_groups([group]))[0].groups[0]
            committed = await admin.list_consumer_group_offsets(group)
        finally:
            await admin.close()
        rows: list[tuple[str, int, int, int]] = []
        by_topic: dict[str, list[int]] = {}
        for tp in committed:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        for topic, parts in sorted(by_topic.items()):
            ends = await _end_offsets(b, topic, parts)
            for tp, meta in committed.items():
                if tp.topic == topic:
                    rows.append((topic, tp.partition, meta.offset, ends[tp.partition]))
        return str(desc[2]), len(desc[5]), sorted(rows)

    state, members, rows = _run(_bootstrap(bootstrap), work)
    typer.echo(f"group {group}  state {state}  members {members}")
    for topic, p, offset, end in rows:
        typer.echo(f"  {topic}[{p}]  committed {offset}  end {end}  lag {max(end - offset, 0)}")


@groups_app.command("reset-offsets")
def groups_reset_offsets(
    group: str,
    topic: Annotated[str, typer.Option(help="Topic whose partitions are reset.")],
    to: Annotated[
        Literal["earliest", "latest"] | None,
        typer.Option(help="Reset to the earliest or latest offset."),
    ] = None,
    to_offset: Annotated[int | None, typer.Option(help="Reset to this offset.")] = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Commit new offsets for a group with no active members (stop its consumers first)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    if (to is None) == (to_offset is None):
        raise _fail("give exactly one of --to earliest|latest or --to-offset N")

    async def work(b: str) -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=b, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in await _partitions(consumer, topic)]
            if to == "earliest":
                target = await consumer.beginning_offsets(tps)
            elif to == "latest":
                target = await consumer.end_offsets(tps)
            else:
                target = dict.fromkeys(tps, to_offset)
            consumer.assign(tps)
            await consumer.commit({tp: int(off) for tp, off in target.items()})
            return {tp.partition: int(off) for tp, off in target.items()}
        finally:
            await consumer.stop()

    for p, off in sorted(_run(_bootstrap(bootstrap), work).items()):
        typer.echo(f"{group} {topic}[{p}] -> {off}")


# --- tail -----------------------------------------------------------------------------


def tail(
    topic: str,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest record.")
    ] = False,
    max_messages: Annotated[int | None, typer.Option(help="Stop after this many records.")] = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Print records of a topic as they arrive: partition, offset, key, value."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def work(b: str) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=b, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in await _partitions(consumer, topic)]
            consumer.assign(tps)
            if from_beginning:
                await consumer.seek_to_beginning(*tps)
            else:
                await consumer.seek_to_end(*tps)
            seen = 0
            while max_messages is None or seen < max_messages:
                batch = await consumer.getmany(timeout_ms=1000)
                for msgs in batch.values():
                    for m in msgs:
                        key = m.key.decode(errors="replace") if m.key is not None else "-"
                        value = m.value.decode(errors="replace") if m.value is not None else "-"
                        typer.echo(f"{m.partition}:{m.offset}  {key}  {value}")
                        seen += 1
        finally:
            await consumer.stop()

    with contextlib.suppress(KeyboardInterrupt):
        _run(_bootstrap(bootstrap), work)


def register(app: typer.Typer) -> None:
    app.command()(broker)
    app.add_typer(topics_app, name="topics")
    app.add_typer(groups_app, name="groups")
    app.command()(tail)
