"""The broker process: open the data dir, recover logs, listen, run background duties."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import signal
import sys
from pathlib import Path

from broker.cluster import Cluster
from broker.connection import Connection
from broker.errors import StartupError
from broker.groups import GroupCoordinator
from broker.log.cleaner import Cleaner
from broker.log.flush import Flusher
from broker.metrics import Metrics
from broker.offsets import OffsetStore
from broker.settings import BrokerSettings
from broker.state import BrokerState

log = logging.getLogger(__name__)

GROUP_TICK_S = 0.1


def _lock_data_dir(data_dir: Path) -> int:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".write-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
        fd = os.open(data_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StartupError(
            f"data dir {data_dir} is not writable ({exc.strerror}): choose another with "
            "--data-dir or fix its permissions"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise StartupError(
            f"data dir {data_dir} is in use by another broker: stop it or use another --data-dir"
        ) from exc
    return fd


class Broker:
    """A running broker; ``await start()``, then ``await serve_forever()`` or ``stop()``."""

    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.flusher = Flusher(
            settings.fsync,
            settings.fsync_interval_ms,
            settings.fsync_threads,
            settings.fsync_method,
        )
        self.cluster = Cluster(settings, self.flusher)
        self.offsets = OffsetStore(settings.data_dir, self.flusher)
        self.groups = GroupCoordinator(settings)
        self.state = BrokerState(
            settings, self.flusher, self.cluster, self.offsets, self.groups, self.metrics
        )
        self.cleaner = Cleaner(self.cluster)
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._conns: set[asyncio.Task[None]] = set()
        self._lock_fd = -1

    async def start(self) -> None:
        s = self.settings
        self._lock_fd = _lock_data_dir(s.data_dir)
        self.cluster.load()
        self.offsets.load()
        try:
            self._server = await asyncio.start_server(
                self._on_client, s.host, s.port, limit=1 << 20, reuse_address=True
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"port {s.port} on {s.host} is already in use: stop the other process "
                    "or pass --port"
                ) from exc
            raise StartupError(f"cannot listen on {s.host}:{s.port}: {exc.strerror}") from exc
        sock = self._server.sockets[0]
        self.state.advertised_port = int(sock.getsockname()[1])
        try:
            self.metrics.serve(s.host, s.metrics_port)
        except OSError as exc:
            raise StartupError(
                f"metrics port {s.metrics_port} on {s.host} is unavailable ({exc.strerror}): "
                "pass another --metrics-port, or 0 to disable metrics"
            ) from exc
        self.metrics.watch(self.cluster, self.offsets)
        await self.flusher.start_interval()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._group_timer()))
        self._tasks.append(loop.create_task(self._cleanup_timer()))
        log.info(
            "listening",
            extra={
                "host": s.host,
                "port": self.state.advertised_port,
                "data_dir": str(s.data_dir),
                "fsync": s.fsync,
                "topics": len(self.cluster.topics),
            },
        )

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            await Connection(self.state, reader, writer).serve()
        except asyncio.CancelledError:
            pass  # shutting down
        except Exception:  # never let one connection take the broker down
            log.exception("connection crashed", extra={"peer": writer.get_extra_info("peername")})
        finally:
            self._conns.discard(task)

    async def _group_timer(self) -> None:
        while True:
            await asyncio.sleep(GROUP_TICK_S)
            try:
                self.groups.tick()
            except Exception:
                log.exception("group timer failed")

    async def _cleanup_timer(self) -> None:
        while True:
            await asyncio.sleep(self.settings.cleanup_interval_ms / 1000)
            try:
                await self.cleaner.run_once()
                self.offsets.expire(self.settings.offsets_retention_ms, self.groups.live_groups())
            except Exception:
                log.exception("cleanup failed")

    async def serve_forever(self) -> None:
        assert self._server is not None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down")
        await self.stop()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in [*self._tasks, *self._conns]:
            t.cancel()
        await asyncio.gather(*self._tasks, *self._conns, return_exceptions=True)
        await self.flusher.close()
        self.offsets.close()
        self.cluster.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


# Group commit hands fsyncs to a worker thread; with the default 5 ms switch interval the
# thread can wait that long for the GIL to report back, which would dominate produce
# latency. The broker runs in its own process, so this process-wide knob is ours.
GIL_SWITCH_INTERVAL_S = 0.0005


async def run(settings: BrokerSettings) -> None:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    broker = Broker(settings)
    await broker.start()
    await broker.serve_forever()


def main(settings: BrokerSettings | None = None) -> int:
    """Run until SIGINT/SIGTERM; return a process exit code (2 on a start-up error)."""
    try:
        asyncio.run(run(settings or BrokerSettings()))
    except StartupError as exc:
        log.error("cannot start broker: %s", exc)
        return 2
    return 0
