"""Subcommands of the ``syncpipe`` CLI.

Each module here owns one area and exposes ``register(app: typer.Typer) -> None``,
which adds its commands to the root app. ``syncpipe.cli`` calls every ``register``
listed in ``COMMAND_MODULES``.
"""
