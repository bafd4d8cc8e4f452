"""Run child processes, restart the ones that die, stop them all on request.

Used by ``syncpipe dev``. Each child is a :class:`ProcessSpec`; the supervisor starts
children in order, waits for each to become ready (a TCP port accepting connections)
before starting the next, restarts a child that exits with backoff, and on stop sends
SIGTERM to each in reverse order, waiting for it (SIGKILL after a grace period).

    starting ──ready──► running ──exit──► backoff ──► starting
        │                  │
        └──── stop ────────┴──► stopping ──► stopped
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)


class SupervisorError(Exception):
    """A child could not be started or did not become ready in time."""


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """How to run one child."""

    name: str
    argv: Sequence[str]
    ready_port: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 30.0
    log_file: Path | None = None


@dataclass(slots=True)
class _Child:
    spec: ProcessSpec
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Supervisor:
    """Starts, watches and stops a fixed set of children."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        stop_grace_s: float = 10.0,
        max_backoff_s: float = 10.0,
    ) -> None:
        self._children = [_Child(spec) for spec in specs]
        self._stop_grace_s = stop_grace_s
        self._max_backoff_s = max_backoff_s
        self._stopping = asyncio.Event()
        self._watchers: list[asyncio.Task[None]] = []

    def pid(self, name: str) -> int | None:
        for child in self._children:
            if child.spec.name == name and child.proc is not None:
                return child.proc.pid
        return None

    def restarts(self, name: str) -> int:
        return next(c.restarts for c in self._children if c.spec.name == name)

    async def start(self) -> None:
        """Start every child in order, each ready before the next starts."""
        for child in self._children:
            port = child.spec.ready_port
            if port is not None and await asyncio.to_thread(port_open, port):
                raise SupervisorError(
                    f"{child.spec.name}: port {port} is already in use; stop whatever listens "
                    "there or choose another port"
                )
            await self._spawn(child)
            await self._wait_ready(child)
            self._watchers.append(asyncio.create_task(self._watch(child), name=child.spec.name))

    async def stop(self) -> None:
        """Stop children one at a time in reverse start order (the broker last).

        Each gets SIGTERM and the grace period to exit, then SIGKILL; stopping in order
        lets services leave their consumer groups and flush while the log is still up.
        """
        self._stopping.set()
        for task in self._watchers:
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        for child in reversed(self._children):
            proc = child.proc
            if proc is None or proc.returncode is not None:
                continue
            logger.info("stopping", extra={"component": child.spec.name, "pid": proc.pid})
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self._stop_grace_s)
            except TimeoutError:
                logger.warning("killing", extra={"component": child.spec.name})
                proc.kill()
                await proc.wait()

    async def _spawn(self, child: _Child) -> None:
        spec = child.spec
        out: int | object = asyncio.subprocess.DEVNULL
        handle = None
        if spec.log_file is not None:
            spec.log_file.parent.mkdir(parents=True, exist_ok=True)
            handle = spec.log_file.open("ab")
            out = handle
        try:
            child.proc = await asyncio.create_subprocess_exec(
                *spec.argv,
                env={**os.environ, **spec.env},
                stdout=out,  # type: ignore[arg-type]
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise SupervisorError(f"cannot start {spec.name}: {exc}") from exc
        finally:
            if handle is not None:
                handle.close()
        child.started_at = time.monotonic()
        logger.info("started", extra={"component": spec.name, "pid": child.proc.pid})

    async def _wait_ready(self, child: _Child) -> None:
        spec, proc = child.spec, child.proc
        assert proc is not None
        if spec.ready_port is None:
            return
        deadline = time.monotonic() + spec.ready_timeout_s
        while not await asyncio.to_thread(port_open, spec.ready_port):
            if proc.returncode is not None:
                hint = f"; see {spec.log_file}" if spec.log_file else ""
                raise SupervisorError(
                    f"{spec.name} exited with code {proc.returncode} before it was ready{hint}"
                )
            if time.monotonic() > deadline:
                raise SupervisorError(
                    f"{spec.name} did not open port {spec.ready_port} within "
                    f"{spec.ready_timeout_s:.0f} s"
                )
            await asyncio.sleep(0.05)
        logger.info("ready", extra={"component": spec.name, "port": spec.ready_port})

    async def _watch(self, child: _Child) -> None:
        backoff = 0.25
        while not self._stopping.is_set():
            assert child.proc is not None
            code = await child.proc.wait()
            if self._stopping.is_set():
                return
            # A child that ran for a while before dying gets a fresh backoff.
            if time.monotonic() - child.started_at > 30:
                backoff = 0.25
            logger.warning(
                "exited; restarting",
                extra={"component": child.spec.name, "code": code, "in_s": backoff},
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)
            child.restarts += 1
            try:
                await self._spawn(child)
                await self._wait_ready(child)
            except SupervisorError as exc:
                logger.error(
                    "restart failed", extra={"component": child.spec.name, "error": str(exc)}
                )
