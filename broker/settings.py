"""Settings of the embedded broker (``SYNCPIPE_BROKER_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.log import syncfs

FsyncPolicy = Literal["group", "always", "interval", "never"]
FsyncMethod = Literal["auto", "fsync", "syncfs"]


class BrokerSettings(BaseSettings):
    """How the embedded Kafka-compatible broker listens, stores and retains data."""

    model_config = SettingsConfigDict(env_prefix="SYNCPIPE_BROKER_", frozen=True, extra="ignore")

    host: str = Field(
        default="127.0.0.1",
        description="Address to listen on and advertise. Loopback only: the broker has no auth.",
    )
    port: int = Field(default=9092, ge=0, le=65535, description="Kafka protocol port.")
    data_dir: Path = Field(
        default=Path("./.syncpipe/broker"), description="Directory holding topics and offsets."
    )
    node_id: int = Field(default=0, ge=0, description="Node id reported in Metadata.")
    cluster_id: str = Field(default="syncpipe-embedded", description="Cluster id in Metadata.")
    default_partitions: int = Field(
        default=1, ge=1, le=1024, description="Partitions of auto-created topics."
    )
    auto_create_topics: bool = Field(
        default=True, description="Create unknown topics on Metadata and Produce."
    )
    fsync: FsyncPolicy = Field(
        default="group",
        description=(
            "When acknowledged data reaches disk: 'group' batches concurrent produces into "
            "one fsync before acking, 'always' fsyncs each append inline, 'interval' fsyncs "
            "every fsync_interval_ms (acks do not wait), 'never' leaves it to the OS."
        ),
    )
    fsync_interval_ms: int = Field(
        default=1000, ge=1, description="Flush period of the 'interval' fsync policy."
    )
    fsync_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Threads sharing the fsyncs of one group-commit round (or interval flush) when "
            "the round fsyncs file by file (fsync_method 'fsync', or no syncfs). 1 fsyncs a "
            "round's files one after another, the cheapest in CPU; more finish a round "
            "sooner on a slow or busy disk."
        ),
    )
    fsync_method: FsyncMethod = Field(
        default="auto",
        description=(
            "How a group-commit round (or interval flush) makes its files durable: 'syncfs' "
            "flushes the filesystem holding them in one call, one journal commit for all of "
            "the round's files (Linux only; it also writes out what other programs left "
            "unflushed on that filesystem); 'fsync' flushes each file on its own; 'auto' "
            "uses syncfs on Linux on ext4, ext3, xfs, btrfs, f2fs and tmpfs, fsync "
            "elsewhere (FUSE and network filesystems may not flush on syncfs). A lone file "
            "is fsynced either way."
        ),
    )
    segment_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Roll a segment at this size."
    )
    segment_ms: int = Field(
        default=7 * 24 * 3600 * 1000, ge=1, description="Roll a segment at this age."
    )
    index_interval_bytes: int = Field(
        default=4096, ge=1, description="Bytes of log between sparse index entries."
    )
    retention_ms: int = Field(
        default=7 * 24 * 3600 * 1000,
        ge=-1,
        description="Default retention.ms of topics (-1 keeps data forever).",
    )
    retention_bytes: int = Field(
        default=-1, ge=-1, description="Default retention.bytes per partition (-1: unlimited)."
    )
    delete_retention_ms: int = Field(
        default=24 * 3600 * 1000,
        ge=0,
        description="Default delete.retention.ms: how long compaction keeps tombstones.",
    )
    cleanup_interval_ms: int = Field(
        default=30_000, ge=10, description="Period of the retention and compaction pass."
    )
    max_request_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1024,
        description="Largest request frame accepted; larger ones close the connection.",
    )
    max_in_flight_requests: int = Field(
        default=64, ge=1, description="Pipelined requests processed per connection at once."
    )
    metrics_port: int = Field(
        default=9192, ge=0, le=65535, description="Port of the /metrics HTTP endpoint (0: off)."
    )
    group_min_session_timeout_ms: int = Field(
        default=6000, ge=1, description="Smallest session timeout a group member may ask for."
    )
    group_max_session_timeout_ms: int = Field(
        default=1_800_000, ge=1, description="Largest session timeout a group member may ask for."
    )
    group_initial_rebalance_delay_ms: int = Field(
        default=0, ge=0, description="Wait for more members before the first rebalance of a group."
    )
    offsets_retention_ms: int = Field(
        default=7 * 24 * 3600 * 1000,
        ge=-1,
        description="Committed offsets of empty groups expire after this (-1: never).",
    )

    @field_validator("fsync_method")
    @classmethod
    def _syncfs_exists(cls, method: FsyncMethod) -> FsyncMethod:
        if method == "syncfs" and not syncfs.available():
            raise ValueError("syncfs is a Linux system call, not available here: use auto or fsync")
        return method
