"""Pipeline benchmark: ingest throughput, streams apply throughput, ingest→state latency.

Runs Redis (``SYNCPIPE_REDIS_URL`` if set, else a ``redis-server`` child), the embedded
broker, one streams worker (``python -m streams``) and one ingest server as real
processes on this machine, then measures:

(b) streams apply throughput: N ops preloaded on the ops topic before the worker starts,
    ops/s from the worker's applied counter (first op → last) and per worker CPU-second;
(a) ingest throughput in ops/s for batches of 1 and of 100 ops (perf/bench_ingest.py's
    load generator; the worker consumes meanwhile, as in production);
(c) ingest → entity-state latency at fixed offered rates: ops posted over HTTP one
    request per ``--latency-batch`` ops, each to a new entity, latency from the moment
    its POST is written to the entity state arriving on the entities topic (a consumer
    here) and to it being readable in the Redis read model (polled every ~2 ms), as
    p50/p95/p99/max; 10 ops per POST by default, as clients send their outbox. CPU per
    process per second, and ``others``: the rest of the machine's busy time (Redis,
    anything else running), which is what makes runs on a shared machine noisy.

Targets: >= 5,000 ops/s applied per worker; p99 <= 100 ms at 1,000 ops/s. Everything
shares this machine's cores, so run it on a quiet machine and compare runs of one day.
Usage: ``uv run python perf/bench_pipeline.py [--quick] [--json PATH] [--rates 500,1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

# Run as a script: the repository and perf/ must be importable before the imports below
# (hence their E402 waivers).
PERF = Path(__file__).resolve().parent
sys.path.insert(0, str(PERF.parent))
sys.path.insert(0, str(PERF))

import bench_ingest  # noqa: E402
import bench_streams  # noqa: E402

from schemas.readmodel import entities_key  # noqa: E402
from schemas.topics import Topics  # noqa: E402
from streams.provision import ensure_topics  # noqa: E402
from tests.redis_server import redis_url  # noqa: E402
from tests.streams.helpers import Broker, Process, Worker, produce_ops  # noqa: E402

TARGET_P99_MS = 100.0
TARGET_P99_RATE = 1_000
TENANT = "bench"
COLLECTION = "tasks"
PARTITIONS = 4
LATENCY_BATCH = 10
IDLE_CONNECTION_S = 2.0
"""A keep-alive connection idle this long is not reused: the server may close it any
moment (uvicorn's keep-alive timeout is 5 s), and a POST sent on it would be lost."""


@dataclass(frozen=True)
class Config:
    seconds: float
    concurrency_1: int
    concurrency_100: int
    apply_ops: int
    entities: int
    rates: list[float]
    rate_seconds: float
    latency_batch: int
    settle_s: float
    json_path: Path | None


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Needs redis-server on PATH unless SYNCPIPE_REDIS_URL is set.",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run (~1 minute)")
    parser.add_argument("--json", dest="json_path", type=Path, help="also write results here")
    parser.add_argument("--seconds", type=float, help="ingest load per batch size (8; quick 1)")
    parser.add_argument("--concurrency-1", dest="c1", type=int, default=32)
    parser.add_argument("--concurrency-100", dest="c100", type=int, default=8)
    parser.add_argument("--apply-ops", type=int, help="ops preloaded for (b) (20,000; quick 2,000)")
    parser.add_argument("--entities", type=int, default=2_000, help="entities of (b) (2,000)")
    parser.add_argument(
        "--rates", help="offered ops/s of the latency runs, comma-separated (500,1000; quick 100)"
    )
    parser.add_argument(
        "--rate-seconds", type=float, help="length of each latency run (15; quick 3)"
    )
    parser.add_argument(
        "--latency-batch",
        type=int,
        default=LATENCY_BATCH,
        help=(
            f"ops per POST in the latency runs ({LATENCY_BATCH}: clients send their outbox "
            "in batches; one op per POST puts ingest's per-request cost, which real clients "
            "do not pay per op, on the same 2 cores as the pipeline being measured)"
        ),
    )
    parser.add_argument(
        "--settle-seconds",
        dest="settle_s",
        type=float,
        default=15.0,
        help="how long to wait for the last states of a latency run before counting them missing",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    rates_text = args.rates or ("100" if quick else "500,1000")
    try:
        rates = [float(r) for r in rates_text.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--rates must be numbers separated by commas, got {rates_text!r}")
    config = Config(
        seconds=args.seconds if args.seconds is not None else (1.0 if quick else 8.0),
        concurrency_1=args.c1,
        concurrency_100=args.c100,
        apply_ops=args.apply_ops if args.apply_ops is not None else (2_000 if quick else 20_000),
        entities=args.entities,
        rates=rates,
        rate_seconds=args.rate_seconds
        if args.rate_seconds is not None
        else (3.0 if quick else 15.0),
        latency_batch=args.latency_batch,
        settle_s=args.settle_s,
        json_path=args.json_path,
    )
    if not rates or any(r <= 0 for r in rates):
        parser.error("--rates must be positive")
    if min(config.seconds, config.rate_seconds, config.settle_s) <= 0:
        parser.error("--seconds, --rate-seconds and --settle-seconds must be positive")
    if min(config.apply_ops, config.entities, config.latency_batch, config.concurrency_1) < 1:
        parser.error("--apply-ops, --entities, --latency-batch and concurrencies must be >= 1")
    if config.concurrency_100 < 1:
        parser.error("--concurrency-100 must be >= 1")
    return config


def progress(message: str) -> None:
    print(message, flush=True)


@contextmanager
def running(process: Process) -> Iterator[Process]:
    process.start()
    try:
        yield process
    finally:
        process.stop()


class Latencies:
    """When each op was posted and when its entity state was seen, by entity id."""

    def __init__(self) -> None:
        self.posted: dict[str, float] = {}
        self.answered: dict[str, float] = {}
        self.on_ops: dict[str, float] = {}
        self.on_topic: dict[str, float] = {}
        self.in_read_model: dict[str, float] = {}
        self.to_check: set[str] = set()
        """On the entities topic, not yet seen in Redis: the read model is fed from that
        topic, so only these are polled (polling every posted op would load the client
        more the slower the pipeline, and skew what it measures)."""
        self.rejected = 0
        self.statuses: dict[int, int] = {}
        """Answers other than 202, by HTTP status (0: connection closed without one)."""
        self.all_posted = False
        self.complete = asyncio.Event()

    def check(self) -> None:
        """Set ``complete`` once everything posted was seen on the topic and in Redis."""
        n = len(self.posted)
        if self.all_posted and len(self.on_topic) >= n and len(self.in_read_model) >= n:
            self.complete.set()

    def summary(self, seen: dict[str, float]) -> dict[str, float | int]:
        values = [seen[e] - self.posted[e] for e in self.posted if e in seen]
        if not values:
            return {"count": 0}
        return {
            "count": len(values),
            "p50_ms": round(bench_ingest.pct(values, 50), 2),
            "p95_ms": round(bench_ingest.pct(values, 95), 2),
            "p99_ms": round(bench_ingest.pct(values, 99), 2),
            "max_ms": round(max(values) * 1000, 2),
        }


async def latency_run(
    config: Config,
    rate: float,
    port: int,
    token: str,
    bootstrap: str,
    topics: Topics,
    url: str,
    pids: dict[str, int],
) -> dict[str, Any]:
    """Offer ``rate`` ops/s through ingest for ``rate_seconds``; see the module docstring."""
    lat = Latencies()
    run_id = uuid.uuid4().hex[:6]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    await consumer.start()
    redis = aioredis.from_url(url)
    rm_key = entities_key(f"{topics.prefix}:", TENANT, COLLECTION)
    stop = asyncio.Event()
    try:
        tps = [
            TopicPartition(t, p) for t in (topics.ops, topics.entities) for p in range(PARTITIONS)
        ]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)

        async def watch_topic() -> None:
            prefix = f"{TENANT}/{COLLECTION}/".encode()
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=20)
                now = time.perf_counter()
                for tp, records in batches.items():
                    seen = lat.on_topic if tp.topic == topics.entities else lat.on_ops
                    for record in records:
                        if record.key.startswith(prefix):
                            entity = record.key[len(prefix) :].decode()
                            if entity in lat.posted and entity not in seen:
                                seen[entity] = now
                                if seen is lat.on_topic:
                                    lat.to_check.add(entity)
                lat.check()

        async def watch_read_model() -> None:
            while not stop.is_set():
                pending = list(lat.to_check)
                if not pending:
                    await asyncio.sleep(0.002)
                    continue
                for i in range(0, len(pending), 500):
                    chunk = pending[i : i + 500]
                    values = await redis.hmget(rm_key, chunk)
                    now = time.perf_counter()
                    for entity, value in zip(chunk, values, strict=True):
                        if value is not None:
                            lat.in_read_model[entity] = now
                            lat.to_check.discard(entity)
                lat.check()
                await asyncio.sleep(0.002)

        watchers = [asyncio.create_task(watch_topic()), asyncio.create_task(watch_read_model())]
        cpu_before, busy_before = bench_streams.cpu_seconds(pids), machine_busy_seconds()
        started = time.perf_counter()
        posted = await offer(config, rate, port, token, run_id, lat)
        elapsed = time.perf_counter() - started
        cpu = {k: (v - cpu_before[k]) / elapsed for k, v in bench_streams.cpu_seconds(pids).items()}
        busy = (machine_busy_seconds() - busy_before) / elapsed
        cpu["others"] = max(0.0, busy - sum(cpu.values()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lat.complete.wait(), config.settle_s)
        stop.set()
        await asyncio.gather(*watchers)
    finally:
        await consumer.stop()
        await redis.aclose()
    return {
        "rate_ops_per_s": rate,
        "seconds": config.rate_seconds,
        "ops_per_post": config.latency_batch,
        "posted": len(lat.posted),
        "offered_ops_per_s": round(posted, 1),
        "not_accepted": lat.rejected,
        "http_errors": {str(k): v for k, v in sorted(lat.statuses.items())},
        "http_answer": lat.summary(lat.answered),
        "ops_topic": lat.summary(lat.on_ops),
        "entities_topic": lat.summary(lat.on_topic),
        "read_model": lat.summary(lat.in_read_model),
        "missing_on_topic": len(lat.posted) - len(set(lat.posted) & set(lat.on_topic)),
        "missing_in_read_model": len(lat.posted) - len(set(lat.posted) & set(lat.in_read_model)),
        "cpu_per_s": {k: round(v, 3) for k, v in cpu.items()},
    }


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy (steal included): the ``others`` share of a
    latency run (Redis, other work on a shared machine) is this minus ours."""
    times = psutil.cpu_times()._asdict()
    not_busy = ("idle", "iowait", "guest", "guest_nice")  # guest time is inside user
    return float(sum(v for k, v in times.items() if k not in not_busy))


async def offer(
    config: Config, rate: float, port: int, token: str, run_id: str, lat: Latencies
) -> float:
    """POST ops at a fixed rate (open loop: requests start on schedule whatever the
    answers take, on as many keep-alive connections as needed); returns ops/s posted."""
    batch = config.latency_batch
    posts = max(1, round(rate * config.rate_seconds / batch))
    interval = batch / rate
    free: list[tuple[float, bench_ingest.Connection]] = []
    inflight: set[asyncio.Task[None]] = set()

    async def connection() -> bench_ingest.Connection:
        while free:
            idle_since, conn = free.pop()
            if time.monotonic() - idle_since < IDLE_CONNECTION_S:
                return conn
            conn.close()
        return await bench_ingest.Connection.open(port)

    async def post(n: int) -> None:
        conn = await connection()
        wall_ms = time.time_ns() // 1_000_000
        ops = []
        for j in range(batch):
            entity = f"lat{run_id}-{n * batch + j}"
            ops.append(
                {
                    "op_id": f"{entity}-op",
                    "client_id": f"lat-{run_id}-{n % 16}",
                    "collection": COLLECTION,
                    "entity_id": entity,
                    "kind": "upsert",
                    "fields": {"title": entity},
                    "hlc": f"{wall_ms:015d}-0000-lat-{run_id}-{n % 16}",
                }
            )
        body = orjson.dumps({"ops": ops})
        sent = time.perf_counter()
        for op in ops:
            lat.posted[op["entity_id"]] = sent
        try:
            status, payload = await conn.post("/v1/ops", body, token)
        except (OSError, asyncio.IncompleteReadError):
            conn.close()  # ingest dropped the connection: count it, open another next time
            lat.rejected += batch
            lat.statuses[0] = lat.statuses.get(0, 0) + 1
            return
        answered = time.perf_counter()
        for op in ops:
            lat.answered[op["entity_id"]] = answered
        free.append((time.monotonic(), conn))
        if status != 202:
            lat.rejected += batch
            lat.statuses[status] = lat.statuses.get(status, 0) + 1
            return
        lat.rejected += sum(r["status"] != "accepted" for r in orjson.loads(payload)["results"])

    started = time.perf_counter()
    for n in range(posts):
        delay = started + n * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(post(n))
        inflight.add(task)
        task.add_done_callback(inflight.discard)
    elapsed = time.perf_counter() - started
    await asyncio.gather(*inflight)
    lat.all_posted = True
    for _, conn in free:
        conn.close()
    return posts * batch / max(elapsed + interval, 1e-9)


async def wait_caught_up(worker: Worker, bootstrap: str, topic: str, limit_s: float) -> None:
    """Until the worker has applied every record now on the ops topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        total = sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()
    deadline = time.monotonic() + limit_s
    while (done := bench_streams.applied(worker)) < total:
        if time.monotonic() > deadline:
            raise SystemExit(f"streams applied {done:.0f} of {total} ops within {limit_s:.0f} s")
        await asyncio.sleep(0.2)


async def main(config: Config) -> dict[str, Any]:
    from schemas.auth import mint_token
    from schemas.settings import SharedSettings

    results: dict[str, Any] = {"cores": os.cpu_count(), "partitions": PARTITIONS}
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-pipeline-")))
        url = stack.enter_context(redis_url(work))
        progress("starting broker")
        broker = stack.enter_context(running(Broker(work / "broker")))
        assert isinstance(broker, Broker)
        topics = Topics(f"pipe{uuid.uuid4().hex[:6]}.")
        await ensure_topics(broker.bootstrap, topics, partitions=PARTITIONS)
        env = {
            **os.environ,
            "SYNCPIPE_KAFKA_BOOTSTRAP": broker.bootstrap,
            "SYNCPIPE_REDIS_URL": url,
            "SYNCPIPE_REDIS_PREFIX": f"{topics.prefix}:",
            "SYNCPIPE_TOPIC_PREFIX": topics.prefix,
            "SYNCPIPE_STREAMS_PARTITIONS": str(PARTITIONS),
        }

        progress(f"(b) streams apply: preloading {config.apply_ops:,} ops, starting the worker")
        ops = bench_streams.bench_ops(config.apply_ops, config.entities, prefix="apply")
        await produce_ops(broker.bootstrap, topics.ops, ops)
        worker = Worker(env, work / "worker.log")
        stack.enter_context(running(worker))
        assert worker.proc is not None
        assert broker.proc is not None
        pids = {"worker": worker.proc.pid, "broker": broker.proc.pid}
        apply = await bench_streams.measure_apply(
            lambda: bench_streams.applied(worker), config.apply_ops, pids
        )
        progress(apply.line())
        results["streams_apply"] = apply.as_dict()

        progress("starting ingest")
        ingest_port = bench_ingest.free_port()
        env.update(
            {
                "SYNCPIPE_INGEST_PORT": str(ingest_port),
                "SYNCPIPE_INGEST_RATE_LIMIT_OPS_PER_S": "1000000",
                "SYNCPIPE_INGEST_RATE_LIMIT_BURST_OPS": "1000000",
            }
        )
        ingest_argv = [sys.executable, str(PERF / "bench_ingest.py"), "--serve"]
        ingest = stack.enter_context(bench_ingest.child(ingest_argv, env, work / "ingest.log"))
        bench_ingest.wait_port(ingest_port, ingest, "ingest")
        token = mint_token(SharedSettings(), tenant=TENANT, user_id="bench")

        progress("(a) ingest throughput (the worker consumes meanwhile)")
        procs = {**pids, "ingest": ingest.pid, "client": os.getpid()}
        results["ingest"] = {}
        for batch, concurrency in ((1, config.concurrency_1), (100, config.concurrency_100)):
            rate = await bench_ingest.run(
                ingest_port, token, batch, concurrency, config.seconds, procs
            )
            results["ingest"][f"batch_{batch}"] = {
                "ops_per_s": round(rate, 1),
                "concurrency": concurrency,
                "seconds": config.seconds,
            }
        progress("waiting for streams to apply the ingest backlog")
        await wait_caught_up(worker, broker.bootstrap, topics.ops, 600)

        results["latency"] = []
        for rate in config.rates:
            progress(f"(c) latency at {rate:,.0f} ops/s for {config.rate_seconds:g} s")
            run = await latency_run(
                config, rate, ingest_port, token, broker.bootstrap, topics, url, procs
            )
            results["latency"].append(run)
            progress(latency_line(run))
        if not worker.alive():
            raise SystemExit(f"the streams worker died:\n{worker.log()[-3000:]}")
    return results


def latency_line(run: dict[str, Any]) -> str:
    def part(name: str, s: dict[str, Any]) -> str:
        if not s.get("count"):
            return f"{name}: none seen"
        return (
            f"{name} ms p50={s['p50_ms']:.1f} p95={s['p95_ms']:.1f} p99={s['p99_ms']:.1f} "
            f"max={s['max_ms']:.1f}"
        )

    return (
        f"  offered {run['offered_ops_per_s']:,.0f} ops/s, posted {run['posted']}, "
        f"not accepted {run['not_accepted']} (HTTP {run['http_errors'] or 'all 202'}), "
        f"missing {run['missing_on_topic']}/{run['missing_in_read_model']} "
        "(topic/read model)\n"
        f"  {part('ingest answer', run['http_answer'])}\n"
        f"  {part('ops topic', run['ops_topic'])}\n"
        f"  {part('entities topic', run['entities_topic'])}\n"
        f"  {part('read model', run['read_model'])}\n"
        "  CPU s per s: " + ", ".join(f"{k}={v:.2f}" for k, v in run["cpu_per_s"].items())
    )


def verdicts(results: dict[str, Any]) -> list[str]:
    out = []
    apply = results["streams_apply"]["ops_per_s"]
    target = bench_streams.TARGET_OPS_PER_S
    out.append(
        f"streams apply {apply:,.0f} ops/s per worker: "
        f"{'meets' if apply >= target else 'MISSES'} the {target:,} target"
    )
    for run in results["latency"]:
        if run["rate_ops_per_s"] >= TARGET_P99_RATE:
            p99 = run["read_model"].get("p99_ms")
            ok = p99 is not None and p99 <= TARGET_P99_MS and run["missing_in_read_model"] == 0
            out.append(
                f"ingest→read model p99 at {run['rate_ops_per_s']:,.0f} ops/s = {p99} ms: "
                f"{'meets' if ok else 'MISSES'} the {TARGET_P99_MS:.0f} ms target"
            )
    return out


def cli(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    results = asyncio.run(main(config))
    for line in verdicts(results):
        progress(line)
    if config.json_path is not None:
        config.json_path.write_text(json.dumps(results, indent=2) + "\n")
        progress(f"wrote {config.json_path}")


if __name__ == "__main__":
    cli()
