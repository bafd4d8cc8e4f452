"""Group commit over many partitions: one round makes every dirty file durable (one
syncfs per filesystem, or the files' fsyncs side by side), a file closed meanwhile does
not hold the others, and a failed flush acknowledges nothing."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from broker.codec import records
from broker.log import syncfs
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


def _device(path: Path) -> int | None:
    return path.stat().st_dev if path.is_dir() else None


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs is Linux's")


async def test_one_round_makes_every_partition_durable(tmp_path: Path) -> None:
    flusher = Flusher("group", 1000, method="fsync")
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


@linux_only
async def test_a_round_on_one_filesystem_is_one_syncfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert syncfs.available(), "Linux has syncfs"
    calls: list[int] = []
    real_syncfs = syncfs.syncfs

    def counted(fd: int) -> None:
        calls.append(fd)
        real_syncfs(fd)

    def no_fsync(fd: int) -> None:
        raise AssertionError("a round of several files on one filesystem needs no fsync")

    flusher = Flusher("group", 1000)  # method auto: syncfs where the system has it
    logs = _logs(tmp_path, flusher, 12)  # creating a partition fsyncs its directory
    monkeypatch.setattr(syncfs, "trusted", lambda device: True)  # whatever tmp_path is on
    monkeypatch.setattr(syncfs, "syncfs", counted)
    monkeypatch.setattr(os, "fsync", no_fsync)
    for i, log in enumerate(logs):
        log.append([_batch(i)])
    assert all(log.high_watermark == 0 for log in logs), "nothing visible before the flush"
    await flusher.durable()
    assert [log.high_watermark for log in logs] == [1] * 12
    assert len(calls) == 1
    assert flusher.fsyncs == 1
    await flusher.close()


@linux_only
async def test_a_lone_file_is_fsynced_not_its_whole_filesystem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_syncfs(fd: int) -> None:
        raise AssertionError("syncfs for a single file")

    monkeypatch.setattr(syncfs, "syncfs", no_syncfs)
    flusher = Flusher("group", 1000, method="syncfs")
    (log,) = _logs(tmp_path, flusher, 1)
    log.append([_batch(0)])
    await flusher.durable()
    assert log.high_watermark == 1
    assert flusher.fsyncs == 1
    await flusher.close()


@linux_only
async def test_files_on_two_filesystems_get_one_syncfs_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shm = Path("/dev/shm")
    if _device(shm) in (None, _device(tmp_path)):
        pytest.skip("needs a second filesystem (a tmpfs at /dev/shm)")
    devices: list[int] = []
    real_syncfs = syncfs.syncfs

    def counted(fd: int) -> None:
        devices.append(os.fstat(fd).st_dev)
        real_syncfs(fd)

    monkeypatch.setattr(syncfs, "syncfs", counted)
    flusher = Flusher("group", 1000, method="syncfs")
    other = shm / f"syncpipe-test-{os.getpid()}-{id(flusher)}"
    try:
        logs = _logs(tmp_path, flusher, 3) + _logs(other, flusher, 2)
        for i, log in enumerate(logs):
            log.append([_batch(i)])
        await flusher.durable()
        assert [log.high_watermark for log in logs] == [1] * 5
        assert set(devices) == {_device(tmp_path), _device(shm)}
        assert len(devices) == 2
        await flusher.close()
    finally:
        shutil.rmtree(other, ignore_errors=True)


@linux_only
@pytest.mark.parametrize(("method", "calls"), [("auto", 5), ("syncfs", 1)])
async def test_auto_fsyncs_each_file_on_a_filesystem_not_known_to_flush_on_syncfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, calls: int
) -> None:
    flusher = Flusher("group", 1000, method=method)  # type: ignore[arg-type]
    logs = _logs(tmp_path, flusher, 5)
    monkeypatch.setattr(syncfs, "trusted", lambda device: False)  # say, a FUSE mount
    for i, log in enumerate(logs):
        log.append([_batch(i)])
    await flusher.durable()
    assert [log.high_watermark for log in logs] == [1] * 5
    assert flusher.fsyncs == calls, "syncfs only where told to or trusted"
    await flusher.close()


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684084k
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 27 0:45 / /mnt/remote rw,nosuid,nodev,relatime shared:20 - fuse.sshfs host:/x rw
41 27 8:17 / /data rw,relatime master:3 optional:7 - xfs /dev/sdb1 rw,attr2
"""


@pytest.mark.parametrize(
    ("major", "minor", "kind"),
    [(254, 0, "ext4"), (0, 23, "tmpfs"), (0, 45, "fuse.sshfs"), (8, 17, "xfs"), (9, 9, None)],
)
def test_the_filesystem_of_a_device_is_read_from_mountinfo(
    major: int, minor: int, kind: str | None
) -> None:
    assert syncfs.filesystem_type(os.makedev(major, minor), MOUNTINFO) == kind


@linux_only
def test_the_filesystem_type_matches_findmnt(tmp_path: Path) -> None:
    found = subprocess.run(
        ["findmnt", "-n", "-o", "FSTYPE", "--target", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    kind = syncfs.filesystem_type(tmp_path.stat().st_dev, syncfs.MOUNTINFO.read_text())
    assert [kind] == found[-1:]
    assert syncfs.trusted(tmp_path.stat().st_dev) == (kind in syncfs.TRUSTED_FILESYSTEMS)


@linux_only
async def test_a_syncfs_on_a_file_closed_meanwhile_falls_back_to_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def closed(fd: int) -> None:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    monkeypatch.setattr(syncfs, "syncfs", closed)
    flusher = Flusher("group", 1000, method="syncfs")
    logs = _logs(tmp_path, flusher, 4)
    for i, log in enumerate(logs):
        log.append([_batch(i)])
    await flusher.durable()
    assert [log.high_watermark for log in logs] == [1] * 4
    assert flusher.fsyncs == 3, "the other three files fsynced one by one"
    await flusher.close()


@pytest.mark.parametrize("method", ["fsync", "auto", "syncfs"])
async def test_a_failed_flush_acknowledges_and_shows_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    def eio(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    flusher = Flusher("group", 1000, method=method)  # type: ignore[arg-type]
    logs = _logs(tmp_path, flusher, 3)
    monkeypatch.setattr(os, "fsync", eio)
    monkeypatch.setattr(syncfs, "syncfs", eio)
    for i, log in enumerate(logs):
        log.append([_batch(i)])
    with pytest.raises(OSError, match="Input/output error"):
        await flusher.durable()
    assert [log.high_watermark for log in logs] == [0] * 3, "nothing visible after EIO"
    monkeypatch.undo()
    await flusher.close()


@pytest.mark.parametrize("threads", [4, 3])
async def test_the_fsyncs_of_a_round_overlap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    """Every thread of the round must be inside an fsync at the same moment, or the
    barrier breaks and the round fails (as it would if the files went one by one)."""
    flusher = Flusher("group", 1000, threads, method="fsync")
    logs = _logs(tmp_path, flusher, 2 * threads)
    barrier = threading.Barrier(threads, timeout=10)
    names: set[str] = set()
    real_fsync = os.fsync

    def fsync_together(fd: int) -> None:
        names.add(threading.current_thread().name)
        barrier.wait()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_together)
    for i, log in enumerate(logs):
        log.append([_batch(i)])
    await flusher.durable()
    assert [log.high_watermark for log in logs] == [1] * len(logs)
    assert len(names) == threads
    await flusher.close()


@pytest.mark.parametrize(
    ("method", "closed"), [("fsync", 3), ("auto", 3), ("syncfs", 3), ("syncfs", 0)]
)
async def test_a_file_closed_during_the_round_does_not_hold_the_others(
    tmp_path: Path, method: str, closed: int
) -> None:
    flusher = Flusher("group", 1000, method=method)  # type: ignore[arg-type]
    logs = _logs(tmp_path, flusher, 6)
    for i, log in enumerate(logs):
        log.append([_batch(i)])
    os.close(logs[closed].active.fd)  # as retention or a delete would, between mark and round
    await flusher.durable()
    assert [log.high_watermark for log in logs] == [1] * 6
    await flusher.close()


async def test_one_thread_fsyncs_the_files_one_after_another(tmp_path: Path) -> None:
    flusher = Flusher("group", 1000, threads=1, method="fsync")
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


def test_the_broker_takes_its_fsync_method_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    from broker.server import Broker

    monkeypatch.delenv("SYNCPIPE_BROKER_FSYNC_METHOD", raising=False)
    default = BrokerSettings(data_dir=tmp_path / "d", port=0, metrics_port=0)
    assert Broker(default).flusher.method == ("auto" if syncfs.available() else "fsync")
    monkeypatch.setenv("SYNCPIPE_BROKER_FSYNC_METHOD", "fsync")
    settings = BrokerSettings(data_dir=tmp_path / "d", port=0, metrics_port=0)
    assert Broker(settings).flusher.method == "fsync"
    monkeypatch.setenv("SYNCPIPE_BROKER_FSYNC_METHOD", "fdatasync")
    with pytest.raises(ValidationError, match="fsync_method"):
        BrokerSettings(data_dir=tmp_path / "d", port=0, metrics_port=0)
    monkeypatch.setenv("SYNCPIPE_BROKER_FSYNC_METHOD", "syncfs")
    monkeypatch.setattr(syncfs, "available", lambda: False)
    with pytest.raises(ValidationError, match="syncfs is a Linux system call"):
        BrokerSettings(data_dir=tmp_path / "d", port=0, metrics_port=0)
