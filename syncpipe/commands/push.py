"""``syncpipe push``: run the WebSocket push service on uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from push.app import run
from push.settings import PushSettings
from syncpipe.commands.core import load_shared_settings
from syncpipe.settings import ConfigError, load_settings


def push(
    host: Annotated[
        str | None, typer.Option(help="Listen address (default SYNCPIPE_PUSH_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Listen port (default SYNCPIPE_PUSH_PORT).")
    ] = None,
) -> None:
    """Serve GET /v1/ws (WebSocket fanout), /healthz, /readyz and /metrics."""
    try:
        settings = load_settings(PushSettings)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    shared = load_shared_settings()
    updates = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    run(settings.model_copy(update=updates) if updates else settings, shared)


def register(app: typer.Typer) -> None:
    app.command()(push)
