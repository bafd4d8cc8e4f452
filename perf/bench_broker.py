"""Embedded broker benchmark: throughput and produce latency beside this machine's ceilings.

Run: ``uv run python perf/bench_broker.py`` (or ``just bench``). It starts the broker
as a subprocess with the default fsync policy (group commit) on a temporary data dir,
drives it with librdkafka (confluent-kafka, the fastest client we have), and prints:

* ceilings measured in the same run: loopback TCP copy rate, sequential fsync'd append
  rate (1 MiB writes, fsync after each);
* produce and consume MB/s and records/s for 100 B records and for 1 MiB batches,
  acks=all;
* produce latency p50/p99 at a fixed 5,000 records/s (acks=all, no linger).

Targets (issue 3): large-batch produce >= 50 % of the smaller ceiling; p99 <= 10 ms.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from broker.codec import records

REPO = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- ceilings -------------------------------------------------------------------------


def loopback_rate(total: int = 1024 * MiB, chunk: int = MiB) -> float:
    """MB/s of one TCP stream over loopback, Python sender and receiver."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    received = 0

    def sink() -> None:
        nonlocal received
        conn, _ = srv.accept()
        buf = bytearray(chunk)
        view = memoryview(buf)
        while True:
            n = conn.recv_into(view)
            if not n:
                break
            received += n
        conn.close()

    t = threading.Thread(target=sink)
    t.start()
    data = os.urandom(chunk)
    s = socket.create_connection(("127.0.0.1", port))
    start = time.perf_counter()
    sent = 0
    while sent < total:
        s.sendall(data)
        sent += chunk
    s.close()
    t.join()
    elapsed = time.perf_counter() - start
    srv.close()
    return received / elapsed / 1e6


def fsync_append_rate(directory: Path, total: int = 256 * MiB, chunk: int = MiB) -> float:
    """MB/s of sequential 1 MiB appends, each followed by fsync."""
    path = directory / "fsync-probe"
    data = os.urandom(chunk)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    start = time.perf_counter()
    written = 0
    while written < total:
        written += os.write(fd, data)
        os.fsync(fd)
    elapsed = time.perf_counter() - start
    os.close(fd)
    path.unlink()
    return written / elapsed / 1e6


# --- broker ---------------------------------------------------------------------------


def start_broker(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "SYNCPIPE_BROKER_PORT": str(port),
        "SYNCPIPE_BROKER_DATA_DIR": str(data_dir),
        "SYNCPIPE_BROKER_METRICS_PORT": "0",
        "SYNCPIPE_BROKER_MAX_REQUEST_BYTES": str(200 * MiB),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "broker"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("broker did not start")


def produce(bootstrap: str, topic: str, count: int, size: int, batch_bytes: int) -> float:
    """Seconds to produce ``count`` records of ``size`` bytes with acks=all."""
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "batch.size": batch_bytes,
            "message.max.bytes": 2 * batch_bytes + 4096,
            "queue.buffering.max.kbytes": 1024 * 1024,
            "queue.buffering.max.messages": 1_000_000,
            "enable.idempotence": False,
        }
    )
    value = os.urandom(size)
    failed = 0

    def on_delivery(err: object, _msg: object) -> None:
        nonlocal failed
        if err is not None:
            failed += 1

    start = time.perf_counter()
    for _ in range(count):
        while True:
            try:
                p.produce(topic, value, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    p.flush(120)
    elapsed = time.perf_counter() - start
    if failed:
        raise SystemExit(f"{failed} records failed")
    return elapsed


def consume(bootstrap: str, topic: str, count: int) -> float:
    """Seconds to read ``count`` records from offset 0 (assigned, no group)."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{topic}",
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 * MiB,
            "max.partition.fetch.bytes": 8 * MiB,
        }
    )
    start = time.perf_counter()
    c.assign([TopicPartition(topic, 0, 0)])
    got = 0
    while got < count:
        # consume() waits until it has num_messages or the timeout: never ask for more
        # than remain, or the last call idles for the whole timeout
        msgs = c.consume(min(10_000, count - got), 1.0)
        got += sum(1 for m in msgs if m.error() is None)
    elapsed = time.perf_counter() - start
    c.close()
    return elapsed


def _frame(api_key: int, version: int, corr: int, body: bytes) -> bytes:
    head = struct.pack(">hhih", api_key, version, corr, 5) + b"bench"
    return struct.pack(">i", len(head) + len(body)) + head + body


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 4 * MiB))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return bytes(buf)


def _recv_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    return _recv_exact(sock, size)


def raw_produce(bootstrap: str, topic: str, batches: int, in_flight: int = 8) -> float:
    """Seconds to produce ``batches`` pre-built 1 MiB batches (1 KiB records), acks=all,
    pipelined on one connection: the broker's own rate, without client overhead."""
    recs = [records.Record(i, 0, None, os.urandom(1000)) for i in range(1000)]
    batch = records.encode_batch(recs, base_offset=0, base_timestamp=0, max_timestamp=0)
    tlen = struct.pack(">h", len(topic)) + topic.encode()
    body = (
        struct.pack(">hhi", -1, -1, 30_000)
        + struct.pack(">i", 1)
        + tlen
        + struct.pack(">iii", 1, 0, len(batch))
        + batch
    )
    host, port = bootstrap.split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(_frame(3, 0, 0, struct.pack(">i", 1) + tlen))  # create via Metadata v0
    _recv_frame(sock)
    start = time.perf_counter()
    sent = done = 0
    while done < batches:
        while sent < batches and sent - done < in_flight:
            sock.sendall(_frame(0, 7, sent, body))
            sent += 1
        resp = _recv_frame(sock)
        (err,) = struct.unpack_from(">h", resp, 4 + 4 + 2 + len(topic) + 4 + 4)
        if err:
            raise SystemExit(f"produce error {err}")
        done += 1
    elapsed = time.perf_counter() - start
    sock.close()
    return elapsed


def raw_fetch(bootstrap: str, topic: str, end_offset: int) -> tuple[float, int]:
    """(seconds, bytes) to fetch offsets 0..end_offset with 8 MiB fetches (Fetch v4)."""
    host, port = bootstrap.split(":")
    sock = socket.create_connection((host, int(port)))
    tlen = struct.pack(">h", len(topic)) + topic.encode()
    offset = got = corr = 0
    start = time.perf_counter()
    while offset < end_offset:
        body = (
            struct.pack(">iiiib", -1, 500, 1, 64 * MiB, 0)
            + struct.pack(">i", 1)
            + tlen
            + struct.pack(">iiqi", 1, 0, offset, 8 * MiB)
        )
        corr += 1
        sock.sendall(_frame(1, 4, corr, body))
        resp = _recv_frame(sock)
        pos = 4 + 4 + 4 + 2 + len(topic) + 4 + 4 + 2 + 8 + 8 + 4
        (size,) = struct.unpack_from(">i", resp, pos)
        data = memoryview(resp)[pos + 4 : pos + 4 + size]
        p = 0
        while p + 61 <= len(data):
            h = records.parse_header(data, p)
            offset = h.last_offset + 1
            p += h.size
        got += size
    elapsed = time.perf_counter() - start
    sock.close()
    return elapsed, got


def latency(bootstrap: str, rate: int = 5000, seconds: float = 5.0) -> tuple[float, float]:
    """p50, p99 produce latency in ms at a fixed rate (acks=all, no linger)."""
    p = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0, "enable.idempotence": False}
    )
    lat: list[float] = []

    def on_delivery(err: object, msg: object, sent: float = 0.0) -> None:
        lat.append(time.perf_counter() - sent)

    p.produce("lat-warmup", b"x")
    p.flush(10)
    value = os.urandom(100)
    interval = 1 / rate
    start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        # sleep rather than spin: a busy client would steal the CPU the broker needs
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        now = time.perf_counter()
        p.produce("lat", value, on_delivery=lambda e, m, s=now: on_delivery(e, m, s))
        p.poll(0)
    p.flush(30)
    lat.sort()
    return lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-broker-") as tmp:
        tmpdir = Path(tmp)
        loop_mb = loopback_rate()
        fsync_mb = fsync_append_rate(tmpdir)
        ceiling = min(loop_mb, fsync_mb)
        print(f"machine  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
        print(f"ceiling  loopback copy            {loop_mb:10.1f} MB/s")
        print(f"ceiling  fsync'd 1 MiB appends    {fsync_mb:10.1f} MB/s")
        proc, bootstrap = start_broker(tmpdir / "data")
        try:
            cases = [
                ("small 100 B records", "small", 1_000_000, 100, 1 * MiB),
                ("large 1 MiB batches", "large", 2_000, 64 * 1024, 1 * MiB),
            ]
            for label, topic, count, size, batch in cases:
                total = count * size
                t = produce(bootstrap, topic, count, size, batch)
                print(
                    f"produce  {label:<24} {total / t / 1e6:10.1f} MB/s "
                    f"{count / t:12,.0f} rec/s  (acks=all, fsync=group)"
                )
                t = consume(bootstrap, topic, count)
                print(f"consume  {label:<24} {total / t / 1e6:10.1f} MB/s {count / t:12,.0f} rec/s")
            n = 300
            raw_t = raw_produce(bootstrap, "raw", n)
            batch_bytes = len(
                records.encode_batch(
                    [records.Record(i, 0, None, b"x" * 1000) for i in range(1000)],
                    base_offset=0,
                    base_timestamp=0,
                    max_timestamp=0,
                )
            )
            large_mb = n * batch_bytes / raw_t / 1e6
            print(
                f"produce  raw 1 MiB batches, 8 in flight {large_mb:7.1f} MB/s "
                f"{n * 1000 / raw_t:12,.0f} rec/s  (acks=all, fsync=group, no client overhead)"
            )
            for label, topic, count in (("small", "small", 1_000_000), ("1 MiB", "raw", n * 1000)):
                fetch_t, nbytes = raw_fetch(bootstrap, topic, count)
                print(
                    f"consume  raw 8 MiB fetches, {label:<6} {nbytes / fetch_t / 1e6:9.1f} MB/s "
                    f"{count / fetch_t:12,.0f} rec/s  (no client overhead; MB/s of batches)"
                )
            print(
                f"target   large produce {large_mb:.1f} MB/s = {100 * large_mb / ceiling:.0f} % "
                f"of the smaller ceiling ({ceiling:.1f} MB/s); goal >= 50 %"
            )
            p50, p99 = latency(bootstrap)
            print(f"latency  produce at 5,000 rec/s    p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
            print(f"target   p99 {p99:.2f} ms; goal <= 10 ms")
            print(f"machine  load average {os.getloadavg()[0]:.2f} at end")
        finally:
            proc.terminate()
            proc.wait(20)


if __name__ == "__main__":
    main()
