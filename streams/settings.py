"""Settings of the streams worker and replay tools (``SYNCPIPE_STREAMS_*``).

Deployment-wide settings (Kafka bootstrap, Redis URL, prefixes) are
:class:`schemas.settings.SharedSettings`; these are the ones only streams reads.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StreamsSettings(BaseSettings):
    """How the Faust worker reconciles ops and materializes entity state."""

    model_config = SettingsConfigDict(env_prefix="SYNCPIPE_STREAMS_", frozen=True, extra="ignore")

    app_id: str = Field(
        default="streams",
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description=(
            "Faust app id under the topic prefix: the consumer group is "
            "'{SYNCPIPE_TOPIC_PREFIX}{app_id}' and the table changelog "
            "'{SYNCPIPE_TOPIC_PREFIX}{app_id}-entities-changelog'."
        ),
    )
    partitions: int = Field(
        default=4,
        ge=1,
        le=1024,
        description=(
            "Partitions of the topics streams creates when missing (ops, entities, "
            "conflicts, receipts, ops.dlq). An existing ops topic keeps its count and the "
            "table follows it."
        ),
    )
    replication_factor: int = Field(
        default=1, ge=1, le=16, description="Replication factor of the topics streams creates."
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        default="at_least_once",
        description=(
            "Faust processing guarantee. at_least_once is made effectively-once by "
            "idempotent LWW apply; exactly_once needs a Kafka with transactions (the "
            "embedded broker has none)."
        ),
    )
    commit_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="How often consumed offsets are committed, seconds."
    )
    session_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description=(
            "Consumer group session timeout, seconds: how long a dead worker keeps its "
            "partitions before the group moves them to the others."
        ),
    )
    reconcile_batch_size: int = Field(
        default=1000,
        ge=1,
        le=10_000,
        description="Most ops reconciled per batch (their outputs are produced together).",
    )
    reconcile_linger_ms: int = Field(
        default=5,
        ge=0,
        le=10_000,
        description="Longest wait to fill an ops batch before reconciling it, milliseconds.",
    )
    fetch_max_wait_ms: int = Field(
        default=50,
        ge=1,
        le=1500,
        description=(
            "Longest a worker's Kafka fetch waits for new records, milliseconds (ops and "
            "entities consumers). A client keeps one fetch in flight per broker and leaves "
            "out partitions whose records are still queued, so while one waits for data "
            "that does not come, newly arrived ops wait for it to time out: this bounds "
            "that wait (Faust's own default is 1,500)."
        ),
    )
    materialize_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Entity states written to Redis per batch."
    )
    materialize_linger_ms: int = Field(
        default=20,
        ge=0,
        le=10_000,
        description="Longest wait to fill a read-model batch before writing it, milliseconds.",
    )
    metrics_port: int = Field(
        default=9193,
        ge=0,
        le=65535,
        description="Port of the Prometheus /metrics endpoint (0: off).",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Address the /metrics endpoint listens on."
    )
    lag_interval_s: float = Field(
        default=2.0, gt=0, le=300, description="How often consumer lag is measured, seconds."
    )
    web_enabled: bool = Field(
        default=False, description="Serve Faust's own web UI (debug only; /metrics is separate)."
    )
    web_port: int = Field(
        default=6066, ge=1, le=65535, description="Port of Faust's web UI when enabled."
    )
    topic_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="How long startup waits for the broker to create or describe topics.",
    )
