"""Run child processes, restart the ones that die, stop them all on request.

Used by ``syncpipe dev``. Each child is a :class:`ProcessSpec`; the supervisor starts
children in order, waits for each to become ready (its port accepts connections and its
probe, if any, passes) before starting the next, restarts a child that exits with
backoff, and on stop signals each in reverse order, waiting for it (SIGKILL after a
grace period).

    starting ──ready──► running ──exit──► backoff ──► starting
        │                  │
        └──── stop ────────┴──► stopping ──► stopped

Each child runs in its own session (so a terminal's Ctrl-C reaches only the supervisor,
which then stops the children in order) and gets SIGTERM if the supervisor dies without
stopping it (Linux ``PR_SET_PDEATHSIG``). Stopping signals the child's whole process
group, so nothing it started outlives it. Every line a child prints goes to its log file
and, when an ``output`` callback is given, to that callback (``syncpipe dev`` prefixes
it with the component's name); what the supervisor itself does (start, ready, exit,
restart, stop) goes to ``notify``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

Notify = Callable[[str], None]
Output = Callable[[str, str], None]  # (component name, one line without its newline)

_PR_SET_PDEATHSIG = 1
_FRESH_AFTER_S = 30.0  # a child that ran this long before dying starts over at the first backoff


class SupervisorError(Exception):
    """A child could not be started or did not become ready in time."""


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """How to run one child and how to tell it is ready.

    Ready means: ``ready_port`` (if any) accepts connections and ``ready_probe`` (if any,
    called on a worker thread) returns True. With neither, a child is ready once started.
    """

    name: str
    argv: Sequence[str]
    ready_port: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 30.0
    log_file: Path | None = None
    ready_probe: Callable[[], bool] | None = None


@dataclass(slots=True)
class _Child:
    spec: ProcessSpec
    proc: asyncio.subprocess.Process | None = None
    pump: asyncio.Task[None] | None = None
    restarts: int = 0
    started_at: float = 0.0


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def describe_exit(code: int) -> str:
    """``code 3`` or ``signal SIGKILL`` (asyncio reports a signal as a negative code)."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def _load_prctl() -> Callable[..., int] | None:
    # Resolved once here: loading a library in the forked child could deadlock.
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Ask the kernel to SIGTERM this child when the supervisor dies (Linux only)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


class Supervisor:
    """Starts, watches and stops a fixed set of children."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        stop_grace_s: float = 10.0,
        min_backoff_s: float = 0.25,
        max_backoff_s: float = 10.0,
        notify: Notify | None = None,
        output: Output | None = None,
    ) -> None:
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"component names must be unique: {names}")
        self._children = [_Child(spec) for spec in specs]
        self._stop_grace_s = stop_grace_s
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self._notify: Notify = notify or logger.info
        self._output = output
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()
        self._watchers: list[asyncio.Task[None]] = []

    def pid(self, name: str) -> int | None:
        proc = self._child(name).proc
        return None if proc is None else proc.pid

    def restarts(self, name: str) -> int:
        return self._child(name).restarts

    def _child(self, name: str) -> _Child:
        for child in self._children:
            if child.spec.name == name:
                return child
        raise KeyError(name)

    async def start(self) -> None:
        """Start every child in order, each ready before the next starts.

        Every port is checked before anything starts, so a busy port fails fast.
        """
        for child in self._children:
            port = child.spec.ready_port
            if port is not None and await asyncio.to_thread(port_open, port):
                raise SupervisorError(
                    f"{child.spec.name}: port {port} is already in use; stop whatever listens "
                    "there or choose another port"
                )
        for child in self._children:
            await self._spawn(child)
            await self._wait_ready(child)
            self._watchers.append(asyncio.create_task(self._watch(child), name=child.spec.name))

    async def stop(self) -> None:
        """Stop children one at a time in reverse start order (the broker last).

        Each gets SIGTERM and the grace period to exit, then SIGKILL; stopping in order
        lets services leave their consumer groups and flush while the log is still up.
        Whatever a child left in its process group is killed after it exits.
        """
        self._stopping.set()
        for task in self._watchers:
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        for child in reversed(self._children):
            proc = child.proc
            if proc is None:
                continue
            if proc.returncode is None:
                self._notify(f"stopping {child.spec.name} (pid {proc.pid})")
                _signal_group(proc.pid, signal.SIGTERM)
                if not await self._exited_in_grace(proc):
                    name, grace = child.spec.name, self._stop_grace_s
                    why = (
                        "stop hurried"
                        if self._hurry.is_set()
                        else f"not stopped within {grace:g} s"
                    )
                    self._notify(f"{name}: {why}; killing it")
                    _signal_group(proc.pid, signal.SIGKILL)
                    await proc.wait()
            _signal_group(proc.pid, signal.SIGKILL)  # leftovers of the child, if any
            await self._finish_pump(child)

    def hurry(self) -> None:
        """Make a stop in progress kill what is left instead of waiting (a second Ctrl-C)."""
        self._hurry.set()

    async def _exited_in_grace(self, proc: asyncio.subprocess.Process) -> bool:
        """Wait for ``proc`` up to the grace period, or until :meth:`hurry`."""
        if self._hurry.is_set():
            return proc.returncode is not None
        exited = asyncio.ensure_future(proc.wait())
        hurried = asyncio.ensure_future(self._hurry.wait())
        await asyncio.wait(
            {exited, hurried}, timeout=self._stop_grace_s, return_when=asyncio.FIRST_COMPLETED
        )
        for task in (exited, hurried):
            task.cancel()
        await asyncio.gather(exited, hurried, return_exceptions=True)
        return proc.returncode is not None

    async def _spawn(self, child: _Child) -> None:
        spec = child.spec
        await self._finish_pump(child)
        try:
            child.proc = await asyncio.create_subprocess_exec(
                *spec.argv,
                env={**os.environ, **spec.env},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if _PRCTL is not None else None,
            )
        except OSError as exc:
            raise SupervisorError(f"cannot start {spec.name}: {exc}") from exc
        child.started_at = time.monotonic()
        child.pump = asyncio.create_task(self._pump(child, child.proc), name=f"{spec.name}-out")
        self._notify(f"started {spec.name} (pid {child.proc.pid})")

    async def _pump(self, child: _Child, proc: asyncio.subprocess.Process) -> None:
        """Copy the child's output, line by line, to its log file and the output callback."""
        spec, stream = child.spec, proc.stdout
        assert stream is not None
        log: IO[bytes] | None = None
        if spec.log_file is not None:
            spec.log_file.parent.mkdir(parents=True, exist_ok=True)
            log = spec.log_file.open("ab")
        try:
            while True:
                try:
                    line = await stream.readline()
                except ValueError:  # a line over the stream limit: take what is there
                    line = await stream.read(64 * 1024)
                if not line:
                    return
                if log is not None:
                    log.write(line)
                    log.flush()
                if self._output is not None:
                    self._output(spec.name, line.decode(errors="replace").rstrip("\r\n"))
        finally:
            if log is not None:
                log.close()

    async def _finish_pump(self, child: _Child) -> None:
        """Wait for the pump of an exited child to drain (a grandchild may hold the pipe)."""
        pump, child.pump = child.pump, None
        if pump is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(pump), 2.0)
        except TimeoutError:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    async def _wait_ready(self, child: _Child) -> None:
        spec, proc = child.spec, child.proc
        assert proc is not None
        if spec.ready_port is None and spec.ready_probe is None:
            return
        deadline = time.monotonic() + spec.ready_timeout_s
        while not await asyncio.to_thread(_is_ready, spec):
            if proc.returncode is not None:
                hint = f"; see {spec.log_file}" if spec.log_file else ""
                raise SupervisorError(
                    f"{spec.name} exited with {describe_exit(proc.returncode)} before it was "
                    f"ready{hint}"
                )
            if time.monotonic() > deadline:
                what = f"open port {spec.ready_port}" if spec.ready_port else "become ready"
                if spec.ready_port is not None and spec.ready_probe is not None:
                    what = f"become ready on port {spec.ready_port}"
                raise SupervisorError(
                    f"{spec.name} did not {what} within {spec.ready_timeout_s:g} s"
                    + (f"; see {spec.log_file}" if spec.log_file else "")
                )
            await asyncio.sleep(0.05)
        self._notify(f"{spec.name} is ready")

    async def _watch(self, child: _Child) -> None:
        backoff = self._min_backoff_s
        while not self._stopping.is_set():
            assert child.proc is not None
            code = await child.proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - child.started_at > _FRESH_AFTER_S:
                backoff = self._min_backoff_s
            child.restarts += 1
            self._notify(
                f"{child.spec.name} exited with {describe_exit(code)}; restarting in "
                f"{backoff:g} s (restart {child.restarts})"
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)
            try:
                await self._spawn(child)
                await self._wait_ready(child)
            except SupervisorError as exc:
                self._notify(f"{child.spec.name} restart failed: {exc}")
                if child.proc is not None and child.proc.returncode is None:
                    _signal_group(child.proc.pid, signal.SIGKILL)  # try again after backoff
                continue
            self._notify(f"{child.spec.name} restarted (restart {child.restarts})")


def _is_ready(spec: ProcessSpec) -> bool:
    if spec.ready_port is not None and not port_open(spec.ready_port):
        return False
    return spec.ready_probe is None or spec.ready_probe()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the child's process group (it leads its own session), else the child."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
