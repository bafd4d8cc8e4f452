"""The ``syncpipe`` command line: the composition root's front door."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from syncpipe.logs import configure_logging
from syncpipe.settings import CliSettings, ConfigError, load_settings

# Each module exposes ``register(app)``; modules not present in this build are skipped.
COMMAND_MODULES: tuple[str, ...] = (
    "syncpipe.commands.core",
    "syncpipe.commands.dev",
    "syncpipe.commands.broker",
    "syncpipe.commands.ingest",
    "syncpipe.commands.streams",
    "syncpipe.commands.push",
)

app = typer.Typer(
    name="syncpipe",
    help=(
        "syncpipe: an offline-first sync backend built as a stream pipeline.\n\n"
        "Run `syncpipe dev` to start everything on this machine. Every setting is an "
        "environment variable: `syncpipe config` lists them."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


@app.callback()
def _root(
    log_level: Annotated[
        str | None, typer.Option(help="Override SYNCPIPE_LOG_LEVEL (DEBUG, INFO, ...).")
    ] = None,
) -> None:
    try:
        settings = load_settings(CliSettings)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(log_level.upper() if log_level else settings.level, settings.format)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(app)


_register_all()


def main() -> None:
    """Console-script entry point."""
    app()
