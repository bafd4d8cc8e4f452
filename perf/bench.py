"""End-to-end benchmark of the running system: op posted -> state received by every subscriber.

Starts ``syncpipe dev`` (fresh temp data dir, free ports; ``--attach`` uses a running
system instead), opens N WebSocket subscribers in a child process (``perf/e2e_client.py``),
posts ops through ingest at fixed rates for T seconds each (``perf/e2e_load.py``) and
measures, per step: end-to-end latency over every delivery (p50/p95/p99/max, from the
post time carried in each op to receipt by each subscriber), deliveries expected vs got,
achieved throughput, push's drop/conflation counters and CPU (% of one core) and peak RSS
per component and of the bench's own client processes.

Profiles (everything on one machine):

* **teams**: 200 tenants x 5 subscribers (1,000 connections), 2,000 ops/s spread over the
  tenants (10,000 deliveries/s). Target: p50 <= 20 ms, p99 <= 100 ms, zero drops.
* **broadcast**: one collection, 1,000 subscribers, 50 ops/s (50,000 deliveries/s).
  Target: p99 <= 150 ms.

Each profile runs a sweep of rates (default 0.5x, 1x, 2x, 4x of its target rate, stopping
once a rate is not sustained: p99 > 250 ms or over 1 % of ops rejected by ingest; when
even the lowest is not, up to two halvings below it) and reports the highest sustained
rate; its target rate always runs, for the verdict. Between steps the pipeline drains
(every expected delivery in, or none for 2 s). The system the
bench starts has ingest's per-client rate limits lifted (all load comes from one client
id per tenant); with ``--attach`` the running system's own limits apply and rejected ops
are reported by reason. Writes ``bench.json``, ``bench.md`` and ``bench.png`` to ``--out``
(default ``perf/results/``). Exits non-zero on a missed target only with ``--check``.

Usage: ``uv run python perf/bench.py [--profile teams|broadcast|all] [--duration S]
[--rates 0.5x,1x,2x,4x] [--out DIR] [--quick] [--check] [--attach --ingest-url URL
--push-url URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import httpx
from bench_push import histogram, quantile
from e2e_load import Load, StepLoad
from e2e_report import rate as fmt_rate
from e2e_report import write_markdown, write_plot
from e2e_system import DEV_ENV, DevSystem, Endpoints, Processes, Sampler

from schemas.auth import mint_token
from schemas.settings import SharedSettings

SWEEP_P99_MS = 250.0
DEFAULT_RATES = "0.5x,1x,2x,4x"
MAX_HALVINGS = 2  # steps below the sweep when even its lowest rate misses p99 <= 250 ms
WARMUP_STEP = 900  # step numbers of warm-up rounds (sweep steps are 1, 2, ...)


@dataclass(frozen=True)
class Profile:
    name: str
    tenants: int
    subscribers_per_tenant: int
    rate: float  # target ops/s, spread over the tenants
    p50_ms: float | None
    p99_ms: float
    zero_drops: bool
    entities_per_tenant: int
    collection: str = "tasks"

    @property
    def connections(self) -> int:
        return self.tenants * self.subscribers_per_tenant


PROFILES = {
    "teams": Profile("teams", 200, 5, 2000, 20.0, 100.0, True, 50),
    "broadcast": Profile("broadcast", 1, 1000, 50, None, 150.0, False, 500),
}
QUICK = {
    "teams": Profile("teams", 4, 2, 40, 20.0, 100.0, True, 10),
    "broadcast": Profile("broadcast", 1, 8, 10, None, 150.0, False, 20),
}


class WsFleet:
    """The subscriber child process (``perf/e2e_client.py``), one JSON line per command."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve().parent / "e2e_client.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def call(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"subscriber process exited with {self.proc.poll()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def acall(self, **cmd: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.call, **cmd)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(RuntimeError, OSError):
                self.call(cmd="quit")
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def parse_rates(spec: str, target: float) -> list[tuple[float, float | None]]:
    """``"0.5x,1x,300"`` -> [(rate ops/s, multiplier or None)], ascending."""
    out: list[tuple[float, float | None]] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if part.endswith("x"):
                m = float(part[:-1])
                out.append((m * target, m))
            else:
                rate = float(part)
                out.append((rate, rate / target if rate == target else None))
        except ValueError:
            raise SystemExit(
                f"--rates: {part!r} is neither ops/s (300) nor a multiple of the target (2x)"
            ) from None
    if not out or any(r <= 0 for r, _ in out):
        raise SystemExit("--rates: give positive rates, e.g. 0.5x,1x,2x,4x or 500,1000")
    return sorted(out)


def counters(text: str, name: str) -> dict[str, float]:
    """Values of a labeled Prometheus counter by label value."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            label = line.split('="', 1)[1].split('"', 1)[0]
            out[label] = float(line.rsplit(" ", 1)[1])
    return out


def counter_delta(before: str, after: str, name: str) -> dict[str, float]:
    a, b = counters(after, name), counters(before, name)
    return {k: v - b.get(k, 0.0) for k, v in a.items() if v - b.get(k, 0.0)}


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


class Bench:
    def __init__(
        self,
        endpoints: Endpoints,
        procs: Processes,
        args: argparse.Namespace,
        check_running: Callable[[], None],
    ) -> None:
        self.endpoints, self.procs, self.args = endpoints, procs, args
        self.check_running = check_running
        self.http = httpx.AsyncClient(timeout=10)
        self.shared = SharedSettings()

    async def metrics(self, url: str) -> str:
        try:
            return (await self.http.get(url)).text
        except httpx.HTTPError:
            return ""

    async def push_metrics(self) -> str:
        return await self.metrics(self.endpoints.push_metrics_url)

    async def ingest_metrics(self) -> str:
        return await self.metrics(self.endpoints.ingest_url.rstrip("/") + "/metrics")

    async def drain(self, fleet: WsFleet, step: int, expected: int) -> float:
        """Wait until every expected delivery arrived, or none came for 2 s (10 s at most)."""
        started = time.monotonic()
        while True:
            await asyncio.sleep(0.1)
            got = await fleet.acall(cmd="count", step=step)
            waited = time.monotonic() - started
            idle = got["idle_s"]
            if got["distinct"] >= expected or waited > self.args.drain_timeout:
                return waited
            if waited > 2 and (idle is None or idle > 2):
                return waited

    async def step(
        self, profile: Profile, fleet: WsFleet, load: Load, n: int, rate: float, seconds: float
    ) -> dict[str, Any]:
        procs = Processes(dict(self.procs.pids))
        procs.add("client (load)", os.getpid())
        procs.add("client (subscribers)", fleet.proc.pid)
        sampler = Sampler(procs)
        before = await self.push_metrics()
        ingest_before = await self.ingest_metrics()
        sampler.start()

        async def sample() -> None:
            while True:
                await asyncio.sleep(1)
                sampler.sample()

        sampling = asyncio.create_task(sample())
        started = time.monotonic()
        stats: StepLoad = await load.step(n, None, rate, seconds)
        elapsed = time.monotonic() - started
        sampling.cancel()
        cpu, rss = sampler.stop()
        expected = sum(v * profile.subscribers_per_tenant for v in stats.posted.values())
        drain_s = await self.drain(fleet, n, expected)
        after = await self.push_metrics()
        ingest_after = await self.ingest_metrics()
        got = await fleet.acall(cmd="result", step=n)
        e2e_before = histogram(before, "syncpipe_push_end_to_end_seconds")
        e2e_after = histogram(after, "syncpipe_push_end_to_end_seconds")
        push_e2e = (
            {f"p{q}": 1000 * quantile(e2e_before, e2e_after, q / 100) for q in (50, 99)}
            if e2e_before and e2e_after
            else {}
        )
        return {
            "rate_ops_s": rate,
            "seconds": round(elapsed, 2),
            "subscribers": profile.connections,
            "deliveries_offered_per_s": rate * profile.subscribers_per_tenant,
            "accepted_ops": stats.accepted,
            "rejected_ops": stats.rejected,
            "ingest_failures": {
                **counter_delta(
                    ingest_before, ingest_after, "syncpipe_ingest_requests_failed_total"
                ),
                **counter_delta(ingest_before, ingest_after, "syncpipe_ingest_ops_rejected_total"),
            },
            "achieved_ops_s": stats.accepted / elapsed,
            "deliveries_expected": expected,
            "deliveries_got": got["distinct"],
            "deliveries_per_s": got["distinct"] / (elapsed + drain_s),
            "missing": expected - got["distinct"],
            "duplicates": got["duplicates"],
            "latency_ms": got["latency_ms"],
            "post_to_ingest_stamp_ms": got["to_ingest_ms"],
            "drain_s": round(drain_s, 2),
            "push": {
                "dropped": counter_delta(before, after, "syncpipe_push_messages_dropped_total"),
                "conflated": counter_delta(before, after, "syncpipe_push_messages_conflated_total"),
                "disconnect_notices": counter_delta(
                    before, after, "syncpipe_push_disconnect_notices_total"
                ),
                "closes": counter_delta(before, after, "syncpipe_push_closes_total"),
                "server_e2e_ms": push_e2e,
            },
            "connections_open": got["connections_open"],
            "load": {
                "requests": stats.requests,
                "request_p50_ms": pct(stats.request_ms, 50),
                "request_p99_ms": pct(stats.request_ms, 99),
                "schedule_lag_p99_ms": pct(stats.lag_ms, 99),
                "errors": sorted(set(stats.errors))[:5],
            },
            "cpu_pct": {k: round(v, 1) for k, v in cpu.items()},
            "rss_mib": {k: round(v, 1) for k, v in rss.items()},
        }

    async def profile(self, profile: Profile) -> dict[str, Any]:
        args = self.args
        tenants = {
            f"bench-{profile.name}-{i}": mint_token(
                self.shared, tenant=f"bench-{profile.name}-{i}", user_id="bench", ttl_s=6 * 3600
            )
            for i in range(profile.tenants)
        }
        rates = parse_rates(args.rates, profile.rate)
        fleet = WsFleet()
        load = Load(
            self.endpoints.ingest_port, profile.collection, tenants, profile.entities_per_tenant
        )
        tokens = [tok for tok in tenants.values() for _ in range(profile.subscribers_per_tenant)]
        result: dict[str, Any] = {
            "tenants": profile.tenants,
            "subscribers_per_tenant": profile.subscribers_per_tenant,
            "connections": profile.connections,
            "target": {
                "rate_ops_s": profile.rate,
                "deliveries_per_s": profile.rate * profile.subscribers_per_tenant,
                "p50_ms": profile.p50_ms,
                "p99_ms": profile.p99_ms,
                "zero_drops": profile.zero_drops,
            },
            "steps": [],
        }
        try:
            opened = await fleet.acall(
                cmd="open",
                url=self.endpoints.push_url,
                collection=profile.collection,
                tokens=tokens,
            )
            say(
                f"[{profile.name}] {opened['opened']} subscribers connected and subscribed "
                f"in {opened['seconds']:.1f} s"
                + (f"; {opened['failed']} failed: {opened['errors']}" if opened["failed"] else "")
            )
            if opened["failed"]:
                raise RuntimeError(f"{opened['failed']} subscribers could not connect")
            await self.warm_up(profile, fleet, load)
            queue, passed, stopped, halvings, i = list(rates), False, False, 0, 0
            while queue:
                rate, mult = queue.pop(0)
                i += 1
                label = f"{mult:g}x" if mult is not None else "custom"
                say(
                    f"[{profile.name}] step {i}/{i + len(queue)}: "
                    f"{fmt_rate(rate)} ops/s ({label}), "
                    f"{rate * profile.subscribers_per_tenant:,.0f} deliveries/s "
                    f"for {args.duration:g} s"
                )
                self.check_running()
                step = await self.step(profile, fleet, load, i, rate, args.duration)
                self.check_running()
                step["multiplier"] = mult
                result["steps"].append(step)
                say(f"[{profile.name}]   {summary(step)}")
                if stopped:
                    continue
                if sustained(step):
                    passed = True
                    continue
                # the target rate always runs (its verdict), whatever the sweep found
                target = [r for r in queue if r[1] == 1]
                if not passed and halvings < MAX_HALVINGS:
                    # not even the lowest rate kept p99 <= 250 ms: look below the sweep
                    halvings += 1
                    queue = [(rate / 2, mult / 2 if mult is not None else None), *target]
                    say(f"[{profile.name}]   not sustained: trying half the rate")
                    continue
                stopped, queue = True, target
                say(
                    f"[{profile.name}]   not sustained (p99 > {SWEEP_P99_MS:g} ms or ops "
                    "rejected): sweep stops here"
                    + ("; the target rate still runs" if target else "")
                )
        finally:
            load.close()
            await asyncio.to_thread(fleet.stop)
        result["steps"].sort(key=lambda s: s["rate_ops_s"])
        result["target"].update(verdict(profile, result["steps"]))
        ok = [s["rate_ops_s"] for s in result["steps"] if sustained(s)]
        result["max_rate_p99_le_250ms"] = max(ok) if ok else None
        # every step passed: the highest rate run is only a lower bound of the capacity
        result["max_rate_is_lower_bound"] = (
            bool(ok) and max(ok) == result["steps"][-1]["rate_ops_s"]
        )
        return result

    async def warm_up(self, profile: Profile, fleet: WsFleet, load: Load) -> None:
        """Rounds of one op per tenant until a round reaches every subscriber, before
        anything is measured: on a fresh system streams may still be joining its consumer
        group and push may start reading new topics after their first states."""
        started = time.monotonic()
        deadline = started + self.args.warmup_timeout
        for rnd in range(WARMUP_STEP, WARMUP_STEP + 10_000):
            stats = await load.step(rnd, profile.tenants, profile.tenants * 10, 0)
            expected = sum(v * profile.subscribers_per_tenant for v in stats.posted.values())
            round_end = min(deadline, time.monotonic() + 5)
            while (got := await fleet.acall(cmd="count", step=rnd))["distinct"] < expected:
                if time.monotonic() > round_end:
                    break
                await asyncio.sleep(0.1)
            await fleet.acall(cmd="result", step=rnd)
            if stats.accepted == profile.tenants and got["distinct"] >= expected:
                say(
                    f"[{profile.name}] pipeline warm after {time.monotonic() - started:.1f} s "
                    f"({rnd - WARMUP_STEP + 1} round(s) of one op per tenant)"
                )
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"warm-up: {got['distinct']} of {expected} deliveries "
                    f"(ingest rejected {stats.rejected or 'none'}) within "
                    f"{self.args.warmup_timeout:g} s; is streams running?"
                )


def sustained(step: dict[str, Any]) -> bool:
    """A rate the system keeps: p99 <= 250 ms, deliveries, and ingest accepted >= 99 %."""
    rejected: int = sum(step["rejected_ops"].values())
    accepted: int = step["accepted_ops"]
    p99: float = step["latency_ms"]["p99"]
    return (
        p99 <= SWEEP_P99_MS
        and step["deliveries_got"] > 0
        and rejected <= 0.01 * (accepted + rejected)
    )


def verdict(profile: Profile, steps: list[dict[str, Any]]) -> dict[str, Any]:
    at = [s for s in steps if s.get("multiplier") == 1]
    if not at:
        return {"measured": False, "met": None, "misses": []}
    s = at[0]
    misses = []
    lat = s["latency_ms"]
    if profile.p50_ms is not None and lat["p50"] > profile.p50_ms:
        misses.append(f"p50 {lat['p50']:.1f} ms > {profile.p50_ms:g} ms")
    if lat["p99"] > profile.p99_ms:
        misses.append(f"p99 {lat['p99']:.1f} ms > {profile.p99_ms:g} ms")
    drops = s["missing"] + sum(s["push"]["dropped"].values())
    if profile.zero_drops and drops:
        misses.append(f"{drops} deliveries dropped or missing")
    rejected = sum(s["rejected_ops"].values())
    if rejected:  # the rate was not sustained: those ops never reach anyone
        reasons = ", ".join(sorted(s["rejected_ops"]))
        misses.append(f"{rejected} ops rejected by ingest ({reasons})")
    if s["deliveries_got"] == 0:
        misses.append("no deliveries")
    return {"measured": True, "met": not misses, "misses": misses}


def summary(step: dict[str, Any]) -> str:
    lat = step["latency_ms"]
    push = step["push"]
    return (
        f"p50={lat['p50']:.1f} p95={lat['p95']:.1f} p99={lat['p99']:.1f} max={lat['max']:.1f} ms; "
        f"deliveries {step['deliveries_got']:,}/{step['deliveries_expected']:,} "
        f"({step['deliveries_per_s']:,.0f}/s), ops accepted {step['achieved_ops_s']:,.0f}/s, "
        f"dropped {sum(push['dropped'].values()):.0f}, conflated "
        f"{sum(push['conflated'].values()):.0f}; cpu% "
        + " ".join(f"{k}={v:.0f}" for k, v in step["cpu_pct"].items())
    )


def say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def machine() -> dict[str, Any]:
    import psutil

    cpu_model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "note": "broker, Redis, streams, ingest, push and the bench clients on one machine",
    }


async def run(
    args: argparse.Namespace,
    endpoints: Endpoints,
    procs: Processes,
    check_running: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    table = QUICK if args.quick else PROFILES
    names = list(table) if args.profile == "all" else [args.profile]
    bench = Bench(endpoints, procs, args, check_running)
    out: dict[str, Any] = {"profiles": {}}
    try:
        for name in names:
            p = table[name]
            if args.tenants or args.subscribers:
                p = Profile(
                    p.name,
                    args.tenants or p.tenants,
                    args.subscribers or p.subscribers_per_tenant,
                    p.rate,
                    p.p50_ms,
                    p.p99_ms,
                    p.zero_drops,
                    p.entities_per_tenant,
                )
            out["profiles"][name] = await bench.profile(p)
    finally:
        await bench.http.aclose()
    return out


def _interrupt(signum: int, frame: object) -> None:
    signal.raise_signal(signal.SIGINT)  # whoever handles Ctrl-C now (the event loop, or us)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="perf/bench.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Example: uv run python perf/bench.py --profile teams --duration 10 --check",
    )
    parser.add_argument(
        "--profile",
        choices=("teams", "broadcast", "all"),
        default="all",
        help="teams: 200 tenants x 5 subscribers, 2,000 ops/s; broadcast: 1 x 1,000, 50 ops/s "
        "[all]",
    )
    parser.add_argument("--duration", type=float, default=None, help="seconds per step [8]")
    parser.add_argument(
        "--rates",
        default=None,
        help=f"rates per step: ops/s (500) or multiples of the profile's target (2x) "
        f"[{DEFAULT_RATES}; --quick: 1x,2x]",
    )
    parser.add_argument("--tenants", type=int, default=None, help="override the profile")
    parser.add_argument(
        "--subscribers", type=int, default=None, help="subscribers per tenant (override)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "results",
        help="directory for bench.json, bench.md, bench.png [perf/results]",
    )
    parser.add_argument("--quick", action="store_true", help="tiny profiles and steps (tests)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--attach", action="store_true", help="use a running system (--ingest-url, --push-url)"
    )
    parser.add_argument("--ingest-url", default="http://127.0.0.1:8080", help="with --attach")
    parser.add_argument("--push-url", default="ws://127.0.0.1:8081/v1/ws", help="with --attach")
    parser.add_argument("--drain-timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    parser.add_argument("--warmup-timeout", type=float, default=90.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 2.0 if args.quick else 8.0
    if args.rates is None:
        args.rates = "1x,2x" if args.quick else DEFAULT_RATES
    if args.duration <= 0:
        parser.error("--duration must be positive")
    for name in ("tenants", "subscribers"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    parse_rates(args.rates, 1.0)

    started = time.time()
    # SIGTERM (a timeout, a kill) stops the system the bench started, as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    say(f"end-to-end bench on {os.cpu_count()} cores, profile {args.profile}")
    try:
        if args.attach:
            endpoints = Endpoints(args.ingest_url, args.push_url)
            procs = Processes.listening(
                {"ingest": endpoints.ingest_port, "push": endpoints.push_port}
            )
            config = "attached to a running system (its own settings; ingest rate limits apply)"
            result = asyncio_run(run(args, endpoints, procs))
        else:
            with DevSystem() as system:
                say(f"syncpipe dev up: ingest {system.endpoints.ingest_url}, push "
                    f"{system.endpoints.push_url}; components "
                    + ", ".join(sorted(system.tree.pids)))  # fmt: skip
                config = "syncpipe dev started by the bench with " + ", ".join(
                    f"{k}={v}" for k, v in DEV_ENV.items()
                )
                try:
                    result = asyncio_run(
                        run(args, system.endpoints, system.tree, system.check_running)
                    )
                except (RuntimeError, OSError):
                    for line in system.problems():
                        print(f"  {line}", file=sys.stderr)
                    raise
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    result = {
        "command": " ".join(["perf/bench.py", *(sys.argv[1:] if argv is None else argv)]),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_s": round(time.time() - started, 1),
        "machine": machine(),
        "system": config,
        "duration_s": args.duration,
        "quick": args.quick,
        **result,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(result, args.out / "bench.md")
    write_plot(result, args.out / "bench.png")
    say(f"wrote {args.out / 'bench.json'}, bench.md, bench.png in {result['wall_s']:.0f} s")
    missed = False
    for name, prof in result["profiles"].items():
        t = prof["target"]
        state = "not measured" if not t["measured"] else ("met" if t["met"] else "MISSED")
        best = prof["max_rate_p99_le_250ms"]
        bound = ">= " if prof["max_rate_is_lower_bound"] else ""
        say(
            f"[{name}] target {state}"
            + (f" ({'; '.join(t['misses'])})" if t["misses"] else "")
            + "; highest rate with p99 <= 250 ms (ops accepted): "
            + (f"{bound}{fmt_rate(best)} ops/s" if best else "none")
        )
        missed |= t["met"] is False
    return 1 if args.check and missed else 0


def asyncio_run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


if __name__ == "__main__":
    sys.exit(main())
