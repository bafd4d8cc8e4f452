"""``syncpipe dev``: run the whole system on this machine under one supervisor.

Starts, in order and each ready before the next: the embedded broker (unless
SYNCPIPE_KAFKA_BOOTSTRAP points elsewhere), Redis (SYNCPIPE_REDIS_URL if set, else a
real ``redis-server``: see :mod:`syncpipe.redis_server`), streams, ingest, push and the
PWA server; restarts any that die, with backoff, and says so; stops all on Ctrl-C or
SIGTERM. Every child is configured through its environment variables, as in production.

Ready means: broker port open; Redis answers PING; streams serves /metrics (it does so
once its topics exist); ingest and push answer /readyz with 200 (broker and Redis
reachable, push consuming); the PWA server answers /healthz.

The data directory (SYNCPIPE_DEV_DATA_DIR, ``./.syncpipe``) holds the broker's log, the
Redis append-only file and each component's log; a marker file identifies it so
``--reset`` never wipes a directory that is not one, and a lock keeps two ``syncpipe
dev`` off the same directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated

import typer

from schemas.auth import mint_token
from schemas.settings import SettingsError, SharedSettings
from streams.settings import StreamsSettings
from syncpipe.pwa_static import (
    PwaBuildError,
    PwaNotBuiltError,
    create_pwa_app,
    ensure_pwa_built,
    pwa_dist,
)
from syncpipe.redis_server import RedisNotFoundError, ping, ping_url, redis_argv
from syncpipe.settings import ConfigError, DevSettings, load_settings
from syncpipe.supervisor import ProcessSpec, Supervisor, SupervisorError, port_open

PY = sys.executable
MARKER = ".syncpipe-data"
LOCK = "dev.lock"
KNOWN_ENTRIES = frozenset({MARKER, LOCK, "broker", "redis", "logs"})
PORT_VARS = {
    "kafka": "SYNCPIPE_DEV_KAFKA_PORT",
    "redis": "SYNCPIPE_DEV_REDIS_PORT",
    "streams": "SYNCPIPE_STREAMS_METRICS_PORT",
    "ingest": "SYNCPIPE_DEV_INGEST_PORT",
    "push": "SYNCPIPE_DEV_PUSH_PORT",
    "pwa": "SYNCPIPE_DEV_PWA_PORT",
}


class DevError(Exception):
    """``syncpipe dev`` cannot start; the message says why and what to do."""


@dataclass(slots=True)
class Plan:
    specs: list[ProcessSpec]
    urls: dict[str, str]
    notes: list[str] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)


# --- the data directory -------------------------------------------------------------------


def looks_like_data_dir(data: Path) -> bool:
    """True for a directory ``syncpipe dev`` made (marker) or one holding only its entries."""
    if (data / MARKER).is_file():
        return True
    return all(entry.name in KNOWN_ENTRIES for entry in data.iterdir())


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def reset_data_dir(data: Path) -> str:
    """Wipe a syncpipe data directory; returns what was wiped. Refuses anything else."""
    if not data.exists():
        return f"reset: {data} does not exist yet; nothing to wipe"
    if not data.is_dir() or not looks_like_data_dir(data):
        found = ", ".join(sorted(e.name for e in data.iterdir())[:8]) if data.is_dir() else ""
        raise DevError(
            f"refusing to --reset {data}: it does not look like a syncpipe data directory "
            f"(no {MARKER} marker; it holds {found or 'a file'}). Delete it yourself or "
            "point SYNCPIPE_DEV_DATA_DIR at the right directory"
        )
    with _locked(data):
        wiped = [
            f"{entry.name} ({_human(_size(entry))})"
            for entry in sorted(data.iterdir())
            if entry.name not in {MARKER, LOCK}
        ]
    shutil.rmtree(data)
    what = ", ".join(wiped) if wiped else "nothing but the marker"
    return f"reset: wiped {data}: {what}"


@contextlib.contextmanager
def _locked(data: Path) -> Iterator[IO[str]]:
    """Hold the data directory's lock, or fail when another ``syncpipe dev`` holds it."""
    data.mkdir(parents=True, exist_ok=True)
    handle = (data / LOCK).open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "?"
            raise DevError(
                f"another syncpipe dev (pid {pid}) is using {data}; stop it first or set "
                "SYNCPIPE_DEV_DATA_DIR to another directory"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield handle
    finally:
        handle.close()


def prepare_data_dir(data: Path) -> None:
    data.mkdir(parents=True, exist_ok=True)
    marker = data / MARKER
    if not marker.exists():
        marker.write_text(
            "syncpipe dev data directory: broker log, Redis data, component logs.\n"
            "`syncpipe dev --reset` wipes it.\n"
        )


# --- the plan -----------------------------------------------------------------------------


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_ok(url: str) -> Callable[[], bool]:
    """A probe: GET ``url`` answers 200 (no proxy: these are loopback URLs)."""

    def probe() -> bool:
        try:
            with _NO_PROXY.open(url, timeout=2) as resp:
                return int(resp.status) == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    return probe


def _redis_ping(port: int) -> Callable[[], bool]:
    return lambda: ping(port)


def plan(
    dev: DevSettings,
    shared_env: dict[str, str],
    *,
    streams_metrics_port: int,
    log_format: str | None = None,
) -> Plan:
    """What to run, on which ports, with which environment (``log_format``: children's)."""
    data = dev.data_dir.resolve()
    logs = data / "logs"
    env: dict[str, str] = {} if log_format is None else {"SYNCPIPE_LOG_FORMAT": log_format}
    p = Plan(specs=[], urls={})
    timeout = dev.ready_timeout_s

    def spec(
        name: str,
        argv: list[str],
        port: int,
        extra: dict[str, str],
        ready_probe: Callable[[], bool] | None = None,
    ) -> None:
        p.ports[name] = port
        log = logs / f"{name}.log"
        p.specs.append(ProcessSpec(name, argv, port, extra, timeout, log, ready_probe))

    if "SYNCPIPE_KAFKA_BOOTSTRAP" in shared_env:
        env["SYNCPIPE_KAFKA_BOOTSTRAP"] = shared_env["SYNCPIPE_KAFKA_BOOTSTRAP"]
        p.notes.append("broker: not started; using SYNCPIPE_KAFKA_BOOTSTRAP")
    else:
        env["SYNCPIPE_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{dev.kafka_port}"
        spec("broker", [PY, "-m", "broker"], dev.kafka_port, {
            "SYNCPIPE_BROKER_HOST": "127.0.0.1",
            "SYNCPIPE_BROKER_PORT": str(dev.kafka_port),
            "SYNCPIPE_BROKER_DATA_DIR": str(data / "broker"),
            "SYNCPIPE_BROKER_METRICS_PORT": "0",
            **env,
        })  # fmt: skip
    p.urls["kafka"] = env["SYNCPIPE_KAFKA_BOOTSTRAP"]

    if "SYNCPIPE_REDIS_URL" in shared_env:
        env["SYNCPIPE_REDIS_URL"] = shared_env["SYNCPIPE_REDIS_URL"]
        p.notes.append("redis: not started; using SYNCPIPE_REDIS_URL")
    else:
        env["SYNCPIPE_REDIS_URL"] = f"redis://127.0.0.1:{dev.redis_port}/0"
        argv = redis_argv(dev.redis_port, data / "redis", persist=True)
        spec("redis", argv, dev.redis_port, {}, ready_probe=_redis_ping(dev.redis_port))
    p.urls["redis"] = env["SYNCPIPE_REDIS_URL"]

    origins = json.dumps([f"http://127.0.0.1:{dev.pwa_port}", f"http://localhost:{dev.pwa_port}"])
    ingest = f"http://127.0.0.1:{dev.ingest_port}"
    push = f"http://127.0.0.1:{dev.push_port}"
    spec("streams", [PY, "-m", "syncpipe", "streams"], streams_metrics_port, {
        **env,
        "SYNCPIPE_STREAMS_METRICS_PORT": str(streams_metrics_port),
    })  # fmt: skip
    spec("ingest", [PY, "-m", "syncpipe", "ingest"], dev.ingest_port, {
        **env,
        "SYNCPIPE_INGEST_PORT": str(dev.ingest_port),
        "SYNCPIPE_INGEST_CORS_ORIGINS": origins,
    }, ready_probe=_http_ok(f"{ingest}/readyz"))  # fmt: skip
    spec("push", [PY, "-m", "syncpipe", "push"], dev.push_port, {
        **env,
        "SYNCPIPE_PUSH_PORT": str(dev.push_port),
        "SYNCPIPE_PUSH_ALLOWED_ORIGINS": origins,
    }, ready_probe=_http_ok(f"{push}/readyz"))  # fmt: skip
    p.urls["streams"] = f"http://127.0.0.1:{streams_metrics_port}/metrics"
    p.urls["ingest"] = ingest
    p.urls["push"] = f"ws://127.0.0.1:{dev.push_port}/v1/ws"
    return p


def add_pwa(p: Plan, dev: DevSettings, token: str) -> None:
    argv = [PY, "-m", "syncpipe", "serve-pwa", "--port", str(dev.pwa_port),
            "--api-base", p.urls["ingest"], "--ws-base", f"ws://127.0.0.1:{dev.push_port}",
            "--token", token]  # fmt: skip
    log = dev.data_dir.resolve() / "logs" / "pwa.log"
    probe = _http_ok(f"http://127.0.0.1:{dev.pwa_port}/healthz")
    p.specs.append(
        ProcessSpec("pwa", argv, dev.pwa_port, {}, dev.ready_timeout_s, log, ready_probe=probe)
    )
    p.ports["pwa"] = dev.pwa_port
    p.urls["app"] = f"http://127.0.0.1:{dev.pwa_port}/"


def check_ports(ports: dict[str, int]) -> None:
    """Every port distinct and free, or one error naming each problem and its setting."""
    problems: list[str] = []
    by_port: dict[int, list[str]] = {}
    for name, port in ports.items():
        by_port.setdefault(port, []).append(name)
    for port, names in by_port.items():
        if len(names) > 1:
            problems.append(
                f"port {port} is configured for {' and '.join(names)} "
                f"({', '.join(PORT_VARS[n] for n in names)}); give each its own port"
            )
        elif port_open(port):
            name = names[0]
            problems.append(
                f"port {port} ({name}) is already in use: stop whatever listens there or set "
                f"{PORT_VARS[name]} to a free port"
            )
    if problems:
        raise DevError("; ".join(problems))


def any_reachable(bootstrap: str) -> bool:
    """True when one of the ``host:port`` servers accepts a TCP connection."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        if port.isdigit() and port_open(int(port), host.strip("[]") or "127.0.0.1"):
            return True
    return False


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- running ------------------------------------------------------------------------------


def _say(line: str) -> None:
    # A closed terminal or pipe must not stop the supervisor from stopping its children.
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


async def _run(sup: Supervisor, summary: list[str]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.create_task(sup.start())
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # raises SupervisorError when a component could not start
            for line in summary:
                _say(line)
            _say("syncpipe dev is up; Ctrl-C stops everything.")
            await stopped
        else:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
    finally:
        stopped.cancel()
        _say("[dev] stopping... (Ctrl-C again to kill what is left)")
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, sup.hurry)
        await sup.stop()
        _say("[dev] stopped; nothing left running.")


def dev(
    build_pwa: Annotated[
        bool, typer.Option(help="Build the PWA first when pwa/dist is missing (needs npm).")
    ] = True,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset", help="Wipe the data directory (broker log, Redis data, logs) first."
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Keep component logs in the data directory's logs/ only."
        ),
    ] = False,
) -> None:
    """Start the embedded broker, Redis, streams, ingest and push, and serve the PWA.

    Waits for each to be ready in dependency order, prints the URLs, a dev token and the
    data directory, restarts a component that crashes, and stops everything on Ctrl-C.
    Component logs are printed, each line prefixed with the component's name in brackets,
    and kept in logs/ under the data directory (--quiet: only there). Data (SYNCPIPE_DEV_DATA_DIR,
    default ./.syncpipe) survives restarts; --reset wipes it. Pointing
    SYNCPIPE_KAFKA_BOOTSTRAP or SYNCPIPE_REDIS_URL elsewhere uses that Kafka or Redis
    instead of starting one.
    """
    try:
        settings = load_settings(DevSettings)
        shared = load_settings(SharedSettings)
        token = mint_token(shared, tenant=settings.tenant, user_id=settings.user, ttl_s=7 * 86400)
        data = settings.data_dir.resolve()
        if reset:
            _say(reset_data_dir(data))
        with _locked(data):
            prepare_data_dir(data)
            shared_env = {k: v for k, v in os.environ.items() if k.startswith("SYNCPIPE_")}
            redis_url = shared_env.get("SYNCPIPE_REDIS_URL")
            if redis_url is not None and not ping_url(redis_url):
                raise DevError(
                    "SYNCPIPE_REDIS_URL is set but that Redis does not answer PING; start it "
                    "or unset SYNCPIPE_REDIS_URL to let syncpipe dev run its own"
                )
            kafka = shared_env.get("SYNCPIPE_KAFKA_BOOTSTRAP")
            if kafka is not None and not any_reachable(kafka):
                raise DevError(
                    f"SYNCPIPE_KAFKA_BOOTSTRAP={kafka} is set but no server there accepts "
                    "connections; start that Kafka or unset SYNCPIPE_KAFKA_BOOTSTRAP to let "
                    "syncpipe dev run the embedded broker"
                )
            # streams' /metrics is its readiness port: its own setting, else any free port
            metrics_port = load_settings(StreamsSettings).metrics_port or free_port()
            # Children's logs are prefixed lines on a terminal: text reads better than JSON.
            text = not quiet and sys.stdout.isatty() and "SYNCPIPE_LOG_FORMAT" not in shared_env
            p = plan(
                settings,
                shared_env,
                streams_metrics_port=metrics_port,
                log_format="text" if text else None,
            )
            dist = pwa_dist()
            if build_pwa:
                ensure_pwa_built(dist, data / "logs" / "pwa-build.log", _say)
            if (dist / "index.html").is_file():
                add_pwa(p, settings, token)
            else:
                p.notes.append(
                    f"app: not served ({dist} is missing; build it with npm --prefix pwa run "
                    "build or drop --no-build-pwa)"
                )
            check_ports(p.ports)
            summary = [f"  note: {line}" for line in p.notes]
            summary += [f"  {name:<8} {url}" for name, url in p.urls.items()]
            summary += [f"  token    {token}", f"  data     {data}", f"  logs     {data / 'logs'}"]
            output = None if quiet else _prefixer([s.name for s in p.specs])
            sup = Supervisor(p.specs, notify=lambda m: _say(f"[dev] {m}"), output=output)
            asyncio.run(_run(sup, summary))
    except (ConfigError, SettingsError, RedisNotFoundError, DevError, PwaBuildError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except SupervisorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _prefixer(names: list[str]) -> Callable[[str, str], None]:
    width = max(len(n) for n in names) + 2 if names else 0

    def output(name: str, line: str) -> None:
        _say(f"{f'[{name}]':<{width}} {line}")

    return output


def serve_pwa(
    port: Annotated[int, typer.Option(help="Port to serve on.")],
    api_base: Annotated[str, typer.Option(help="Base URL of ingest.")],
    ws_base: Annotated[str, typer.Option(help="Base URL of push (ws://...).")],
    token: Annotated[str | None, typer.Option(help="Token handed to the app, if any.")] = None,
    dist: Annotated[Path | None, typer.Option(help="Build output to serve.")] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0 inside a container).")
    ] = "127.0.0.1",
) -> None:
    """Serve the built PWA with its /config.js (used by `syncpipe dev`)."""
    import uvicorn

    try:
        app = create_pwa_app(dist or pwa_dist(), api_base=api_base, ws_base=ws_base, token=token)
    except PwaNotBuiltError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(app, host=host, port=port, log_level="warning", log_config=None)


def register(app: typer.Typer) -> None:
    app.command()(dev)
    app.command("serve-pwa")(serve_pwa)
