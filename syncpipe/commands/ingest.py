"""``syncpipe ingest``: the ingest HTTP API (FastAPI on uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from schemas.settings import SettingsError, SharedSettings
from syncpipe.settings import ConfigError, load_settings


def ingest(
    host: Annotated[
        str | None, typer.Option(help="Override SYNCPIPE_INGEST_HOST (address to listen on).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Override SYNCPIPE_INGEST_PORT.")
    ] = None,
) -> None:
    """Run the ingest API: POST /v1/ops into the ops topic, entity pages from Redis.

    Needs SYNCPIPE_REDIS_URL and a reachable SYNCPIPE_KAFKA_BOOTSTRAP (it starts without
    the broker and answers 503 until the broker is up). Stops on Ctrl-C.
    """
    import uvicorn

    from ingest.app import create_app
    from ingest.settings import IngestSettings

    try:
        shared = load_settings(SharedSettings)
        settings = load_settings(IngestSettings)
        overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
        if overrides:
            settings = settings.model_copy(update=overrides)
        app = create_app(settings, shared)
    except (ConfigError, SettingsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=settings.access_log,
        server_header=False,
    )


def register(app: typer.Typer) -> None:
    app.command()(ingest)
