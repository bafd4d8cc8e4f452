"""``syncpipe streams`` (the Faust worker) and ``syncpipe replay ...`` (operator replays).

Options are parsed here; the work is in :mod:`streams.app` and :mod:`streams.replay`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

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
    from streams.errors import StreamsError

    try:
        return asyncio.run(coro)
    except StreamsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3 if exc.retriable else 2) from exc
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
        bool, typer.Option(help="Install the rebuild even if it differs from live state.")
    ] = False,
) -> None:
    """Reprocess ops into a fresh table and read model; prove they reproduce live entities.

    Stop the streams workers first. Nothing is installed unless the rebuilt entities equal
    the live ones (or --force).
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
    prefix: Annotated[str, typer.Option(help="Topic prefix of the shadow topics.")],
    from_offset: Annotated[
        int | None, typer.Option(min=0, help="Start every ops partition at this offset.")
    ] = None,
    from_time: Annotated[
        datetime | None, typer.Option(help="Start at the first op at or after this time.")
    ] = None,
) -> None:
    """Reprocess live ops into entities/conflicts/receipts topics under another prefix."""
    from streams.replay import shadow as run

    settings, shared = _settings()
    ms = None if from_time is None else int(from_time.timestamp() * 1000)
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
        bool, typer.Option(help="Compare fields and deletion only, not versions.")
    ] = False,
) -> None:
    """Compare the shadow entities with the live ones; exit 1 when they differ."""
    from streams.replay import diff as run

    _, shared = _settings()
    result = _run(
        run(shared.kafka_bootstrap, shared.topic_prefix, prefix, content_only=content_only)
    )
    typer.echo(result.summary("live", "shadow"))
    if not result.identical:
        raise typer.Exit(1)


@replay_app.command("dump")
def dump(topic: str, file: Path) -> None:
    """Write every record of TOPIC to FILE as JSON lines (base64 key and value)."""
    from streams.replay import dump as run

    _, shared = _settings()
    count = _run(run(shared.kafka_bootstrap, topic, file))
    typer.echo(f"{count} records written to {file}")


@replay_app.command("load")
def load(file: Path, topic: str) -> None:
    """Produce every JSON line of FILE (from `replay dump`) to TOPIC."""
    from streams.replay import load as run

    _, shared = _settings()
    count = _run(run(shared.kafka_bootstrap, file, topic))
    typer.echo(f"{count} records produced to {topic}")


def register(app: typer.Typer) -> None:
    app.command()(streams)
    app.add_typer(replay_app)
