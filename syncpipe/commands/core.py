"""Core commands: version, gen, token, config."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from typing import Annotated

import typer

from schemas.auth import mint_token
from schemas.settings import SettingsError, SharedSettings
from syncpipe import configdoc
from syncpipe import gen as codegen
from syncpipe.settings import ConfigError, load_settings


def app_version() -> str:
    try:
        return dist_version("syncpipe")
    except PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def load_shared_settings() -> SharedSettings:
    """Build SharedSettings from the environment, or exit with the reason (no traceback)."""
    try:
        return load_settings(SharedSettings)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def version() -> None:
    """Print the syncpipe version."""
    typer.echo(f"syncpipe {app_version()}")


def gen(
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Regenerate into a scratch directory and fail if anything committed differs.",
        ),
    ] = False,
) -> None:
    """Generate Pydantic models, TypeScript types and the README config table from the schemas.

    Sources: schemas/json/*.schema.json and the settings classes. Outputs:
    schemas/generated/, pwa/src/generated/schemas.ts and the table in README.md.
    """
    try:
        layout = codegen.Layout.find()
        readme = layout.root / "README.md"
        if check:
            drift = codegen.check(layout)
            if configdoc.readme_drift(readme):
                drift.append("differs: README.md (configuration table)")
            if drift:
                for line in drift:
                    typer.echo(f"drift: {line}", err=True)
                typer.echo("generated code is out of date: run `just gen` and commit", err=True)
                raise typer.Exit(1)
            typer.echo("generated code is up to date")
            return
        for path in codegen.generate(layout):
            typer.echo(f"wrote {path.relative_to(layout.root)}")
        if configdoc.update_readme(readme):
            typer.echo("wrote README.md (configuration table)")
    except (codegen.GenError, configdoc.ConfigDocError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def token(
    tenant: Annotated[str, typer.Option(help="Tenant the token grants access to.")],
    user: Annotated[str, typer.Option(help="User id, the token's 'sub'.")],
    ttl: Annotated[int, typer.Option(min=1, help="Lifetime in seconds.")] = 24 * 3600,
) -> None:
    """Mint a dev JWT (HS256, SYNCPIPE_JWT_SECRET or the dev secret) and print it."""
    settings = load_shared_settings()
    try:
        typer.echo(mint_token(settings, tenant=tenant, user_id=user, ttl_s=ttl))
    except (SettingsError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def config() -> None:
    """Print every setting with its environment variable, default and meaning."""
    sys.stdout.write(configdoc.render_table())


def register(app: typer.Typer) -> None:
    app.command()(version)
    app.command()(gen)
    app.command()(token)
    app.command()(config)
