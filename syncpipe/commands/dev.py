"""``syncpipe dev``: run the whole system on this machine under one supervisor.

Starts, in order and each ready before the next: the embedded broker (unless
SYNCPIPE_KAFKA_BOOTSTRAP points elsewhere), Redis (unless SYNCPIPE_REDIS_URL is set),
streams, ingest, push and the PWA server; restarts any that die; stops all on Ctrl-C.
Every child is configured through its environment variables, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from schemas.auth import mint_token
from schemas.settings import SettingsError, SharedSettings
from syncpipe.pwa_static import PwaNotBuiltError, create_pwa_app
from syncpipe.redis_server import RedisNotFoundError, redis_argv
from syncpipe.settings import ConfigError, DevSettings, load_settings
from syncpipe.supervisor import ProcessSpec, Supervisor, SupervisorError

# Component name -> module whose presence means the component is in this build.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("broker", "broker.server"),
    ("redis", "syncpipe.redis_server"),
    ("streams", "streams.app"),
    ("ingest", "ingest.app"),
    ("push", "push.app"),
    ("pwa", "syncpipe.pwa_static"),
)

PY = sys.executable


def available_components() -> dict[str, bool]:
    return {name: importlib.util.find_spec(mod) is not None for name, mod in COMPONENTS}


@dataclass(frozen=True, slots=True)
class Plan:
    specs: list[ProcessSpec]
    urls: dict[str, str]
    notes: list[str]


def pwa_dist() -> Path:
    return Path(__file__).resolve().parents[2] / "pwa" / "dist"


def ensure_pwa_built(dist: Path) -> str | None:
    """Build the PWA when it has no build output; returns a note when it cannot."""
    if (dist / "index.html").is_file():
        return None
    pwa = dist.parent
    npm = shutil.which("npm")
    if npm is None or not (pwa / "package.json").is_file():
        return "pwa: not built and npm is unavailable; the app will not be served"
    typer.echo("building the PWA (first run)...")
    steps = [[npm, "ci", "--no-audit", "--no-fund"]] if not (pwa / "node_modules").is_dir() else []
    steps.append([npm, "run", "build"])
    for step in steps:
        proc = subprocess.run(step, cwd=pwa, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            return "pwa: build failed: " + " | ".join(tail)
    return None


def plan(dev: DevSettings, shared_env: dict[str, str]) -> Plan:
    have = available_components()
    data = dev.data_dir.resolve()
    logs = data / "logs"
    specs: list[ProcessSpec] = []
    notes = [f"{name}: not available in this version" for name, ok in have.items() if not ok]
    env: dict[str, str] = {}
    urls: dict[str, str] = {}

    if "SYNCPIPE_KAFKA_BOOTSTRAP" in shared_env:
        env["SYNCPIPE_KAFKA_BOOTSTRAP"] = shared_env["SYNCPIPE_KAFKA_BOOTSTRAP"]
        notes.append(f"broker: using SYNCPIPE_KAFKA_BOOTSTRAP={env['SYNCPIPE_KAFKA_BOOTSTRAP']}")
    elif have["broker"]:
        env["SYNCPIPE_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{dev.kafka_port}"
        broker_env = {
            "SYNCPIPE_BROKER_HOST": "127.0.0.1",
            "SYNCPIPE_BROKER_PORT": str(dev.kafka_port),
            "SYNCPIPE_BROKER_DATA_DIR": str(data / "broker"),
            "SYNCPIPE_BROKER_METRICS_PORT": "0",
        }
        specs.append(
            ProcessSpec("broker", [PY, "-m", "broker"], dev.kafka_port, broker_env,
                        dev.ready_timeout_s, logs / "broker.log")
        )  # fmt: skip
    urls["kafka"] = env.get("SYNCPIPE_KAFKA_BOOTSTRAP", "(none)")

    if "SYNCPIPE_REDIS_URL" in shared_env:
        env["SYNCPIPE_REDIS_URL"] = shared_env["SYNCPIPE_REDIS_URL"]
    else:
        env["SYNCPIPE_REDIS_URL"] = f"redis://127.0.0.1:{dev.redis_port}/0"
        argv = redis_argv(dev.redis_port, data / "redis", persist=True)
        specs.append(
            ProcessSpec("redis", argv, dev.redis_port, {}, dev.ready_timeout_s, logs / "redis.log")
        )
    urls["redis"] = env["SYNCPIPE_REDIS_URL"]

    origins = json.dumps([f"http://127.0.0.1:{dev.pwa_port}", f"http://localhost:{dev.pwa_port}"])
    services: list[tuple[str, int | None, dict[str, str]]] = [
        ("streams", None, {}),
        ("ingest", dev.ingest_port, {
            "SYNCPIPE_INGEST_PORT": str(dev.ingest_port),
            "SYNCPIPE_INGEST_CORS_ORIGINS": origins,
        }),
        ("push", dev.push_port, {
            "SYNCPIPE_PUSH_PORT": str(dev.push_port),
            "SYNCPIPE_PUSH_ALLOWED_ORIGINS": origins,
        }),
    ]  # fmt: skip
    for name, port, extra in services:
        if have[name]:
            specs.append(
                ProcessSpec(name, [PY, "-m", "syncpipe", name], port, {**env, **extra},
                            dev.ready_timeout_s, logs / f"{name}.log")
            )  # fmt: skip
    if have["ingest"]:
        urls["ingest"] = f"http://127.0.0.1:{dev.ingest_port}"
    if have["push"]:
        urls["push"] = f"ws://127.0.0.1:{dev.push_port}/v1/ws"
    return Plan(specs, urls, notes)


async def _run(sup: Supervisor) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await sup.start()
        typer.echo("syncpipe dev is up; Ctrl-C stops everything.")
        await stop.wait()
    finally:
        typer.echo("stopping...")
        await sup.stop()


def dev(
    build_pwa: Annotated[
        bool, typer.Option(help="Build the PWA first when pwa/dist is missing.")
    ] = True,
) -> None:
    """Start the embedded broker, Redis, streams, ingest and push, and serve the PWA.

    Prints the URLs and a dev token once all are up; Ctrl-C stops everything. Component
    logs go to .syncpipe/logs/ (SYNCPIPE_DEV_DATA_DIR). Pointing SYNCPIPE_KAFKA_BOOTSTRAP
    or SYNCPIPE_REDIS_URL elsewhere uses that Kafka or Redis instead of starting one.
    """
    try:
        settings = load_settings(DevSettings)
        shared = load_settings(SharedSettings)
        token = mint_token(shared, tenant=settings.tenant, user_id=settings.user, ttl_s=7 * 86400)
        shared_env = {k: v for k, v in os.environ.items() if k.startswith("SYNCPIPE_")}
        p = plan(settings, shared_env)
    except (ConfigError, SettingsError, RedisNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc

    notes = list(p.notes)
    have = available_components()
    if have["ingest"] and have["push"]:
        dist = pwa_dist()
        note = ensure_pwa_built(dist) if build_pwa else None
        if note is None and (dist / "index.html").is_file():
            argv = [PY, "-m", "syncpipe", "serve-pwa", "--port", str(settings.pwa_port),
                    "--api-base", p.urls["ingest"], "--ws-base", f"ws://127.0.0.1:{settings.push_port}",
                    "--token", token]  # fmt: skip
            logs = settings.data_dir.resolve() / "logs" / "pwa.log"
            p.specs.append(ProcessSpec("pwa", argv, settings.pwa_port, {}, 30.0, logs))
            p.urls["app"] = f"http://127.0.0.1:{settings.pwa_port}/"
        elif note:
            notes.append(note)

    for line in notes:
        typer.echo(f"  note: {line}")
    for name, url in p.urls.items():
        typer.echo(f"  {name:<8} {url}")
    typer.echo(f"  token    {token}")
    typer.echo(f"  logs     {settings.data_dir.resolve() / 'logs'}")
    try:
        asyncio.run(_run(Supervisor(p.specs)))
    except SupervisorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


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
