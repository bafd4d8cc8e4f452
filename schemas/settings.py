"""Settings every syncpipe service shares: where the log and Redis are, topic prefix, auth.

Service-specific settings live in each service's own ``settings.py`` under
``SYNCPIPE_<SERVICE>_``; these are the deployment-wide ones under ``SYNCPIPE_``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.readmodel import DEFAULT_REDIS_PREFIX
from schemas.topics import DEFAULT_PREFIX, Topics

DEV_JWT_SECRET = "syncpipe-dev-secret-not-for-production"


class SettingsError(ValueError):
    """The configuration is unusable; the message names the variable to set."""


class SharedSettings(BaseSettings):
    """Deployment-wide settings read by every service."""

    model_config = SettingsConfigDict(env_prefix="SYNCPIPE_", frozen=True, extra="ignore")

    env: Literal["dev", "prod"] = Field(
        default="dev",
        description=(
            "Deployment mode. 'dev' allows the built-in dev JWT secret; 'prod' requires "
            "SYNCPIPE_JWT_SECRET (HS256) or SYNCPIPE_JWT_PUBLIC_KEY (RS256)."
        ),
    )
    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092",
        description=(
            "Kafka bootstrap servers (host:port, comma-separated): the embedded broker by "
            "default, or a real Kafka/Redpanda cluster."
        ),
    )
    redis_url: str | None = Field(
        default=None,
        description=(
            "Redis URL for the read model, op-id dedupe and rate limits. Unset: `syncpipe "
            "dev` starts an embedded Redis server."
        ),
    )
    redis_prefix: str = Field(
        default=DEFAULT_REDIS_PREFIX,
        description="Prefix of every Redis key syncpipe writes (read model, dedupe, rate limits).",
    )
    topic_prefix: str = Field(
        default=DEFAULT_PREFIX,
        description="Prefix of every topic name (ops, entities, conflicts, receipts, ops.dlq).",
    )
    jwt_algorithm: Literal["HS256", "RS256"] = Field(
        default="HS256", description="JWT signature algorithm accepted by ingest and push."
    )
    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 signing secret. Unset in dev mode: a fixed, public dev secret is used.",
    )
    jwt_public_key: str | None = Field(
        default=None, description="RS256 public key (PEM) used to verify tokens."
    )
    jwt_issuer: str = Field(default="syncpipe", description="Expected and minted 'iss' claim.")
    jwt_leeway_s: int = Field(
        default=30, ge=0, le=600, description="Clock leeway when checking token expiry, seconds."
    )

    @model_validator(mode="after")
    def _secrets_required_outside_dev(self) -> SharedSettings:
        if self.jwt_secret is not None and len(self.jwt_secret.get_secret_value().encode()) < 32:
            raise SettingsError("SYNCPIPE_JWT_SECRET must be at least 32 bytes for HS256")
        if self.env == "prod":
            if self.jwt_algorithm == "HS256" and self.jwt_secret is None:
                raise SettingsError(
                    "SYNCPIPE_JWT_SECRET is required when SYNCPIPE_ENV=prod and "
                    "SYNCPIPE_JWT_ALGORITHM=HS256"
                )
            if self.jwt_algorithm == "RS256" and not self.jwt_public_key:
                raise SettingsError(
                    "SYNCPIPE_JWT_PUBLIC_KEY is required when SYNCPIPE_JWT_ALGORITHM=RS256"
                )
        return self

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    def hs256_secret(self) -> str:
        """The HS256 secret in force (the dev secret when unset in dev mode)."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if self.env == "dev":
            return DEV_JWT_SECRET
        raise SettingsError("SYNCPIPE_JWT_SECRET is required when SYNCPIPE_ENV=prod")
