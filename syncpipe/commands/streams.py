"""``syncpipe streams`` (the Faust worker) and ``syncpipe replay ...`` (operator replays).

Options are parsed here; the work is in :mod:`streams.app` and :mod:`streams.replay`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from schemas.settings import SettingsError, SharedSettings
from syncpipe.settings import ConfigError, load_settings

T = TypeVar("T")

replay_app = typer.Typer(
    name="replay",
    help="Rebuild or shadow-replay downstream state from the ops log; dump/load topics.",
    no_args_is_help=True,
)


def _settings() -> tuple[Any, SharedSettings]:
    from streams.settings import StreamsSettings

    try:
        return load_settings(StreamsSettings), load_settings(SharedSettings)
    except (ConfigError, SettingsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _run(coro: Coroutine[Any, Any, T]) -> T:
    from schemas.topics import TopicError
    from streams.errors import StreamsError

    try:
        return asyncio.run(coro)
    except (StreamsError, TopicError) as exc:
        retriable = isinstance(exc, StreamsError) and exc.retriable
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3 if retriable else 2) from exc
    except KeyboardInterrupt as exc:
        typer.echo("\ninterrupted: nothing half-written was installed", err=True)
        raise typer.Exit(130) from exc


def streams() -> None:
    """Run the streams worker: reconcile ops into entity state, materialize the read model.

    Creates missing topics (entities compacted), recovers its table from the changelog,
    serves /metrics on SYNCPIPE_STREAMS_METRICS_PORT. Stops on Ctrl-C.
    """
    from streams.app import run_worker
    from streams.errors import StreamsError

    settings, shared = _settings()
    try:
        code = run_worker(settings, shared)
    except StreamsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3 if exc.retriable else 2) from exc
    raise typer.Exit(code)


@replay_app.command("rebuild")
def rebuild(
    force: Annotated[
        bool,
        typer.Option(help="Install the rebuild even if it differs from the live entities."),
    ] = False,
) -> None:
    """Rebuild the streams table and the Redis read model from the ops log.

    Reprocesses every op with the worker's own code, compares the result with the live
    entities topic and installs it (table changelog, then the read model, one collection
    at a time) only when they are identical, or with --force. Stop the streams workers
    first: a rebuild refuses to run while the consumer group has live members. Exit 0
    when installed, 1 when the rebuild differs (nothing installed), 2 or 3 on errors.
    """
    from streams.replay import rebuild as run

    settings, shared = _settings()
    report = _run(run(shared, settings.app_id, force=force))
    typer.echo(f"{report.ops} ops reprocessed into {report.entities} entities")
    typer.echo(report.diff.summary("live", "rebuilt"))
    if not report.applied:
        typer.echo("rebuild differs from live state: nothing installed (use --force)", err=True)
        raise typer.Exit(1)
    typer.echo(f"table and read model rebuilt ({report.read_model_written} entities)")


@replay_app.command("shadow")
def shadow(
    prefix: Annotated[
        str,
        typer.Option(
            help="Topic prefix of the shadow topics (must differ from SYNCPIPE_TOPIC_PREFIX)."
        ),
    ],
    from_offset: Annotated[
        int | None,
        typer.Option(help="Start every ops partition at this offset (default: the beginning)."),
    ] = None,
    from_time: Annotated[
        str | None,
        typer.Option(
            help=(
                "Start every ops partition at its first op at or after this time, "
                "ISO 8601 (2026-11-24T21:00:00Z; no zone means UTC)."
            )
        ),
    ] = None,
) -> None:
    """Reprocess live ops into entities/conflicts/receipts/ops.dlq under another prefix.

    Live topics, the table and the read model are not touched; missing shadow topics
    are created. Compare the result with `syncpipe replay diff --prefix PREFIX`.
    """
    from streams.replay import shadow as run

    if from_offset is not None and from_time is not None:
        _fail("give --from-offset or --from-time, not both")
    if from_offset is not None and from_offset < 0:
        _fail(f"--from-offset must be 0 or more, got {from_offset}")
    ms = None if from_time is None else _parse_time(from_time)
    settings, shared = _settings()
    result = _run(
        run(
            shared,
            prefix,
            partitions=settings.partitions,
            from_offset=from_offset,
            from_time_ms=ms,
        )
    )
    typer.echo(f"{result.ops} ops replayed into {prefix}* ({result.rejected} to the DLQ)")


@replay_app.command("diff")
def diff(
    prefix: Annotated[str, typer.Option(help="Topic prefix of the shadow topics.")],
    content_only: Annotated[
        bool,
        typer.Option(help="Compare fields and deletion only, not versions and arrival data."),
    ] = False,
) -> None:
    """Compare the shadow entities (PREFIX) with the live ones, entity by entity.

    Prints how many are identical and names those that differ or exist on one side
    only. Exit 0 when identical, 1 when they differ, 2 or 3 on errors.
    """
    from streams.replay import diff as run

    _, shared = _settings()
    result = _run(
        run(shared.kafka_bootstrap, shared.topic_prefix, prefix, content_only=content_only)
    )
    typer.echo(result.summary("live", "shadow"))
    if not result.identical:
        raise typer.Exit(1)


@replay_app.command("dump")
def dump(
    topic: Annotated[str, typer.Argument(help="Full topic name, e.g. syncpipe.ops.")],
    file: Annotated[Path, typer.Argument(help="JSON lines file to write (replaced if present).")],
) -> None:
    """Write every record of TOPIC to FILE as JSON lines.

    One line per record: partition, offset, timestamp_ms and base64 key and value. The
    file appears only when complete.
    """
    from streams.replay import dump as run

    _, shared = _settings()
    count = _run(run(shared.kafka_bootstrap, topic, file))
    typer.echo(f"{count} records written to {file}")


@replay_app.command("load")
def load(
    file: Annotated[Path, typer.Argument(help="JSON lines file written by `replay dump`.")],
    topic: Annotated[str, typer.Argument(help="Existing topic to produce the records to.")],
) -> None:
    """Produce every record of FILE (from `replay dump`) to TOPIC.

    Records keep their partition when TOPIC has it, else go by key. The whole file is
    checked first: a malformed line loads nothing and names the line.
    """
    from streams.replay import load as run

    _, shared = _settings()
    count = _run(run(shared.kafka_bootstrap, file, topic))
    typer.echo(f"{count} records produced to {topic}")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _parse_time(text: str) -> int:
    """Epoch milliseconds of an ISO 8601 time; a time without a zone is UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"--from-time {text!r} is not an ISO 8601 time; use e.g. 2026-11-24T21:00:00Z")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def register(app: typer.Typer) -> None:
    app.command()(streams)
    app.add_typer(replay_app)
