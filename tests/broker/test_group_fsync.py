"""Group commit over many partitions: one round makes every dirty file durable, the
files' fsyncs run side by side, and a file closed meanwhile does not hold the others."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from broker.codec import records
from broker.log import flush
from broker.log.config import LogConfig
from broker.log.flush import Flusher
from broker.log.partition import PartitionLog
from broker.settings import BrokerSettings


def _batch(i: int) -> tuple[bytearray, records.BatchHeader]:
    data = bytearray(
        records.encode_batch(
            [records.Record(0, 0, f"k{i}".encode(), b"v" * 20)],
            base_offset=0,
            base_timestamp=1_000 + i,
            max_timestamp=1_000 + i,
        )
    )
    return data, records.validate(data)


def _logs(path: Path, flusher: Flusher, n: int) -> list[PartitionLog]:
    cfg = LogConfig.build({}, BrokerSettings(data_dir=path))
    return [PartitionLog("t", i, path / "t" / str(i), cfg, flusher) for i in range(n)]


async def test_one_round_makes_every_partition_durable(tmp_path: Path) -> None:
    flusher = Flusher("group", 1000)
    logs = _logs(tmp_path, flusher, 12)
    for i, log in enumerate(logs):
        log.append([_batch(i)])
        log.append([_batch(i)])
    assert all(log.high_watermark == 0 for log in logs), "nothing visible before the fsync"
    before = flusher.fsyncs
    await flusher.durable()
    assert [log.high_watermark for log in logs] == [2] * 12
    assert flusher.fsyncs - before == 12, "each dirty file is fsynced once in the round"
    await flusher.close()


@pytest.mark.parametrize("threads", [4, 3])
async def test_the_fsyncs_of_a_round_overlap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    """Every thread of the round must be inside an fsync at the same moment, or the
    barrier breaks and the round fails (as it would if the files went one by one)."""
    flusher = Flusher("group", 1000, threads)
    logs = _logs(tmp_path, flusher, 2 * threads)
    barrier = threading.Barrier(threads, timeout=10)
    names: set[str] = set()
    real_fsync = os.fsync

    def fsync_together(fd: int) -> None:
        names.add(threading.current_thread().name)
        barrier.wait()
        real_fsync(fd)

    monkeypatch.setattr(flush.os, "fsync", fsync_together)
    for i, log in enumerate(logs):
        log.append([_batch(i)])
    await flusher.durable()
    assert [log.high_watermark for log in logs] == [1] * len(logs)
    assert len(names) == threads
    await flusher.close()


async def test_a_file_closed_during_the_round_does_not_hold_the_others(tmp_path: Path) -> None:
    flusher = Flusher("group", 1000)
    logs = _logs(tmp_path, flusher, 6)
    for i, log in enumerate(logs):
        log.append([_batch(i)])
    os.close(logs[3].active.fd)  # as retention or a delete would, between mark and round
    await flusher.durable()
    assert [log.high_watermark for log in logs] == [1] * 6
    await flusher.close()


async def test_one_thread_fsyncs_the_files_one_after_another(tmp_path: Path) -> None:
    flusher = Flusher("group", 1000, threads=1)
    logs = _logs(tmp_path, flusher, 5)
    for i, log in enumerate(logs):
        log.append([_batch(i)])
    await flusher.durable()
    assert [log.high_watermark for log in logs] == [1] * 5
    assert flusher.fsyncs == 5
    await flusher.close()


def test_the_broker_takes_its_fsync_threads_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    from broker.server import Broker

    monkeypatch.delenv("SYNCPIPE_BROKER_FSYNC_THREADS", raising=False)
    default = BrokerSettings(data_dir=tmp_path / "d", port=0, metrics_port=0)
    assert Broker(default).flusher.threads == 1, "one thread unless told otherwise"
    monkeypatch.setenv("SYNCPIPE_BROKER_FSYNC_THREADS", "3")
    settings = BrokerSettings(data_dir=tmp_path / "d", port=0, metrics_port=0)
    assert Broker(settings).flusher.threads == 3
    assert Broker(settings.model_copy(update={"fsync_threads": 6})).flusher.threads == 6
    monkeypatch.setenv("SYNCPIPE_BROKER_FSYNC_THREADS", "0")
    with pytest.raises(ValidationError, match="fsync_threads"):
        BrokerSettings(data_dir=tmp_path / "d", port=0, metrics_port=0)
