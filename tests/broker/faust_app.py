"""A faust worker with a table, run as a subprocess by test_faust.py.

Env: BOOTSTRAP (host:port), DUMP (file the table is written to on a "!dump" record).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import faust

app = faust.App(
    "sp-faust-test",
    broker=f"kafka://{os.environ['BOOTSTRAP']}",
    store="memory://",
    topic_partitions=1,
    topic_replication_factor=1,
    web_enabled=False,
    producer_acks=-1,
    broker_commit_interval=0.3,
)
words = app.topic("words", key_type=str, value_type=str, partitions=1)
counts = app.Table("counts", default=int, partitions=1)


@app.agent(words)
async def count(stream):  # type: ignore[no-untyped-def]
    async for word in stream:
        if word == "!dump":
            dump = Path(os.environ["DUMP"])
            tmp = dump.with_suffix(".tmp")
            tmp.write_text(json.dumps(dict(counts.items())))
            tmp.rename(dump)
        else:
            counts[word] += 1


if __name__ == "__main__":
    app.main()
