"""Settings of the command line itself (logging)."""

from __future__ import annotations

from pathlib import Path
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


class DevSettings(BaseSettings):
    """Where ``syncpipe dev`` puts each component on this machine."""

    model_config = SettingsConfigDict(env_prefix="SYNCPIPE_DEV_", frozen=True, extra="ignore")

    data_dir: Path = Field(
        default=Path(".syncpipe"),
        description="Directory for the embedded broker's log, Redis data and component logs.",
    )
    kafka_port: int = Field(
        default=9092, ge=1, le=65535, description="Port of the embedded broker."
    )
    redis_port: int = Field(
        default=6399, ge=1, le=65535, description="Port of the embedded Redis server."
    )
    ingest_port: int = Field(default=8080, ge=1, le=65535, description="Port of ingest.")
    push_port: int = Field(default=8081, ge=1, le=65535, description="Port of push.")
    pwa_port: int = Field(
        default=5173, ge=1, le=65535, description="Port serving the built PWA and /config.js."
    )
    tenant: str = Field(default="dev", description="Tenant of the printed dev token.")
    user: str = Field(default="dev", description="User of the printed dev token.")
    ready_timeout_s: float = Field(
        default=60.0, gt=0, description="How long each component may take to become ready."
    )
