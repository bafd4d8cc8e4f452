"""Settings of the ingest service (``SYNCPIPE_INGEST_*``).

Deployment-wide settings (Kafka bootstrap, Redis URL, prefixes, JWT) are
:class:`schemas.settings.SharedSettings`; these are the ones only ingest reads.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseSettings):
    """How the ingest HTTP service listens, limits clients and talks to Kafka and Redis."""

    model_config = SettingsConfigDict(env_prefix="SYNCPIPE_INGEST_", frozen=True, extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(default=8080, ge=0, le=65535, description="HTTP port of the ingest API.")
    node: str = Field(
        default="ingest",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description=(
            "Node name of the server HLC returned as server_hlc; give each replica its own "
            "(e.g. ingest-1) so their timestamps never tie."
        ),
    )
    max_clock_skew_ms: int = Field(
        default=60_000,
        ge=0,
        description=(
            "Reject an op whose HLC wall time is more than this many ms ahead of the server "
            "clock (per-op code clock_skew; the client adopts server_hlc and retries)."
        ),
    )
    rate_limit_ops_per_s: float = Field(
        default=1000.0,
        gt=0,
        description="Sustained ops per second allowed per tenant and client_id (token refill).",
    )
    rate_limit_burst_ops: int = Field(
        default=2000,
        ge=1,
        description=(
            "Token bucket size per tenant and client_id: ops a client may send at once after "
            "being idle. A batch larger than this still passes once the bucket is full."
        ),
    )
    dedupe_ttl_s: int = Field(
        default=7 * 24 * 3600,
        ge=1,
        description=(
            "How long an accepted op_id is remembered, answering a resend with 'duplicate'. "
            "Cover the longest time a client may stay offline and retry."
        ),
    )
    claim_ttl_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Lifetime of the in-flight claim on an op_id while it is being produced; a claim "
            "left by a crashed replica expires after this."
        ),
    )
    produce_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Longest wait for the broker to acknowledge a batch (acks=all) before answering "
            "503; also the Kafka request timeout."
        ),
    )
    max_inflight_ops: int = Field(
        default=20_000,
        ge=1,
        description=(
            "Most ops being produced at once by this replica; beyond it the producer queue "
            "is full and requests get 503 with Retry-After."
        ),
    )
    producer_batch_bytes: int = Field(
        default=512 * 1024,
        ge=1024,
        le=1024 * 1024,
        description=(
            "Largest record batch per partition in one produce request; bigger batches carry "
            "more concurrent ops per acks=all round trip."
        ),
    )
    producer_linger_ms: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="How long the producer waits to fill a batch before sending it (ms).",
    )
    retry_after_s: int = Field(
        default=2,
        ge=1,
        description="Retry-After (seconds) sent with 503 when Kafka or Redis is unavailable.",
    )
    redis_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description=(
            "Socket timeout of Redis commands, and the longest a request waits for a free "
            "Redis connection, seconds."
        ),
    )
    redis_max_connections: int = Field(
        default=128,
        ge=1,
        description=(
            "Redis connections ingest keeps (op-id claims, rate limits, reads); more "
            "concurrent requests wait for one instead of failing."
        ),
    )
    readiness_timeout_s: float = Field(
        default=2.0, gt=0, description="Longest /readyz waits for the broker and Redis, seconds."
    )
    cors_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:5173", "http://127.0.0.1:5173"],
        description=(
            "Origins allowed to call the API from a browser (the PWA), as a JSON list; "
            "empty disables CORS."
        ),
    )
    access_log: bool = Field(default=False, description="Log every HTTP request (uvicorn).")

    @model_validator(mode="after")
    def _claim_outlives_produce(self) -> IngestSettings:
        if self.claim_ttl_s <= self.produce_timeout_s:
            raise ValueError(
                "SYNCPIPE_INGEST_CLAIM_TTL_S must be longer than "
                "SYNCPIPE_INGEST_PRODUCE_TIMEOUT_S, or a claim could expire while its op is "
                "still being produced"
            )
        return self
