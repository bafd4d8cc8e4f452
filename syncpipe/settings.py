"""Settings of the command line itself (logging)."""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)


class CliSettings(BaseSettings):
    """How the ``syncpipe`` processes log."""

    model_config = SettingsConfigDict(env_prefix="SYNCPIPE_LOG_", frozen=True, extra="ignore")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of every syncpipe process."
    )
    format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="Log format: 'auto' prints text on a terminal and JSON lines otherwise.",
    )


class ConfigError(Exception):
    """Settings from the environment are invalid; the message names each variable."""


def load_settings(cls: type[S]) -> S:
    """Build ``cls`` from the environment, translating validation errors to env var names."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", "")).upper()
        problems = []
        for err in exc.errors():
            loc = "_".join(str(p) for p in err["loc"]).upper()
            msg = str(err["msg"]).removeprefix("Value error, ")
            if not loc:  # a cross-field rule; its message names the variables
                problems.append(msg)
                continue
            given = err.get("input")
            shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
            problems.append(f"{prefix}{loc}: {msg}{shown}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from exc
