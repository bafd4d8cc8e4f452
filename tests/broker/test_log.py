"""Partition log on disk: roll, indexes, recovery of torn tails, durable high watermark."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker import errors
from broker.codec import records
from broker.log.config import LogConfig
from broker.log.flush import Flusher
from broker.log.partition import PartitionLog
from broker.settings import BrokerSettings


def _batch(
    i: int, n: int = 1, size: int = 10, ts: int | None = None, pid: int = -1, seq: int = -1
) -> tuple[bytearray, records.BatchHeader]:
    recs = [records.Record(j, 0, f"k{i}".encode(), bytes([i % 256]) * size) for j in range(n)]
    t = 1_000 + i if ts is None else ts
    data = bytearray(
        records.encode_batch(
            recs,
            base_offset=0,
            base_timestamp=t,
            max_timestamp=t,
            producer_id=pid,
            producer_epoch=0 if pid >= 0 else -1,
            base_sequence=seq,
        )
    )
    return data, records.validate(data)


def _log(path: Path, policy: str = "never", **overrides: str) -> PartitionLog:
    settings = BrokerSettings(data_dir=path, index_interval_bytes=256, segment_bytes=4096)
    cfg = LogConfig.build(dict(overrides), settings)
    return PartitionLog("t", 0, path / "t" / "0", cfg, Flusher(policy, 1000))  # type: ignore[arg-type]


async def test_log_rolls_segments_and_reads_across_them(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for i in range(100):
        assert log.append([_batch(i, size=100)]).base_offset == i
    assert len(log.segments) > 3
    for offset in (0, 37, 99):
        err, data = log.read(offset, 1)
        assert err == errors.NONE
        assert records.parse_header(data).base_offset == offset
    err, data = log.read(10, 1 << 20)
    first = records.split_batches(data)
    assert records.parse_header(first[0]).base_offset == 10
    assert log.read(101, 100)[0] == errors.OFFSET_OUT_OF_RANGE
    assert log.read(100, 100) == (errors.NONE, b"")


async def test_log_recovery_truncates_torn_tail_and_rebuilds_index(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for i in range(50):
        log.append([_batch(i, size=50)])
    active = log.active.path
    log.close()
    whole, _ = _batch(99, size=50)
    active.write_bytes(active.read_bytes() + bytes(whole[: len(whole) // 2]))  # cut short
    reopened = _log(tmp_path)
    assert reopened.log_end_offset == 50
    assert active.stat().st_size == reopened.active.size
    assert reopened.append([_batch(50)]).base_offset == 50
    _err, data = reopened.read(25, 1)
    assert records.parse_header(data).base_offset == 25


async def test_log_recovery_drops_corrupt_batch_and_everything_after(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for i in range(5):
        log.append([_batch(i)])
    path = log.active.path
    positions = [p for p, _ in log.active.batches()]
    log.close()
    raw = bytearray(path.read_bytes())
    raw[positions[3] + 70] ^= 0xFF  # flip a byte inside batch 3's records
    path.write_bytes(bytes(raw))
    reopened = _log(tmp_path)
    assert reopened.log_end_offset == 3


async def test_log_lookup_by_timestamp_finds_first_record_at_or_after(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for i in range(30):
        log.append([_batch(i, n=3, ts=10_000 + 100 * i, size=80)])
    assert log.lookup_timestamp(10_000 + 100 * 7 + 1) == (10_800, 24)
    assert log.lookup_timestamp(0) == (10_000, 0)
    assert log.lookup_timestamp(99_999) == (-1, -1)


async def test_group_policy_high_watermark_follows_fsync(tmp_path: Path) -> None:
    log = _log(tmp_path, policy="group")
    log.append([_batch(0)])
    assert log.high_watermark == 0, "data is invisible until it is durable"
    await log.flusher.durable()
    assert log.high_watermark == 1


async def test_idempotent_duplicates_and_gaps(tmp_path: Path) -> None:
    log = _log(tmp_path)
    assert log.append([_batch(0, n=2, pid=7, seq=0)]).base_offset == 0
    assert log.append([_batch(1, n=2, pid=7, seq=2)]).base_offset == 2
    again = log.append([_batch(1, n=2, pid=7, seq=2)])
    assert (again.error, again.base_offset) == (errors.NONE, 2), "retry is deduplicated"
    gap = log.append([_batch(2, pid=7, seq=9)])
    assert gap.error == errors.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log.log_end_offset == 4
    log.close()
    reopened = _log(tmp_path)
    assert reopened.append([_batch(1, n=2, pid=7, seq=2)]).base_offset == 2, "state rebuilt"
    assert reopened.append([_batch(3, pid=7, seq=4)]).base_offset == 4


@pytest.mark.parametrize("bad", [{"cleanup.policy": "shred"}, {"retention.ms": "soon"}])
def test_bad_topic_config_is_rejected(tmp_path: Path, bad: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        LogConfig.build(bad, BrokerSettings(data_dir=tmp_path))


async def test_restart_loads_closed_segment_indexes_and_scans_only_the_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from broker.log import recovery

    log = _log(tmp_path)
    assert log.append([_batch(0, n=2, pid=7, seq=0)]).base_offset == 0
    for i in range(1, 120):
        log.append([_batch(i, size=100)])
    assert len(log.segments) > 4
    log.close()
    scanned: list[int] = []
    real_scan = recovery._scan

    def spy(seg, check_crc, producers):  # type: ignore[no-untyped-def]
        scanned.append(seg.base_offset)
        return real_scan(seg, check_crc, producers)

    monkeypatch.setattr(recovery, "_scan", spy)
    reopened = _log(tmp_path)
    assert scanned == [s.base_offset for s in reopened.segments[-2:]]
    assert reopened.log_end_offset == 121
    for offset in (0, 2, 50, 120):
        _, data = reopened.read(offset, 1)
        assert records.parse_header(data).last_offset >= offset
    assert reopened.lookup_timestamp(1_000 + 60) == (1_060, 61)
    retry = reopened.append([_batch(0, n=2, pid=7, seq=0)])
    assert retry.base_offset == 0, "producer state came from the snapshot"


async def test_stale_index_file_is_ignored_and_rebuilt(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for i in range(120):
        log.append([_batch(i, size=100)])
    first = log.segments[0]
    index_path = first.index_paths()[0]
    log.close()
    index_path.write_bytes(index_path.read_bytes()[:-3])  # torn index
    reopened = _log(tmp_path)
    assert reopened.log_end_offset == 120
    _, data = reopened.read(3, 1)
    assert records.parse_header(data).base_offset == 3
    header, entry = 28, 16
    assert (len(index_path.read_bytes()) - header) % entry == 0, "rewritten whole"
