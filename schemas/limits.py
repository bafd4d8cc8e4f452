"""Size limits that are part of the data contract (mirrored in the JSON Schemas)."""

from __future__ import annotations

from typing import Final

MAX_OP_BYTES: Final = 64 * 1024
"""Largest serialized op (JSON, UTF-8) ingest accepts."""

MAX_BATCH_OPS: Final = 500
"""Most ops in one POST /v1/ops batch."""

MAX_BATCH_BYTES: Final = 1024 * 1024
"""Largest POST /v1/ops body."""

MAX_FIELDS_PER_OP: Final = 64
"""Most fields one upsert may set."""

MAX_ENTITY_ID_CHARS: Final = 128
"""Longest entity id."""
