"""Settings of the push service (``SYNCPIPE_PUSH_*``).

Deployment-wide settings (Kafka bootstrap, Redis URL, prefixes, JWT) are
:class:`schemas.settings.SharedSettings`; these are the ones only push reads. Build them
in the CLI or a test and pass them to :func:`push.app.create_app`; nothing here is a
module-level instance.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _app_version() -> str:
    try:
        return version("syncpipe")
    except PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


class PushSettings(BaseSettings):
    """How the push WebSocket service listens, limits each connection and buffers events."""

    model_config = SettingsConfigDict(env_prefix="SYNCPIPE_PUSH_", frozen=True, extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the push server listens on.")
    port: int = Field(default=8081, ge=0, le=65535, description="Port of the push server.")
    node: str = Field(
        default="push",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description=(
            "Node name of the server HLC sent in hello; give each replica its own "
            "(e.g. push-1) so their timestamps never tie."
        ),
    )
    app_version: str = Field(
        default_factory=_app_version,
        description="Version announced in hello; clients offer a reload when it differs.",
    )
    max_bps: int = Field(
        default=256 * 1024,
        ge=1,
        description=(
            "Outbound bytes per second per connection (token bucket refill; counts the JSON "
            "payload of each frame). Over budget, entity updates are conflated."
        ),
    )
    burst_bytes: int = Field(
        default=128 * 1024,
        ge=1,
        description=(
            "Token bucket size per connection: bytes it may send at once after being quiet. "
            "A single frame larger than this (a big snapshot) is sent when the bucket is "
            "full and paid back before anything else goes out."
        ),
    )
    overload_grace_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "How long a connection may stay unable to drain its queue (throttled or not "
            "reading) before it gets disconnect_notice and close 4000."
        ),
    )
    retry_after_ms: int = Field(
        default=2000,
        ge=0,
        description="retry_after_ms announced in disconnect_notice (clients add jitter).",
    )
    max_queued_entities: int = Field(
        default=10_000,
        ge=1,
        description=(
            "Distinct entities one connection may have queued (each conflated to its latest "
            "state). Beyond it the connection is closed with a notice: a dropped state "
            "would be a silent gap."
        ),
    )
    max_queued_conflicts: int = Field(
        default=1_000,
        ge=1,
        description="Conflicts one connection may have queued; more are dropped and counted.",
    )
    max_queued_receipts: int = Field(
        default=1_000,
        ge=1,
        description="Receipts one connection may have queued; more are dropped and counted.",
    )
    recent_buffer_size: int = Field(
        default=1_000,
        ge=1,
        description=(
            "Entity events kept per tenant and collection for resume; a cursor older than "
            "the buffer gets a full snapshot instead (resumed=false)."
        ),
    )
    recent_buffer_collections: int = Field(
        default=10_000,
        ge=1,
        description="Tenant/collection buffers kept; the least recently updated go first.",
    )
    max_connections: int = Field(
        default=10_000,
        ge=1,
        description="Open WebSockets per replica; more are closed with 4003 (try again later).",
    )
    max_subscriptions: int = Field(
        default=64, ge=1, description="Collections one connection may subscribe to at once."
    )
    idle_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="Close (4001) a connection that sends no frame for this long; ping keeps it.",
    )
    max_frame_bytes: int = Field(
        default=16 * 1024,
        ge=64,
        description="Largest client frame accepted; larger ones close the connection (4500).",
    )
    max_client_messages_per_s: float = Field(
        default=20.0,
        gt=0,
        description=(
            "Client frames per second per connection (bucket of twice that); beyond it the "
            "connection is closed as a protocol violation (4500)."
        ),
    )
    max_bad_frames: int = Field(
        default=10,
        ge=1,
        description="Rejected client frames (error replies) before a protocol-violation close.",
    )
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:5173", "http://127.0.0.1:5173"],
        description=(
            "Browser origins allowed to open a WebSocket, as a JSON list ('*' allows any). "
            "Same-origin pages and clients sending no Origin are always allowed."
        ),
    )
    snapshot_scan_count: int = Field(
        default=1_000, ge=1, description="HSCAN COUNT hint when reading a snapshot from Redis."
    )
    redis_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description=(
            "Socket timeout of Redis commands, and the longest a snapshot read waits for a "
            "free Redis connection, seconds."
        ),
    )
    redis_max_connections: int = Field(
        default=32,
        ge=1,
        description=(
            "Redis connections push keeps for snapshot reads; more concurrent subscribes "
            "wait for one (e.g. every client resubscribing after a restart)."
        ),
    )
    fetch_max_wait_ms: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Longest the Kafka consumer waits for new records per fetch (latency).",
    )
    sweep_interval_s: float = Field(
        default=0.1,
        gt=0,
        le=5,
        description="How often idle timeouts and stuck writers are checked, seconds.",
    )
    close_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="Longest wait for a closing connection's last frames before dropping it.",
    )
    access_log: bool = Field(default=False, description="Log every HTTP request (uvicorn).")
