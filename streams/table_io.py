"""Direct access to the in-memory entities table, with its changelog written by the caller.

Setting a key on a Faust table sends one changelog record per write through Faust's
producer buffer. The reconcile agent instead reads and writes the table's in-memory dict
and produces, per batch, the last record of each changed key to the changelog itself
(:mod:`streams.outputs`), on the partition of the op that changed it, which is the
partition Faust would have chosen and the one recovery restores it from.
"""

from __future__ import annotations

from typing import Any

from streams.errors import StreamsError


class RawTable:
    """The entities table's dict and changelog topic name."""

    def __init__(self, table: Any) -> None:
        self._table = table  # faust Table over a memory:// store
        self.topic: str = table.changelog_topic.get_topic_name()

    def store(self) -> dict[bytes, bytes]:
        """The dict Faust recovers the changelog into (fetched per batch: a rebalance may
        replace the store object)."""
        data = getattr(self._table.data, "data", None)
        if not isinstance(data, dict):
            raise StreamsError(
                "the entities table is not an in-memory store; streams needs store='memory://'"
            )
        return data
