"""Per-topic log configuration: Kafka config names over broker defaults."""

from __future__ import annotations

from dataclasses import dataclass

from broker.settings import BrokerSettings

# Topic-level config names we understand, with how to read the broker default.
KNOWN_CONFIGS: tuple[str, ...] = (
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "delete.retention.ms",
    "min.compaction.lag.ms",
    "message.timestamp.type",
    "max.message.bytes",
    "min.insync.replicas",
    "compression.type",
)


def broker_defaults(s: BrokerSettings) -> dict[str, str]:
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(s.retention_ms),
        "retention.bytes": str(s.retention_bytes),
        "segment.bytes": str(s.segment_bytes),
        "segment.ms": str(s.segment_ms),
        "delete.retention.ms": str(s.delete_retention_ms),
        "min.compaction.lag.ms": "0",
        "message.timestamp.type": "CreateTime",
        "max.message.bytes": str(min(s.max_request_bytes, 1024 * 1024 * 64)),
        "min.insync.replicas": "1",
        "compression.type": "producer",
    }


@dataclass(frozen=True, slots=True)
class LogConfig:
    compact: bool
    delete: bool
    retention_ms: int
    retention_bytes: int
    segment_bytes: int
    segment_ms: int
    delete_retention_ms: int
    min_compaction_lag_ms: int
    log_append_time: bool
    max_message_bytes: int
    index_interval_bytes: int

    @classmethod
    def build(cls, overrides: dict[str, str], settings: BrokerSettings) -> LogConfig:
        """Parse topic configs; ValueError names the bad one."""
        merged = broker_defaults(settings) | overrides
        policies = {p.strip() for p in merged["cleanup.policy"].split(",") if p.strip()}
        if not policies <= {"compact", "delete"}:
            raise ValueError(f"cleanup.policy must be compact and/or delete, got {policies}")
        ts_type = merged["message.timestamp.type"]
        if ts_type not in ("CreateTime", "LogAppendTime"):
            raise ValueError("message.timestamp.type must be CreateTime or LogAppendTime")

        def num(name: str, lo: int) -> int:
            try:
                v = int(merged[name])
            except ValueError as exc:
                raise ValueError(f"{name} must be an integer") from exc
            if v < lo:
                raise ValueError(f"{name} must be >= {lo}")
            return v

        return cls(
            compact="compact" in policies,
            delete="delete" in policies,
            retention_ms=num("retention.ms", -1),
            retention_bytes=num("retention.bytes", -1),
            segment_bytes=num("segment.bytes", 1024),
            segment_ms=num("segment.ms", 1),
            delete_retention_ms=num("delete.retention.ms", 0),
            min_compaction_lag_ms=num("min.compaction.lag.ms", 0),
            log_append_time=ts_type == "LogAppendTime",
            max_message_bytes=num("max.message.bytes", 0),
            index_interval_bytes=settings.index_interval_bytes,
        )
