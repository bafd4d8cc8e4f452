"""Settings of the command line itself (logging)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
