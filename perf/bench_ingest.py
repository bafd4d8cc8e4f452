"""Ingest throughput over real HTTP: POST /v1/ops into the embedded broker, acks=all.

Starts a broker (``python -m broker``), a Redis (``SYNCPIPE_REDIS_URL`` if set, else a
``redis-server`` child) and one ingest process (uvicorn), all on this machine, then posts
batches of 1 and of 100 ops from concurrent HTTP clients and prints ops/s, request
latency, the CPU each process used and ingest's CPU time per request. Every counted op was
answered ``accepted`` (durably in the log).

Usage: ``uv run python perf/bench_ingest.py [--seconds S] [--concurrency-1 N]
[--concurrency-100 N] [--rate R] [--only-single]``. Target: >= 10,000 ops/s in 100-op
batches on 2 cores. ``--only-single --rate 2000`` measures ingest's CPU per one-op request
at the end-to-end teams profile's request rate.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson
import psutil

REPO = Path(__file__).resolve().parents[1]
TARGET_OPS_PER_S = 10_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {port} within {within_s} s")


@contextmanager
def child(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=out)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve() -> None:
    """Child mode: run ingest from the SYNCPIPE_* environment (like `syncpipe ingest`)."""
    import uvicorn

    from ingest.app import create_app
    from ingest.settings import IngestSettings
    from schemas.settings import SharedSettings

    settings = IngestSettings()
    uvicorn.run(
        create_app(settings, SharedSettings()),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,  # as `syncpipe ingest` runs it
    )


class Load:
    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.ids = itertools.count()
        self.accepted = 0
        self.other = 0
        self.latencies: list[float] = []

    def body(self, client_id: str, wall_ms: int) -> bytes:
        ops: list[dict[str, Any]] = []
        for _ in range(self.batch):
            n = next(self.ids)
            ops.append(
                {
                    "op_id": f"{client_id}-{n}",
                    "client_id": client_id,
                    "collection": "tasks",
                    "entity_id": f"t{n % 5000}",
                    "kind": "upsert",
                    "fields": {"title": f"task {n}", "done": n % 2 == 0},
                    "hlc": f"{wall_ms:015d}-{n % 65536:04x}-{client_id}",
                }
            )
        return orjson.dumps({"ops": ops})


class Connection:
    """A minimal keep-alive HTTP/1.1 client: the load generator must not be the bottleneck
    (httpx spends more CPU per request than ingest does on these 2 cores)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(self, path: str, body: bytes, token: str) -> tuple[int, bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readuntil(b"\r\n")
        length = 0
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def worker(
    port: int, load: Load, client_id: str, token: str, until: float, interval_s: float = 0.0
) -> None:
    """Post batches until ``until``; with ``interval_s``, start one every ``interval_s``
    (a paced client, skipping the starts it is too late for) instead of back to back."""
    conn = await Connection.open(port)
    next_at = time.monotonic()
    try:
        while time.monotonic() < until:
            if interval_s:
                next_at += interval_s
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    next_at -= delay  # late: restart the schedule from now
            body = load.body(client_id, time.time_ns() // 1_000_000)
            started = time.perf_counter()
            status, payload = await conn.post("/v1/ops", body, token)
            load.latencies.append(time.perf_counter() - started)
            if status != 202:
                load.other += load.batch
                continue
            for result in orjson.loads(payload)["results"]:
                if result["status"] == "accepted":
                    load.accepted += 1
                else:
                    load.other += 1
    finally:
        conn.close()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def cpu_seconds(procs: dict[str, int]) -> dict[str, tuple[float, float]]:
    """CPU time (user, system) used so far by each process."""
    out = {}
    for name, pid in procs.items():
        times = psutil.Process(pid).cpu_times()
        out[name] = (times.user, times.system)
    return out


async def run(
    port: int,
    token: str,
    batch: int,
    concurrency: int,
    seconds: float,
    procs: dict[str, int],
    requests_per_s: float = 0.0,
) -> float:
    """Load ingest for ``seconds`` (at most ``requests_per_s`` if set); print and return
    accepted ops/s."""
    interval_s = concurrency / requests_per_s if requests_per_s else 0.0
    warm = Load(batch)  # connections, producer metadata, first fsyncs
    until = time.monotonic() + 1
    await asyncio.gather(
        *(worker(port, warm, f"warm-{batch}-{i}", token, until) for i in range(concurrency))
    )
    load = Load(batch)
    cpu_before = cpu_seconds(procs)
    started = time.monotonic()
    await asyncio.gather(
        *(
            worker(port, load, f"b{batch}-c{i}", token, started + seconds, interval_s)
            for i in range(concurrency)
        )
    )
    elapsed = time.monotonic() - started
    split = {
        k: (u - cpu_before[k][0], s - cpu_before[k][1]) for k, (u, s) in cpu_seconds(procs).items()
    }
    cpu = {k: u + s for k, (u, s) in split.items()}
    rate = load.accepted / elapsed
    print(
        f"batch={batch:<4} concurrency={concurrency:<3} requests={len(load.latencies):<6} "
        f"accepted={load.accepted:<7} not-accepted={load.other:<5} ops/s={rate:,.0f}  "
        f"latency ms p50={pct(load.latencies, 50):.1f} p99={pct(load.latencies, 99):.1f}"
    )
    print("  cpu s per s: " + ", ".join(f"{k}={v / elapsed:.2f}" for k, v in cpu.items()))
    requests = max(1, len(load.latencies))
    user, system = split["ingest"]
    print(
        f"  ingest cpu per request: {cpu['ingest'] / requests * 1000:.3f} ms "
        f"(user {user / requests * 1000:.3f} + system {system / requests * 1000:.3f}; "
        f"{requests / elapsed:,.0f} requests/s)"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency-1", dest="c1", type=int, default=32)
    parser.add_argument("--concurrency-100", dest="c100", type=int, default=8)
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help=(
            "Pace the one-op requests at this many per second (e.g. 2000, the end-to-end "
            "teams profile) instead of sending them back to back: CPU per request is then "
            "compared at one load, whatever else the machine is doing."
        ),
    )
    parser.add_argument(
        "--only-single",
        action="store_true",
        help="Run only the one-op requests (no 100-op batches): the CPU-per-request figure.",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return

    from schemas.auth import mint_token
    from schemas.settings import SharedSettings
    from syncpipe.redis_server import ping, redis_argv

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    broker_port, ingest_port = free_port(), free_port()
    env = {
        **os.environ,
        "SYNCPIPE_KAFKA_BOOTSTRAP": f"127.0.0.1:{broker_port}",
        "SYNCPIPE_TOPIC_PREFIX": "bench.",
        "SYNCPIPE_REDIS_PREFIX": f"bench-{os.getpid()}:",
        "SYNCPIPE_INGEST_PORT": str(ingest_port),
        "SYNCPIPE_INGEST_RATE_LIMIT_OPS_PER_S": "1000000",
        "SYNCPIPE_INGEST_RATE_LIMIT_BURST_OPS": "1000000",
        "SYNCPIPE_BROKER_METRICS_PORT": "0",
    }
    try:
        with ExitStack() as stack:
            redis: subprocess.Popen[bytes] | None = None
            if not env.get("SYNCPIPE_REDIS_URL"):
                redis_port = free_port()
                redis = stack.enter_context(
                    child(redis_argv(redis_port, work / "redis", persist=False), env, work / "log")
                )
                wait_port(redis_port, redis, "redis-server")
                while not ping(redis_port):
                    time.sleep(0.02)
                env["SYNCPIPE_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            broker_argv = [sys.executable, "-m", "broker", "--port", str(broker_port)]
            broker_argv += ["--data-dir", str(work / "broker")]
            broker = stack.enter_context(child(broker_argv, env, work / "log"))
            wait_port(broker_port, broker, "broker")
            ingest_argv = [sys.executable, str(Path(__file__).resolve()), "--serve"]
            ingest = stack.enter_context(child(ingest_argv, env, work / "log"))
            wait_port(ingest_port, ingest, "ingest")
            token = mint_token(SharedSettings(), tenant="bench", user_id="bench")
            print(f"ingest throughput, {os.cpu_count()} cores, broker+redis+ingest+client here")
            procs = {"ingest": ingest.pid, "broker": broker.pid, "client": os.getpid()}
            if redis is not None:
                procs["redis"] = redis.pid
            asyncio.run(run(ingest_port, token, 1, args.c1, args.seconds, procs, args.rate))
            if args.only_single:
                return
            rate = asyncio.run(run(ingest_port, token, 100, args.c100, args.seconds, procs))
            verdict = "meets" if rate >= TARGET_OPS_PER_S else "MISSES"
            print(f"100-op batches: {rate:,.0f} ops/s {verdict} the {TARGET_OPS_PER_S:,} target")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
