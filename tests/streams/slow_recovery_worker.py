"""``python -m streams`` with the end of table recovery held open (fault injection for tests).

Between the moment recovery pauses the changelog partitions and the moment it resumes the
stream partitions, the worker has no active partition at all. Sleeping
``SYNCPIPE_TEST_RECOVERY_PAUSE_S`` there widens that window from microseconds to seconds,
and delaying each fetch call by ``SYNCPIPE_TEST_FETCH_DELAY_S`` (a busy consumer thread)
makes one asked for before the window run inside it, as happens now and then under load.
"""

from __future__ import annotations

import asyncio
import os
import runpy
import sys
from typing import Any

from faust.tables.base import Collection
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

_pause_s = float(os.environ.get("SYNCPIPE_TEST_RECOVERY_PAUSE_S", "1.0"))
_completed = Collection.on_recovery_completed


async def _slow_completed(self: Any, active_tps: Any, standby_tps: Any) -> None:
    await asyncio.sleep(_pause_s)
    await _completed(self, active_tps, standby_tps)


_fetch_delay_s = float(os.environ.get("SYNCPIPE_TEST_FETCH_DELAY_S", "0.2"))
_fetch_records = AIOKafkaConsumerThread._fetch_records


async def _late_fetch_records(self: Any, *args: Any, **kwargs: Any) -> Any:
    await asyncio.sleep(_fetch_delay_s)  # a busy consumer thread takes the call late
    return await _fetch_records(self, *args, **kwargs)


# The fault injection itself: these methods are replaced for this worker process only
# (mypy forbids assigning to a method, which is exactly what is meant here).
Collection.on_recovery_completed = _slow_completed  # type: ignore[method-assign]
AIOKafkaConsumerThread._fetch_records = _late_fetch_records  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.argv = ["streams"]
    runpy.run_module("streams", run_name="__main__")
