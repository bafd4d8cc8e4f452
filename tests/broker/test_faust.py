"""faust conformance: a worker with a table is restarted and recovers the table from its
compacted changelog (CreateTopics v3 with configs, faust's own assignor, ListOffsets,
reading the changelog from the start)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

# kafka-python 3.0 reads its protocol schemas with the legacy importlib.resources API.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "(read|open)_text is deprecated", DeprecationWarning)
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.processes import wait_until

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings("ignore:(read|open)_text is deprecated:DeprecationWarning"),
]

APP = Path(__file__).with_name("faust_app.py")
CHANGELOG = "sp-faust-test-counts-changelog"


def _worker(bootstrap: str, dump: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BOOTSTRAP": bootstrap, "DUMP": str(dump), "PYTHONWARNINGS": "ignore"}
    out = open(log, "ab")  # noqa: SIM115 - owned by the subprocess
    proc = subprocess.Popen(
        [sys.executable, str(APP), "worker", "--loglevel", "info", "--without-web"],
        cwd=dump.parent,
        env=env,
        stdout=out,
        stderr=out,
    )
    out.close()
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _dump_until(producer, dump: Path, expected: dict[str, int], log: Path) -> None:
    deadline = time.monotonic() + 45
    last = None
    while time.monotonic() < deadline:
        producer.send("words", key=b"x", value=b'"!dump"').get(10)
        if dump.exists():
            last = json.loads(dump.read_text())
            if last == expected:
                return
        time.sleep(0.5)
    raise AssertionError(f"table {last} != {expected}\n{log.read_text()[-3000:]}")


def _wait_ready(worker: subprocess.Popen[bytes], log: Path) -> None:
    wait_until(
        lambda: log.read_text().count("Worker ready") >= 1 or worker.poll() is not None,
        timeout=60,
        what="faust worker ready",
    )
    assert worker.poll() is None, log.read_text()[-3000:]


def _wait_committed(bootstrap: str) -> None:
    """faust is at-least-once: records processed but not yet committed when a worker
    stops are processed again by the next one. Wait for the commit of everything so the
    recovered table can be compared exactly."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id="sp-faust-test")
    tp = TopicPartition("words", 0)
    try:
        end = c.end_offsets([tp])[tp]
        wait_until(lambda: (c.committed(tp) or 0) >= end, timeout=30, what="faust commit")
    finally:
        c.close()


def test_faust_table_recovers_from_compacted_changelog_after_restart(broker_factory, tmp_path):
    b = broker_factory(
        env={
            "SYNCPIPE_BROKER_CLEANUP_INTERVAL_MS": "200",
            "SYNCPIPE_BROKER_SEGMENT_BYTES": "4096",
        }
    )
    dump = tmp_path / "table.json"
    log = tmp_path / "faust.log"
    producer = KafkaProducer(bootstrap_servers=b.bootstrap, acks="all")
    worker = _worker(b.bootstrap, dump, log)
    try:
        # produce only once the worker is ready: records fetched while faust is still
        # recovering are processed again after its seek to the committed offset
        _wait_ready(worker, log)
        for i in range(300):
            producer.send("words", key=b"x", value=json.dumps(f"w{i % 5}").encode())
        producer.flush()
        _dump_until(producer, dump, {f"w{k}": 60 for k in range(5)}, log)
        _wait_committed(b.bootstrap)
    finally:
        _stop(worker)

    changelog = b.data_dir / "topics" / CHANGELOG
    meta = json.loads((changelog / "topic.json").read_text())
    assert meta["configs"].get("cleanup.policy") == "compact"
    wait_until(
        lambda: f"compacted  topic={CHANGELOG}" in b.log(), timeout=20, what="changelog compaction"
    )

    dump.unlink()
    worker = _worker(b.bootstrap, dump, log)  # fresh memory store: must replay the changelog
    try:
        # only "!dump" records now: faust may process a record twice around recovery
        # (at-least-once), and dumping is idempotent, so the table must match exactly
        _dump_until(producer, dump, {f"w{k}": 60 for k in range(5)}, log)
    finally:
        _stop(worker)
        producer.close()
